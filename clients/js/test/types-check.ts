// Compiled by `npm run typecheck` (tsc, never run): the types say what the tests show, and
// misuse is a type error. Each @ts-expect-error fails the check if the error goes away.
import {
  type CallStatus,
  type Consultation,
  type TokenGrant,
  VideoCallError,
  createClient,
  startConsultation,
} from "../src/index.js";

const client = createClient({
  baseUrl: "http://127.0.0.1:8000",
  getIdToken: async () => "token",
});

export async function usage(parentNode: Element): Promise<void> {
  const grant: TokenGrant = await client.initiate("demo-appt-1");
  const domain: string = grant.domain;
  const role: "doctor" | "patient" = grant.userRole;
  const fresh = await client.token(grant.videoCall.id);
  const status: CallStatus = fresh.videoCall.status;
  const page = await client.list({ status: "COMPLETED", limit: 20 });
  const next: string | null = page.nextCursor;
  for await (const call of client.listAll({ limit: 50 })) {
    const seconds: number | null = call.duration;
    void seconds;
  }
  const stats = await client.stats({ from: "2026-01-01" });
  const total: number = stats.totalCalls;
  const details = await client.details("demo-appt-1");
  const tracked: boolean = details.presence.trackedByServer;
  await client.report("demo-appt-1", "cancel");

  const consultation: Consultation = await startConsultation({
    client,
    appointmentId: "demo-appt-1",
    parentNode,
    options: { configOverwrite: {} },
    onLeft: (c) => void c.rejoin(),
    onError: (e) => {
      if (e instanceof VideoCallError && e.error === "call_closed") consultation.dispose();
    },
  });
  consultation.api?.dispose();

  try {
    await client.initiate("x");
  } catch (e) {
    if (e instanceof VideoCallError) {
      const code: string = e.error;
      const http: number = e.status;
      const current: CallStatus | undefined = e.currentStatus;
      void [code, http, current];
    }
  }
  void [domain, role, next, total, tracked];

  // @ts-expect-error an action the API does not know
  await client.report("demo-appt-1", "finish");
  // @ts-expect-error a status that does not exist
  await client.list({ status: "DONE" });
  // @ts-expect-error getIdToken is required
  createClient({ baseUrl: "http://127.0.0.1:8000" });
  // @ts-expect-error parentNode is required
  await startConsultation({ client, appointmentId: "demo-appt-1" });
}
