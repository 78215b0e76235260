// The operator console. Plain JavaScript, no dependencies: everything it shows comes from
// GET /api/admin/console/* with the admin key the operator typed, kept in sessionStorage.
"use strict";

(function () {
  const KEY = "videocalls.adminKey";
  const POLL_MS = 4000;
  const SVG = "http://www.w3.org/2000/svg";
  // The console's words for the service's values: one table per enum, keyed by every value of
  // it (tests/unit/test_console_rules.py checks the keys against service/domain). words() reads
  // them; a value a table lacks is shown as it came, never given a meaning of its own.
  // Attention (service/domain/attention.py): the day's groups, in the order the API sends them.
  const GROUPS = {
    waiting: { label: "Waiting", mark: "◐" },
    in_progress: { label: "In progress", mark: "●" },
    starting_soon: { label: "Starting soon", mark: "◷" },
    upcoming: { label: "Later today", mark: "○" },
    completed: { label: "Completed", mark: "✓" },
    missed: { label: "Missed", mark: "✗" },
    failed: { label: "Failed", mark: "⚠" },
    cancelled: { label: "Cancelled", mark: "⊘" },
  };
  // Role (service/domain/model.py): a person's role in one appointment.
  const ROLES = {
    doctor: "Doctor",
    patient: "Patient",
    other: "Others",
  };
  // Missing (service/domain/model.py): who did not come to a NO_SHOW call.
  const MISSING = {
    doctor: "The doctor did not come",
    patient: "The patient did not come",
    both: "Neither came",
    none: "Both came, but never at the same time",
  };
  // Verification (service/domain/model.py): who measured the call.
  const VERIFICATION = {
    server: "Measured by the server (Prosody's events)",
    client_reported: "Reported by browsers only, not verified",
  };
  const SETTLED = {
    final: "Final",
    provisional: "Provisional: a Prosody host has not been heard past the decision yet",
  };
  // The timeline's lanes: one per role, then the lobby's knocks and the recordings.
  const LANES = [...Object.entries(ROLES), ["lobby", "Lobby"], ["recording", "Recording"]];
  // Drawn only when the call has something in them.
  const OPTIONAL_LANES = new Set(["other", "lobby", "recording"]);

  const $ = (id) => document.getElementById(id);
  let timer = null;
  let route = null;
  let lastDay = "";

  // --- small helpers ---------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") el.textContent = value;
      else el.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      el.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return el;
  }

  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "text") el.textContent = value;
      else el.setAttribute(name, String(value));
    }
    for (const child of children) if (child) el.append(child);
    return el;
  }

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  function localDate(d) {
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }

  function shiftDate(day, days) {
    const [y, m, d] = day.split("-").map(Number);
    return localDate(new Date(y, m - 1, d + days));
  }

  function clockTime(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function stamp(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return `${localDate(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function span(ms) {
    const total = Math.max(0, Math.round(ms / 1000));
    if (total < 60) return `${total} s`;
    const minutes = Math.floor(total / 60);
    if (minutes < 60) return `${minutes} min`;
    return `${Math.floor(minutes / 60)} h ${pad(minutes % 60)} min`;
  }

  function words(table, value) {
    return Object.hasOwn(table, value) ? table[value] : String(value);
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function fillTable(id, rows) {
    const body = $(id).querySelector("tbody");
    clear(body);
    if (!rows.length) {
      const cols = $(id).querySelectorAll("thead th").length;
      body.append(h("tr", {}, h("td", { colspan: cols, class: "empty", text: "None" })));
      return;
    }
    for (const cells of rows) {
      body.append(h("tr", {}, ...cells.map((c) => (c instanceof Node ? h("td", {}, c) : h("td", { class: String(c).length > 40 ? "wrap" : null, text: String(c) })))));
    }
  }

  // --- the API ---------------------------------------------------------------------------

  class SignedOut extends Error {}

  async function api(path) {
    const key = sessionStorage.getItem(KEY);
    if (!key) throw new SignedOut();
    const response = await fetch(path, {
      headers: { Authorization: `Bearer ${key}`, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
    });
    if (response.status === 401 || response.status === 403) {
      signOut("The admin key was not accepted. Sign in again.");
      throw new SignedOut();
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      if (body.error === "admin_api_disabled") {
        signOut("The admin API is disabled on this service (neither ADMIN_API_KEYS nor ADMIN_API_KEY is set).");
        throw new SignedOut();
      }
      throw new Error(body.message || `Request failed with status ${response.status}`);
    }
    return body;
  }

  // --- signing in and out ------------------------------------------------------------------

  function showOnly(sectionId) {
    for (const id of ["signin", "view-today", "view-call", "view-doctors", "view-health"]) {
      $(id).hidden = id !== sectionId;
    }
    $("nav").hidden = sectionId === "signin";
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    stopPolling();
    // Nothing the previous key loaded stays on the page.
    for (const id of ["groups", "call-facts", "timeline", "chart", "health-facts"]) clear($(id));
    for (const table of document.querySelectorAll("tbody")) clear(table);
    $("today-summary").textContent = "";
    $("load-error").textContent = "";
    $("signin-error").textContent = message || "";
    showOnly("signin");
    $("admin-key").value = "";
    $("admin-key").focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const key = $("admin-key").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    try {
      await api("/api/admin/console/health");
    } catch (error) {
      if (!(error instanceof SignedOut)) {
        sessionStorage.removeItem(KEY);
        $("signin-error").textContent = error.message;
      }
      return;
    }
    $("admin-key").value = "";
    $("signin-error").textContent = "";
    if (!location.hash || location.hash === "#") location.hash = "#/today";
    else render();
  }

  // --- routing and polling -----------------------------------------------------------------

  function parseRoute() {
    const raw = location.hash.replace(/^#\/?/, "");
    const [path, query] = raw.split("?");
    const params = new URLSearchParams(query || "");
    const parts = path.split("/").filter(Boolean);
    return { view: parts[0] || "today", id: parts[1] ? decodeURIComponent(parts[1]) : null, params };
  }

  function stopPolling() {
    if (timer !== null) clearInterval(timer);
    timer = null;
  }

  function poll(load) {
    stopPolling();
    timer = setInterval(() => load(false).catch(report), POLL_MS);
  }

  function report(error) {
    if (error instanceof SignedOut) return;
    $("load-error").textContent = `Could not load: ${error.message}`;
  }

  async function render() {
    if (!sessionStorage.getItem(KEY)) {
      signOut("");
      return;
    }
    route = parseRoute();
    $("load-error").textContent = "";
    for (const link of document.querySelectorAll("nav a")) {
      const current = link.dataset.view === (route.view === "call" ? "today" : route.view);
      if (current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const views = { today: loadToday, call: loadCall, doctors: loadDoctors, health: loadHealth };
    const load = views[route.view] || loadToday;
    showOnly(`view-${route.view in views ? route.view : "today"}`);
    try {
      await load(true);
      if (load !== loadDoctors) poll(load);
      else stopPolling();
    } catch (error) {
      report(error);
    }
  }

  // --- today -------------------------------------------------------------------------------

  function todayHash(day, doctor) {
    const params = new URLSearchParams({ date: day });
    if (doctor) params.set("doctor", doctor);
    return `#/today?${params}`;
  }

  function stateText(item, now) {
    const call = item.videoCall;
    const since = (iso) => span(now - Date.parse(iso));
    switch (item.attention) {
      case "waiting": {
        const who = item.present.map((r) => words(ROLES, r)).join(" and ");
        return `${who} waiting for ${since(item.waitingSince)}`;
      }
      case "in_progress":
        return call && call.startedAt ? `Running for ${since(call.startedAt)}` : "Running";
      case "starting_soon": {
        const delta = Date.parse(item.startsAt) - now;
        return delta > 0 ? `Starts in ${span(delta)}` : `Due ${span(-delta)} ago, nobody there yet`;
      }
      case "upcoming":
        return `Starts at ${clockTime(item.startsAt)}`;
      case "completed":
        return call && call.duration !== null ? `Took ${span(call.duration * 1000)}` : "Completed";
      case "missed":
        return words(MISSING, item.missing);
      case "failed":
        return "The call failed";
      case "cancelled":
        return "Cancelled";
      default:
        return String(item.attention);
    }
  }

  function badge(group) {
    const meta = GROUPS[group];
    return h("span", { class: `badge a-${group}` }, h("span", { "aria-hidden": "true", text: `${meta.mark} ` }), meta.label);
  }

  function renderDay(data) {
    const now = Date.parse(data.now);
    const select = $("doctor");
    const chosen = data.doctor || "";
    const options = [["", "All doctors"], ...data.doctors.map((d) => [d.uid, d.name])];
    if (chosen && !data.doctors.some((d) => d.uid === chosen)) options.push([chosen, chosen]);
    const current = Array.from(select.options).map((o) => `${o.value}\u0000${o.text}`).join("\u0001");
    if (current !== options.map((o) => o.join("\u0000")).join("\u0001")) {
      clear(select);
      for (const [value, label] of options) select.append(h("option", { value, text: label }));
    }
    select.value = chosen;
    $("day").value = data.date;

    const groups = $("groups");
    const focused = document.activeElement && groups.contains(document.activeElement) ? document.activeElement.id : null;
    clear(groups);
    for (const group of data.groups) {
      const items = data.appointments.filter((a) => a.attention === group);
      if (!items.length && !["waiting", "in_progress", "starting_soon"].includes(group)) continue;
      const titleId = `group-${group}`;
      const section = h("section", { class: "group", "aria-labelledby": titleId, "data-group": group });
      section.append(h("h3", { id: titleId }, badge(group), `${items.length} ${items.length === 1 ? "appointment" : "appointments"}`));
      if (!items.length) {
        section.append(h("p", { class: "empty", text: "None right now." }));
      } else {
        const list = h("ul", {});
        for (const item of items) {
          const who = h("div", { class: "who" }, `${item.patient.name} `, h("span", { text: `with ${item.doctor.name}` }));
          const link = item.videoCall
            ? h("a", {
                href: `#/call/${encodeURIComponent(item.videoCall.id)}`,
                id: `open-${item.appointmentId}`,
                "aria-label": `Open the timeline of ${item.patient.name} with ${item.doctor.name} at ${clockTime(item.startsAt)}`,
                text: "Timeline",
              })
            : h("span", { class: "empty", text: "No call yet" });
          list.append(
            h(
              "li",
              { class: `item a-${group}`, "data-appointment": item.appointmentId },
              h("div", { class: "when", text: `${clockTime(item.startsAt)}–${clockTime(item.endsAt)}` }),
              who,
              link,
              h("div", { class: "state" }, badge(group), ` ${stateText(item, now)}`),
            ),
          );
        }
        section.append(list);
      }
      groups.append(section);
    }
    if (focused && $(focused)) $(focused).focus();
    const c = data.counts;
    $("today-summary").textContent =
      `${data.appointments.length} ${data.appointments.length === 1 ? "appointment" : "appointments"}: ${c.waiting} waiting, ${c.in_progress} in progress, ` +
      `${c.starting_soon} starting soon, ${c.completed} completed, ${c.missed} missed.`;
    $("today-stamp").textContent = `Updated ${stamp(data.now)}, every ${POLL_MS / 1000} s`;
    $("today-title").textContent = data.date === localDate(new Date()) ? "Today" : `Appointments on ${data.date}`;
  }

  async function loadToday() {
    const day = route.params.get("date") || localDate(new Date());
    const doctor = route.params.get("doctor") || "";
    const params = new URLSearchParams({ date: day });
    if (doctor) params.set("doctor", doctor);
    lastDay = todayHash(day, doctor);
    $("back-today").setAttribute("href", lastDay);
    renderDay(await api(`/api/admin/console/day?${params}`));
  }

  // --- one call ----------------------------------------------------------------------------

  function ticks(from, to, count) {
    const steps = [60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 14400e3];
    const step = steps.find((st) => (to - from) / st <= count) || steps[steps.length - 1];
    const out = [];
    for (let t = Math.ceil(from / step) * step; t <= to; t += step) out.push(t);
    return out;
  }

  function drawTimeline(data) {
    const box = $("timeline");
    clear(box);
    const now = Date.parse(data.now);
    // Room sessions, lobby knocks (who knocked, how it ended) and recordings, as one kind of bar.
    const knocks = data.lobby.map((v) => ({ role: "lobby", who: v.role, joinedAt: v.joinedAt, leftAt: v.leftAt, endReason: v.reason, repaired: v.repaired }));
    const recordings = data.videoCall.recordings.map((r) => ({ role: "recording", joinedAt: r.startedAt, leftAt: r.endedAt, endReason: r.mode, repaired: false }));
    const sessions = data.sessions.filter((x) => x.joinedAt).concat(knocks, recordings);
    const lanes = LANES.filter(([role]) => !OPTIONAL_LANES.has(role) || sessions.some((x) => x.role === role));
    const from = Date.parse(data.axis.from);
    const to = Math.max(Date.parse(data.axis.to), from + 60e3);
    const left = 90, right = 20, top = 34, laneH = 34, width = 1000;
    const height = top + lanes.length * laneH + 30;
    const x = (t) => left + ((t - from) / (to - from)) * (width - left - right);
    const described = sessions.map((x2) => `${x2.who ? `${x2.who} in the lobby` : x2.role} ${clockTime(x2.joinedAt)} to ${x2.leftAt ? clockTime(x2.leftAt) : "now"}${x2.repaired ? " (repaired)" : ""}`);
    const svg = s("svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": `Presence from ${clockTime(data.axis.from)} to ${clockTime(data.axis.to)}: ${described.join("; ") || "nobody joined"}`,
    });
    svg.append(
      s("defs", {}, s("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
        s("rect", { width: 6, height: 6, fill: "#f4c7c3" }), s("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#cf222e", "stroke-width": 2 }))),
    );
    const appointmentStart = Date.parse(data.appointment.startsAt);
    const appointmentEnd = Date.parse(data.appointment.endsAt);
    svg.append(s("rect", { x: x(Math.max(from, appointmentStart)), y: top - 6, width: Math.max(0, x(Math.min(to, appointmentEnd)) - x(Math.max(from, appointmentStart))), height: 4, fill: "#d0d7de" }, s("title", { text: "Appointment window" })));
    lanes.forEach(([role, label], i) => {
      const y = top + i * laneH;
      svg.append(s("text", { x: 4, y: y + laneH / 2 + 4, text: label }));
      svg.append(s("line", { class: "axis", x1: left, x2: width - right, y1: y + laneH, y2: y + laneH }));
      for (const session of sessions.filter((x2) => x2.role === role)) {
        const start = Date.parse(session.joinedAt);
        const end = session.leftAt ? Date.parse(session.leftAt) : now;
        const bar = s("rect", {
          class: session.repaired ? "repaired" : `lane-${role}`,
          x: x(start), y: y + 7, width: Math.max(2, x(end) - x(start)), height: laneH - 14, rx: 3,
        }, s("title", { text: `${label}${session.who ? ` (${session.who})` : ""}: ${clockTime(session.joinedAt)} to ${session.leftAt ? clockTime(session.leftAt) : "now"}${session.endReason ? ` (${session.endReason})` : ""}${session.repaired ? ", repaired" : ""}` }));
        svg.append(bar);
        if (session.repaired) svg.append(s("text", { x: x(end) + 4, y: y + laneH / 2 + 4, text: "✗ repaired" }));
      }
    });
    const axisY = top + lanes.length * laneH;
    for (const t of ticks(from, to, 8)) {
      svg.append(s("line", { class: "axis", x1: x(t), x2: x(t), y1: top - 2, y2: axisY + 4 }));
      svg.append(s("text", { x: x(t) - 16, y: axisY + 18, text: clockTime(new Date(t).toISOString()) }));
    }
    for (const tr of data.transitions) {
      const t = Date.parse(tr.at);
      if (t < from || t > to) continue;
      // A correction (late evidence, the cause says so) is marked apart from a transition.
      const corrected = (tr.cause || "").startsWith("correction");
      svg.append(s("line", { class: "transition", x1: x(t), x2: x(t), y1: top - 10, y2: axisY }, s("title", { text: `${tr.from} → ${tr.to} at ${clockTime(tr.at)}${corrected ? " (corrected by late events)" : ""}` })));
      svg.append(s("text", { x: x(t) + 3, y: 12, text: `${corrected ? "↺" : "→"} ${tr.to}` }));
    }
    if (now >= from && now <= to) svg.append(s("line", { class: "now", x1: x(now), x2: x(now), y1: top - 4, y2: axisY }, s("title", { text: "Now" })));
    box.append(svg);
  }

  function renderCall(data) {
    const call = data.videoCall;
    $("call-title").textContent = `${data.patient.name} with ${data.doctor.name}`;
    const facts = $("call-facts");
    clear(facts);
    const rows = [
      ["Status", call.settled ? `${call.status} (${words(SETTLED, call.settled)})` : call.status],
      ["Appointment", `${data.appointment.appointmentDate} ${data.appointment.startTime}–${data.appointment.endTime} (${data.appointment.timezone}), ${data.appointment.status}`],
      ["Started", stamp(call.startedAt)],
      ["Ended", stamp(call.endedAt)],
      ["Duration", call.duration === null ? "–" : span(call.duration * 1000)],
      ["Doctor in the room", call.doctorPresence === null ? "–" : span(call.doctorPresence * 1000)],
      ["Patient in the room", call.patientPresence === null ? "–" : span(call.patientPresence * 1000)],
      ["Who did not come", call.missing === null ? "–" : words(MISSING, call.missing)],
      ["Source", words(VERIFICATION, call.verification)],
      ["Call id", call.id],
    ];
    for (const [term, value] of rows) facts.append(h("dt", { text: term }), h("dd", { text: value }));
    drawTimeline(data);
    fillTable("sessions-table", data.sessions.map((x) => [words(ROLES, x.role), x.session, stamp(x.joinedAt), x.leftAt ? stamp(x.leftAt) : "still in the room", `${x.endReason || "–"}${x.repaired ? " (repaired by the service)" : ""}`]));
    fillTable("transitions-table", data.transitions.map((t) => [stamp(t.at), t.from || "–", t.to || "–", t.actor, t.cause || "–"]));
    fillTable("audit-table", data.audit.map((a) => [stamp(a.at), a.actor, a.action, Object.keys(a.detail).length ? JSON.stringify(a.detail) : "–"]));
    fillTable("call-webhooks-table", data.webhooks.map((m) => [m.sequence, m.type, m.status, m.attempts, answer(m), stamp(m.createdAt)]));
  }

  // A webhook attempt's outcome in words: the HTTP status, or why none came.
  function answer(message) {
    if (message.lastHttpStatus !== null) return `HTTP ${message.lastHttpStatus}`;
    return message.lastError || (message.attempts ? "no answer" : "not attempted yet");
  }

  async function loadCall() {
    if (lastDay) $("back-today").setAttribute("href", lastDay);
    renderCall(await api(`/api/admin/console/calls/${encodeURIComponent(route.id || "")}`));
  }

  // --- doctors -----------------------------------------------------------------------------

  function drawChart(data) {
    const box = $("chart");
    clear(box);
    const width = 1000, height = 220, left = 40, bottom = 30, top = 10;
    const max = Math.max(1, ...data.days.map((d) => d.minutes));
    const slot = (width - left) / Math.max(1, data.days.length);
    const total = data.days.reduce((sum, d) => sum + d.minutes, 0);
    const svg = s("svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-labelledby": "chart-title",
      "aria-describedby": "chart-summary",
    });
    svg.append(s("line", { class: "axis", x1: left, x2: width, y1: height - bottom, y2: height - bottom }));
    svg.append(s("text", { x: 0, y: top + 10, text: `${Math.round(max)} min` }));
    const every = Math.ceil(data.days.length / 10);
    data.days.forEach((d, i) => {
      const barH = ((height - bottom - top) * d.minutes) / max;
      svg.append(s("rect", { class: "bar", x: left + i * slot + 2, y: height - bottom - barH, width: Math.max(1, slot - 4), height: barH }, s("title", { text: `${d.date}: ${d.minutes} min` })));
      if (i % every === 0) svg.append(s("text", { x: left + i * slot, y: height - 10, text: d.date.slice(5) }));
    });
    box.append(svg);
    box.append(h("p", { id: "chart-summary", class: "summary", text: `${Math.round(total)} completed minutes from ${data.from} to ${data.to}.` }));
  }

  async function loadDoctors() {
    const today = localDate(new Date());
    const to = route.params.get("to") || today;
    const from = route.params.get("from") || shiftDate(to, -29);
    $("from").value = from;
    $("to").value = to;
    $("doctors-error").textContent = "";
    let data;
    try {
      data = await api(`/api/admin/console/doctors?${new URLSearchParams({ from, to })}`);
    } catch (error) {
      if (!(error instanceof SignedOut)) $("doctors-error").textContent = error.message;
      return;
    }
    const pct = (v) => (v === null ? "–" : `${Math.round(v * 100)} %`);
    fillTable("doctors-table", data.doctors.map((d) => [d.name, d.calls, d.completed, d.minutes, d.averageDuration === null ? "–" : span(d.averageDuration * 1000), pct(d.noShowRate), d.averagePatientWait === null ? "–" : span(d.averagePatientWait * 1000)]));
    drawChart(data);
  }

  // --- health ------------------------------------------------------------------------------

  async function loadHealth() {
    const data = await api("/api/admin/console/health");
    const now = Date.parse(data.now);
    fillTable("hosts-table", data.prosodyHosts.map((x) => [x.host, `${stamp(x.lastEventAt)} (${span(now - Date.parse(x.lastEventAt))} ago, ${x.lastEventType})`, x.bootId || "–", x.events, x.seqGaps ? `⚠ ${x.seqGaps}` : "0", x.restarts]));
    const facts = $("health-facts");
    clear(facts);
    const sweeper = data.sweeper;
    const sweep = sweeper.lastRunAt
      ? `${stamp(sweeper.lastRunAt)} (${span(now - Date.parse(sweeper.lastRunAt))} ago; ${sweeper.derived} derived, ${sweeper.noShows} marked no-show)`
      : "Never ran";
    const reasons = Object.entries(data.repairs.byReason).map(([r, n]) => `${r}: ${n}`).join(", ");
    for (const [term, value] of [
      ["Sweeper's last run", `${sweeper.overdue ? "⚠ Overdue. " : ""}${sweep}`],
      ["Sweep interval", sweeper.intervalSeconds ? `${sweeper.intervalSeconds} s` : "Off in this service (SWEEP_INTERVAL=0)"],
      [`Presence repairs (${data.windowHours} h)`, `${data.repairs.total}${reasons ? ` (${reasons})` : ""}`],
      ["Webhooks", data.webhooks.enabled ? `${data.webhooks.failed ? "⚠ " : ""}${data.webhooks.failed} failed, ${data.webhooks.retrying} being retried` : "Off (WEBHOOK_URL is not set)"],
      ["Checked", stamp(data.now)],
    ]) facts.append(h("dt", { text: term }), h("dd", { text: value }));
    fillTable("failing-webhooks-table", data.webhooks.failing.map((m) => [m.id, m.type, m.status, m.attempts, answer(m), m.nextAttemptAt ? stamp(m.nextAttemptAt) : "–"]));
  }

  // --- start -------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut("Signed out."));
    $("day").addEventListener("change", () => {
      if ($("day").value) location.hash = todayHash($("day").value, $("doctor").value);
    });
    $("doctor").addEventListener("change", () => {
      location.hash = todayHash($("day").value || localDate(new Date()), $("doctor").value);
    });
    $("today-filters").addEventListener("submit", (e) => e.preventDefault());
    $("doctors-filters").addEventListener("submit", (e) => {
      e.preventDefault();
      location.hash = `#/doctors?${new URLSearchParams({ from: $("from").value, to: $("to").value })}`;
    });
    window.addEventListener("hashchange", render);
    render();
  });
})();
