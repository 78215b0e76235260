// @videocalls/client: the browser side of the videocalls service.
//
// `createClient` speaks the HTTP API (one method per endpoint, errors as VideoCallError);
// `startConsultation` opens the call in Jitsi Meet's iframe API. No runtime dependencies:
// it needs `fetch` (browsers, Node 18+) and, for startConsultation, a DOM.

/** The service's error: HTTP `status`, machine-readable `error`, human `message`. */
export class VideoCallError extends Error {
  constructor({ status, error, message, currentStatus, body }) {
    super(message);
    this.name = "VideoCallError";
    this.status = status;
    this.error = error;
    if (currentStatus !== undefined) this.currentStatus = currentStatus;
    this.body = body;
  }
}

const ACTIONS = ["join", "start", "end", "cancel", "failed"];

export function createClient({ baseUrl, getIdToken, fetch: fetchImpl } = {}) {
  if (typeof baseUrl !== "string" || baseUrl === "") {
    throw new TypeError("createClient: baseUrl is required (e.g. https://api.clinic.example)");
  }
  if (typeof getIdToken !== "function") {
    throw new TypeError("createClient: getIdToken must be a function returning the ID token");
  }
  const doFetch = fetchImpl ?? globalThis.fetch?.bind(globalThis);
  if (typeof doFetch !== "function") {
    throw new TypeError("createClient: no fetch available; pass { fetch }");
  }
  const root = baseUrl.replace(/\/+$/, "");

  async function request(method, path, { body, query } = {}) {
    const token = await getIdToken();
    if (typeof token !== "string" || token === "") {
      throw new VideoCallError({
        status: 0,
        error: "missing_token",
        message: "getIdToken returned no token: is the user signed in?",
      });
    }
    const url = new URL(root + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null && value !== "") {
        url.searchParams.set(key, String(value));
      }
    }
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await doFetch(url.toString(), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (cause) {
      const error = new VideoCallError({
        status: 0,
        error: "network_error",
        message: `Cannot reach the video call service at ${root}`,
      });
      error.cause = cause;
      throw error;
    }
    let data;
    try {
      data = await response.json();
    } catch {
      data = undefined;
    }
    if (!response.ok || data === undefined || data === null || typeof data !== "object") {
      throw new VideoCallError({
        status: response.status,
        error: typeof data?.error === "string" ? data.error : "bad_response",
        message:
          typeof data?.message === "string"
            ? data.message
            : `Unexpected answer ${response.status} from the video call service`,
        currentStatus: data?.currentStatus,
        body: data,
      });
    }
    return data;
  }

  const ref = (value) => {
    if (typeof value !== "string" || value === "") {
      throw new TypeError("an appointment id or video call id is required");
    }
    return encodeURIComponent(value);
  };

  const client = {
    baseUrl: root,
    initiate: (appointmentId) =>
      request("POST", "/api/video-calls/initiate", { body: { appointmentId } }),
    token: (callOrAppointmentId) =>
      request("GET", `/api/video-calls/token/${ref(callOrAppointmentId)}`),
    report: (callOrAppointmentId, action) => {
      if (!ACTIONS.includes(action)) {
        throw new TypeError(`action must be one of ${ACTIONS.join(", ")}`);
      }
      return request("PATCH", `/api/video-calls/${ref(callOrAppointmentId)}/status`, {
        body: { action },
      });
    },
    details: (callOrAppointmentId) =>
      request("GET", `/api/video-calls/${ref(callOrAppointmentId)}`),
    list: ({ status, limit, cursor } = {}) =>
      request("GET", "/api/video-calls", { query: { status, limit, cursor } }),
    // Every page, following nextCursor: `for await (const call of client.listAll())`.
    async *listAll({ status, limit } = {}) {
      let cursor;
      do {
        const page = await client.list({ status, limit, cursor });
        yield* page.videoCalls;
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
    },
    stats: ({ from, to } = {}) => request("GET", "/api/video-calls/stats", { query: { from, to } }),
  };
  return client;
}

// --- Jitsi --------------------------------------------------------------------------------

const loading = new Map();

/** Load `https://{domain}/external_api.js` once per page and return JitsiMeetExternalAPI. */
export function loadJitsiExternalApi(domain, { scriptUrl, document: doc } = {}) {
  const page = doc ?? globalThis.document;
  const win = page?.defaultView ?? globalThis;
  if (typeof win.JitsiMeetExternalAPI === "function") {
    return Promise.resolve(win.JitsiMeetExternalAPI);
  }
  if (!page) {
    return Promise.reject(
      new TypeError("loadJitsiExternalApi needs a DOM; pass { JitsiMeetExternalAPI } instead"),
    );
  }
  const src = scriptUrl ?? `https://${domain}/external_api.js`;
  if (!loading.has(src)) {
    const promise = new Promise((resolve, reject) => {
      const script = page.createElement("script");
      script.src = src;
      script.async = true;
      script.onload = () =>
        typeof win.JitsiMeetExternalAPI === "function"
          ? resolve(win.JitsiMeetExternalAPI)
          : reject(jitsiUnavailable(src, "it did not define JitsiMeetExternalAPI"));
      script.onerror = () => reject(jitsiUnavailable(src, "it could not be loaded"));
      page.head.appendChild(script);
    });
    // A failed load may be retried later (a network blip), so forget it.
    promise.catch(() => loading.delete(src));
    loading.set(src, promise);
  }
  return loading.get(src);
}

function jitsiUnavailable(src, why) {
  return new VideoCallError({
    status: 0,
    error: "jitsi_unavailable",
    message: `Jitsi Meet's ${src}: ${why}`,
  });
}

// Refresh this long before the token expires: a rejoin then never presents an expired one.
const DEFAULT_REFRESH_MARGIN_MS = 5 * 60 * 1000;
// Never refresh more often than this: with a token lifetime shorter than the margin (or a
// clock far ahead of the server's), every fresh token would look due at once.
const DEFAULT_MIN_REFRESH_INTERVAL_MS = 30 * 1000;
// setTimeout holds a 32-bit delay; longer lifetimes wait in steps.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Initiate the appointment's call and open it in Jitsi Meet inside `parentNode`.
 *
 * Reports nothing: Prosody tells the service who joined and left, and a browser closing its
 * tab is not the end of the call (the other participant may still be there).
 */
export async function startConsultation({
  client,
  appointmentId,
  parentNode,
  options = {},
  JitsiMeetExternalAPI,
  scriptUrl,
  refreshMarginMs = DEFAULT_REFRESH_MARGIN_MS,
  minRefreshIntervalMs = DEFAULT_MIN_REFRESH_INTERVAL_MS,
  onLeft,
  onTokenRefreshed,
  onError,
  now = () => Date.now(),
} = {}) {
  if (!client || typeof client.initiate !== "function") {
    throw new TypeError("startConsultation: client (from createClient) is required");
  }
  if (!parentNode) throw new TypeError("startConsultation: parentNode is required");
  let grant = await client.initiate(appointmentId);
  const Api =
    JitsiMeetExternalAPI ??
    (await loadJitsiExternalApi(grant.domain, {
      scriptUrl,
      document: parentNode.ownerDocument,
    }));

  let api = null;
  let timer = null;
  let disposed = false;

  const open = () => {
    api = new Api(grant.domain, {
      width: "100%",
      height: "100%",
      ...options,
      roomName: grant.videoCall.roomName,
      jwt: grant.jitsiToken,
      parentNode,
    });
    api.addListener("videoConferenceLeft", () => {
      if (!disposed) onLeft?.(handle);
    });
    return api;
  };

  const expiresAt = () => Date.parse(grant.expiresAt);

  const refresh = async () => {
    const fresh = await client.token(grant.videoCall.id);
    if (disposed) return grant;
    grant = fresh;
    onTokenRefreshed?.(fresh);
    schedule();
    return fresh;
  };

  function schedule() {
    clearTimeout(timer);
    if (disposed) return;
    const due = expiresAt() - refreshMarginMs - now();
    const wait = Math.min(Math.max(minRefreshIntervalMs, due), MAX_TIMER_MS);
    timer = setTimeout(() => {
      if (expiresAt() - refreshMarginMs > now()) return schedule(); // a long wait in steps
      refresh().catch((error) => {
        // call_closed (409) or not_found: nothing to rejoin, so stop refreshing.
        if (!disposed) onError?.(error);
      });
    }, wait);
  }

  const handle = {
    get api() {
      return api;
    },
    get grant() {
      return grant;
    },
    get videoCall() {
      return grant.videoCall;
    },
    /** Open the room again (after leaving), with a token that is not about to expire. */
    async rejoin() {
      if (disposed) throw new TypeError("rejoin after dispose()");
      if (expiresAt() - refreshMarginMs <= now()) await refresh();
      api?.dispose();
      return open();
    },
    /** Close the iframe and stop refreshing; reports nothing to the service. */
    dispose() {
      if (disposed) return;
      disposed = true;
      clearTimeout(timer);
      api?.dispose();
      api = null;
    },
  };

  open();
  schedule();
  return handle;
}
