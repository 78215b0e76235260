// Types of @videocalls/client; the shapes are those of the service's GET /openapi.json.

export type CallStatus =
  | "SCHEDULED"
  | "IN_PROGRESS"
  | "COMPLETED"
  | "CANCELLED"
  | "FAILED"
  | "NO_SHOW";

export type AppointmentStatus =
  | "PENDING"
  | "CONFIRMED"
  | "IN_PROGRESS"
  | "COMPLETED"
  | "CANCELLED"
  | "NO_SHOW";

export type Action = "join" | "start" | "end" | "cancel" | "failed";

/** ISO-8601 UTC with milliseconds, e.g. "2026-11-24T11:09:49.000Z". */
export type Timestamp = string;

export interface VideoCallSummary {
  id: string;
  appointmentId: string;
  roomName: string;
  status: CallStatus;
}

export interface VideoCall extends VideoCallSummary {
  startedAt: Timestamp | null;
  endedAt: Timestamp | null;
  /** Seconds both participants were in the room together. */
  duration: number | null;
  doctorJoinedAt: Timestamp | null;
  patientJoinedAt: Timestamp | null;
  createdAt: Timestamp;
  updatedAt: Timestamp;
  /**
   * Who measured status, times and duration: `server` (Prosody's events) or
   * `client_reported` (browsers' reports only, where the deployment has no Prosody receiver).
   */
  verification: "server" | "client_reported";
}

export interface Appointment {
  id: string;
  appointmentDate: string;
  startTime: string;
  endTime: string;
  timezone: string;
  status: AppointmentStatus;
}

export interface Participant {
  uid: string;
  firstName: string;
  lastName: string;
  email: string | null;
  profileImageUrl: string | null;
}

/** The answer of initiate and token: what JitsiMeetExternalAPI needs. */
export interface TokenGrant {
  message: string;
  videoCall: VideoCallSummary;
  jitsiToken: string;
  meetingLink: string;
  /** Jitsi Meet's host: `new JitsiMeetExternalAPI(domain, ...)`. */
  domain: string;
  userRole: "doctor" | "patient";
  isModerator: boolean;
  expiresIn: string;
  expiresAt: Timestamp;
}

export interface StatusUpdated {
  message: string;
  videoCall: VideoCall;
}

export interface OccupantSession {
  role: "doctor" | "patient" | string;
  joinedAt: Timestamp | null;
  leftAt: Timestamp | null;
  endReason: string | null;
  repaired: boolean;
}

export interface Presence {
  trackedByServer: boolean;
  doctorPresence: number | null;
  patientPresence: number | null;
  missing: "both" | "doctor" | "patient" | "none" | null;
  sessions: OccupantSession[];
  /** Details only: the receiver Prosody's events came through (null: none yet). */
  source?: "v1" | "event_sync" | null;
}

/** A participant's status report as the service recorded it. */
export interface ClientReport {
  uid: string;
  action: "join" | "start" | "end" | "cancel" | "failed";
  at: Timestamp;
  /** `advisory`: recorded only, the server decides (its presence source is Prosody). */
  outcome: "applied" | "advisory" | "refused";
}

export interface CallDetails {
  message: string;
  appointment: Appointment;
  videoCall: VideoCall;
  doctor: Participant | null;
  patient: Participant | null;
  presence: Presence;
  clientReports: ClientReport[];
}

export interface VideoCallListItem extends VideoCall {
  appointment: Appointment & { doctor: Participant | null; patient: Participant | null };
}

export interface VideoCallList {
  message: string;
  count: number;
  videoCalls: VideoCallListItem[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

export interface Stats {
  message: string;
  totalCalls: number;
  totalDuration: number;
  avgDuration: number | null;
  byStatus: Partial<Record<CallStatus, number>>;
  /** The same totals over the calls the server measured: the figures to bill on. */
  serverVerified: {
    totalCalls: number;
    totalDuration: number;
    avgDuration: number | null;
    byStatus: Record<CallStatus, number>;
  };
}

export interface ListQuery {
  status?: CallStatus;
  /** 1 to 200, default 50. */
  limit?: number;
  cursor?: string;
}

export interface StatsQuery {
  /** YYYY-MM-DD */
  from?: string;
  /** YYYY-MM-DD */
  to?: string;
}

export interface ClientOptions {
  /** The service's origin, e.g. "https://api.clinic.example" (no trailing path needed). */
  baseUrl: string;
  /** The signed-in user's Firebase ID token (e.g. `() => auth.currentUser.getIdToken()`). */
  getIdToken: () => string | Promise<string>;
  /** Defaults to globalThis.fetch. */
  fetch?: typeof fetch;
}

export interface VideoCallsClient {
  readonly baseUrl: string;
  initiate(appointmentId: string): Promise<TokenGrant>;
  token(callOrAppointmentId: string): Promise<TokenGrant>;
  report(callOrAppointmentId: string, action: Action): Promise<StatusUpdated>;
  details(callOrAppointmentId: string): Promise<CallDetails>;
  list(query?: ListQuery): Promise<VideoCallList>;
  /** Every call, page after page. */
  listAll(query?: Omit<ListQuery, "cursor">): AsyncGenerator<VideoCallListItem, void, undefined>;
  stats(query?: StatsQuery): Promise<Stats>;
}

export function createClient(options: ClientOptions): VideoCallsClient;

/**
 * `status` is the HTTP status (0 when the service or Jitsi could not be reached); `error` the
 * service's code ("call_closed", "not_participant", ...), or "network_error",
 * "bad_response", "missing_token", "jitsi_unavailable" from the client itself.
 */
export class VideoCallError extends Error {
  constructor(init: {
    status: number;
    error: string;
    message: string;
    currentStatus?: CallStatus;
    body?: unknown;
  });
  readonly name: "VideoCallError";
  readonly status: number;
  readonly error: string;
  /** On 409: the call's status that refused the transition. */
  readonly currentStatus?: CallStatus;
  /** The parsed response body, when there was one. */
  readonly body?: unknown;
}

/** The part of Jitsi's iframe API this package uses. */
export interface JitsiMeetExternalApiInstance {
  addListener(event: string, listener: (...args: unknown[]) => void): unknown;
  dispose(): void;
  executeCommand?(command: string, ...args: unknown[]): void;
}

export type JitsiMeetExternalApiConstructor = new (
  domain: string,
  options: Record<string, unknown> & {
    roomName: string;
    jwt: string;
    parentNode: Element;
  },
) => JitsiMeetExternalApiInstance;

export function loadJitsiExternalApi(
  domain: string,
  options?: { scriptUrl?: string; document?: Document },
): Promise<JitsiMeetExternalApiConstructor>;

export interface ConsultationOptions {
  client: VideoCallsClient;
  appointmentId: string;
  /** Where Jitsi's iframe goes. */
  parentNode: Element;
  /** More JitsiMeetExternalAPI options (configOverwrite, interfaceConfigOverwrite, lang...). */
  options?: Record<string, unknown>;
  /** Use this constructor instead of loading https://{domain}/external_api.js. */
  JitsiMeetExternalAPI?: JitsiMeetExternalApiConstructor;
  /** Where to load external_api.js from, if not https://{domain}/external_api.js. */
  scriptUrl?: string;
  /** Fetch a fresh token this long before expiry (default 5 minutes). */
  refreshMarginMs?: number;
  /** Never refresh more often than this (default 30 seconds), whatever the lifetime. */
  minRefreshIntervalMs?: number;
  /** The user left the room (hung up); offer `handle.rejoin()`. Nothing is reported. */
  onLeft?: (handle: Consultation) => void;
  onTokenRefreshed?: (grant: TokenGrant) => void;
  /** A background token refresh failed (e.g. 409 call_closed: the call is over). */
  onError?: (error: unknown) => void;
  /** The clock, in epoch milliseconds (tests). */
  now?: () => number;
}

export interface Consultation {
  /** The current JitsiMeetExternalAPI instance (null after dispose). */
  readonly api: JitsiMeetExternalApiInstance | null;
  /** The latest token grant. */
  readonly grant: TokenGrant;
  readonly videoCall: VideoCallSummary;
  /** Open the room again with a token that is not about to expire. */
  rejoin(): Promise<JitsiMeetExternalApiInstance>;
  /** Close the iframe and stop refreshing; reports nothing. */
  dispose(): void;
}

export function startConsultation(options: ConsultationOptions): Promise<Consultation>;
