// The client against a real `videocalls serve` (dev authentication), over real HTTP.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { VideoCallError, createClient, startConsultation } from "../src/index.js";
import { startService } from "./server.js";

let service;
const tokens = {};

before(async () => {
  // The shortest lifetime the service allows, so a refresh falls inside a test.
  service = await startService({ JITSI_TOKEN_TTL: "60" });
  for (const uid of ["doc", "pat", "outsider"]) {
    await service.putUser(uid);
    tokens[uid] = await service.idToken(uid);
  }
  for (const id of ["a1", "a2", "a3", "a4", "a5", "a6"]) {
    await service.putAppointment(id, "doc", "pat");
  }
});

after(async () => {
  await service?.stop();
});

/** A client whose requests are recorded: method and path of each. */
function clientFor(uid, { baseUrl = service.url } = {}) {
  const requests = [];
  const client = createClient({
    baseUrl,
    getIdToken: async () => tokens[uid],
    fetch: (url, init) => {
      requests.push(`${init.method} ${new URL(url).pathname}`);
      return fetch(url, init);
    },
  });
  return { client, requests };
}

async function rejects(promise, status, error) {
  const caught = await promise.then(
    () => assert.fail("expected a VideoCallError"),
    (e) => e,
  );
  assert.ok(caught instanceof VideoCallError, String(caught));
  assert.equal(caught.status, status);
  assert.equal(caught.error, error);
  assert.ok(caught.message.length > 0);
  return caught;
}

describe("createClient", () => {
  test("initiate answers the token grant, with the domain for JitsiMeetExternalAPI", async () => {
    const { client } = clientFor("doc");
    const grant = await client.initiate("a1");
    assert.equal(grant.domain, "meet.localhost");
    assert.equal(grant.videoCall.roomName, "appointment_a1");
    assert.equal(grant.videoCall.status, "SCHEDULED");
    assert.equal(grant.userRole, "doctor");
    assert.equal(grant.isModerator, true);
    assert.equal(grant.jitsiToken.split(".").length, 3);
    assert.equal(grant.meetingLink, `https://meet.localhost/appointment_a1?jwt=${grant.jitsiToken}`);
    assert.ok(Date.parse(grant.expiresAt) > Date.now());
  });

  test("token, details, report and stats speak the same call", async () => {
    const doctor = clientFor("doc").client;
    const patient = clientFor("pat").client;
    const first = await doctor.initiate("a2");
    const fresh = await patient.token(first.videoCall.id);
    assert.equal(fresh.userRole, "patient");
    assert.equal(fresh.domain, "meet.localhost");
    assert.equal(fresh.videoCall.id, first.videoCall.id);
    const details = await patient.details("a2");
    assert.equal(details.videoCall.id, first.videoCall.id);
    assert.equal(details.doctor.uid, "doc");
    assert.equal(details.presence.trackedByServer, false);
    const cancelled = await doctor.report("a2", "cancel");
    assert.equal(cancelled.videoCall.status, "CANCELLED");
    const stats = await doctor.stats({ from: "2000-01-01" });
    assert.ok(stats.byStatus.CANCELLED >= 1, JSON.stringify(stats));
  });

  test("list pages with nextCursor, and listAll follows it", async () => {
    const { client } = clientFor("doc");
    for (const id of ["a3", "a4", "a5"]) await client.initiate(id);
    const page = await client.list({ limit: 2 });
    assert.equal(page.count, 2);
    assert.equal(typeof page.nextCursor, "string");
    const next = await client.list({ limit: 2, cursor: page.nextCursor });
    const firstIds = page.videoCalls.map((c) => c.id);
    assert.ok(next.videoCalls.every((c) => !firstIds.includes(c.id)));
    const all = [];
    for await (const call of client.listAll({ limit: 2 })) all.push(call.appointmentId);
    const wanted = ["a1", "a2", "a3", "a4", "a5"];
    for (const id of wanted) assert.ok(all.includes(id), `${id} in ${all}`);
    assert.equal(new Set(all).size, all.length);
    const scheduled = await client.list({ status: "CANCELLED" });
    assert.ok(scheduled.videoCalls.every((c) => c.status === "CANCELLED"));
  });

  test("errors are VideoCallError with the service's status, code and message", async () => {
    await rejects(clientFor("outsider").client.initiate("a1"), 403, "not_participant");
    // An unknown id is answered like somebody else's appointment: no existence oracle.
    await rejects(clientFor("doc").client.initiate("nope"), 403, "not_participant");
    await rejects(clientFor("doc").client.token("a6"), 404, "video_call_not_found");
    const closed = await rejects(clientFor("doc").client.token("a2"), 409, "call_closed");
    assert.equal(closed.currentStatus, "CANCELLED");
    await rejects(clientFor("doc").client.list({ limit: 999 }), 400, "invalid_query");
    tokens.forged = tokens.doc.slice(0, -4) + "AAAA";
    await rejects(clientFor("forged").client.details("a1"), 401, "invalid_token");
  });

  test("an unreachable service and a missing ID token are errors too, before any call", async () => {
    const down = createClient({ baseUrl: "http://127.0.0.1:9", getIdToken: () => tokens.doc });
    await rejects(down.details("a1"), 0, "network_error");
    const { client, requests } = clientFor("nobody-signed-in");
    await rejects(client.details("a1"), 0, "missing_token");
    assert.deepEqual(requests, []);
    assert.throws(() => createClient({ getIdToken: () => "" }), TypeError);
    assert.throws(() => client.report("a1", "finish"), TypeError);
  });
});

/** Jitsi's iframe API stand-in: records what it was given and lets a test fire its events. */
function jitsiStandIn() {
  const instances = [];
  class FakeJitsiMeetExternalAPI {
    constructor(domain, options) {
      this.domain = domain;
      this.options = options;
      this.listeners = {};
      this.disposed = false;
      instances.push(this);
    }
    addListener(event, fn) {
      (this.listeners[event] ??= []).push(fn);
    }
    emit(event) {
      for (const fn of this.listeners[event] ?? []) fn({});
    }
    dispose() {
      this.disposed = true;
    }
  }
  return { FakeJitsiMeetExternalAPI, instances };
}

const waitFor = async (check, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe("startConsultation", () => {
  test("opens the room, refreshes the token before expiry, rejoins with it, reports nothing", async () => {
    const { client, requests } = clientFor("pat");
    const { FakeJitsiMeetExternalAPI, instances } = jitsiStandIn();
    const parentNode = { nodeName: "DIV" };
    let left = 0;
    const refreshed = [];
    const handle = await startConsultation({
      client,
      appointmentId: "a6",
      parentNode,
      JitsiMeetExternalAPI: FakeJitsiMeetExternalAPI,
      options: { configOverwrite: { prejoinConfig: { enabled: false } } },
      // The 60 s token is "close to expiry" after about one second.
      refreshMarginMs: 59_000,
      minRefreshIntervalMs: 200,
      onLeft: () => left++,
      onTokenRefreshed: (grant) => refreshed.push(grant),
    });
    assert.equal(instances.length, 1);
    const [first] = instances;
    assert.equal(first.domain, "meet.localhost");
    assert.equal(first.options.roomName, "appointment_a6");
    assert.equal(first.options.jwt, handle.grant.jitsiToken);
    assert.equal(first.options.parentNode, parentNode);
    assert.deepEqual(first.options.configOverwrite, { prejoinConfig: { enabled: false } });

    await waitFor(() => refreshed.length >= 1);
    assert.notEqual(refreshed[0].jitsiToken, first.options.jwt);
    assert.equal(handle.grant.jitsiToken, refreshed.at(-1).jitsiToken);

    first.emit("videoConferenceLeft");
    assert.equal(left, 1);
    const second = await handle.rejoin();
    assert.equal(first.disposed, true);
    assert.equal(instances.length, 2);
    assert.equal(second.options.roomName, "appointment_a6");
    assert.notEqual(second.options.jwt, first.options.jwt);
    assert.ok(Date.parse(handle.grant.expiresAt) - Date.now() > 1_000);

    handle.dispose();
    assert.equal(second.disposed, true);
    const after = requests.length;
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(requests.length, after, "no refresh after dispose()");
    // Leaving, rejoining and disposing told the service nothing: Prosody does that.
    assert.ok(requests.every((r) => !r.startsWith("PATCH")), requests.join("\n"));
    assert.equal(requests[0], "POST /api/video-calls/initiate");
    assert.ok(requests.slice(1).every((r) => r.startsWith("GET /api/video-calls/token/")));
    assert.equal((await client.details("a6")).videoCall.status, "SCHEDULED");
  });

  test("a failed background refresh goes to onError, and refreshing stops", async () => {
    const { client, requests } = clientFor("doc");
    const { FakeJitsiMeetExternalAPI } = jitsiStandIn();
    await service.putAppointment("a7", "doc", "pat");
    const errors = [];
    const handle = await startConsultation({
      client,
      appointmentId: "a7",
      parentNode: {},
      JitsiMeetExternalAPI: FakeJitsiMeetExternalAPI,
      refreshMarginMs: 59_500,
      minRefreshIntervalMs: 200,
      onError: (e) => errors.push(e),
    });
    await client.report("a7", "cancel"); // the doctor cancels from another tab
    await waitFor(() => errors.length === 1);
    assert.ok(errors[0] instanceof VideoCallError);
    assert.equal(errors[0].error, "call_closed");
    const count = requests.length;
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(requests.length, count);
    handle.dispose();
  });

  test("a token lifetime shorter than the margin refreshes at the minimum interval, no faster", async () => {
    const { client, requests } = clientFor("pat");
    const { FakeJitsiMeetExternalAPI } = jitsiStandIn();
    await service.putAppointment("a9", "doc", "pat");
    const handle = await startConsultation({
      client,
      appointmentId: "a9",
      parentNode: {},
      JitsiMeetExternalAPI: FakeJitsiMeetExternalAPI,
      // Default 5-minute margin against the service's 60 s tokens: always "due".
      minRefreshIntervalMs: 400,
    });
    await new Promise((r) => setTimeout(r, 1_500));
    handle.dispose();
    const refreshes = requests.filter((r) => r.startsWith("GET /api/video-calls/token/")).length;
    assert.ok(refreshes >= 2 && refreshes <= 4, `${refreshes} refreshes in 1.5 s`);
  });

  test("without a DOM and without a constructor it says what it needs", async () => {
    const { client } = clientFor("doc");
    await service.putAppointment("a8", "doc", "pat");
    await assert.rejects(
      startConsultation({ client, appointmentId: "a8", parentNode: {} }),
      /needs a DOM/,
    );
  });
});
