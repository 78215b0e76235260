// A real `videocalls serve` for the tests: its own SQLite file, dev authentication, and
// users and appointments pushed through the admin API as the clinic's backend does.
import { spawn, execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";

const run = promisify(execFile);
export const REPO = resolve(fileURLToPath(import.meta.url), "../../../..");
const PYTHON = process.env.VIDEOCALLS_PYTHON ?? join(REPO, ".venv", "bin", "python");

async function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

const hex = () => randomBytes(32).toString("hex");

/** Start the service; `extraEnv` may override any setting (JITSI_TOKEN_TTL, ...). */
export async function startService(extraEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), "videocalls-js-"));
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME ?? dir,
    APP_ENV: "development",
    AUTH_MODE: "dev",
    DEV_AUTH_SECRET: hex(),
    JITSI_APP_ID: "videocalls-dev",
    JITSI_APP_SECRET: hex(),
    JITSI_DOMAIN: "meet.localhost",
    ADMIN_API_KEY: hex(),
    DATABASE_URL: `sqlite:///${join(dir, "videocalls.db")}`,
    SWEEP_INTERVAL: "0",
    LOG_LEVEL: "WARNING",
    ...extraEnv,
  };
  const cli = (...args) => run(PYTHON, ["-m", "service", ...args], { env, cwd: REPO });
  await cli("migrate");
  const port = await freePort();
  const child = spawn(PYTHON, ["-m", "service", "serve", "--port", String(port)], {
    env,
    cwd: REPO,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`videocalls serve exited: ${output}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill();
      throw new Error(`videocalls serve did not become ready: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const admin = async (path, body) => {
    const response = await fetch(url + path, {
      method: "PUT",
      headers: { Authorization: `Bearer ${env.ADMIN_API_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  };

  return {
    url,
    env,
    /** A dev ID token for `uid`, minted by `videocalls dev-token`. */
    async idToken(uid) {
      const { stdout } = await cli("dev-token", "--uid", uid);
      return stdout.trim();
    },
    putUser: (uid, fields = {}) =>
      admin(`/api/admin/users/${uid}`, { firstName: uid, lastName: "Test", ...fields }),
    /** CONFIRMED, from two hours ago to two hours ahead (UTC), like tests/clock.py. */
    putAppointment: (id, doctorUid, patientUid, fields = {}) =>
      admin(`/api/admin/appointments/${id}`, {
        doctorUid,
        patientUid,
        ...appointmentAround(Date.now()),
        timezone: "UTC",
        status: "CONFIRMED",
        ...fields,
      }),
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function appointmentAround(nowMs) {
  const start = new Date(nowMs - 2 * 3600_000);
  const end = new Date(nowMs + 2 * 3600_000);
  const hhmm = (d) => d.toISOString().slice(11, 16);
  // An end before the start crosses midnight (the service reads it so).
  return {
    appointmentDate: start.toISOString().slice(0, 10),
    startTime: hhmm(start),
    endTime: hhmm(end),
  };
}
