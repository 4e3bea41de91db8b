// The dashboard: sessions, a session's timeline and the approvals inbox, kept live by
// following /v1/stream. It uses only the public HTTP API. Everything it shows is fetched by
// id and stored by id (sessions by session id, events by seq, interactions by id), so a
// notification seen twice (a replay after a reconnect) changes nothing, and a reconnect
// resumes after the last notification id it handled.

const $ = (selector) => document.querySelector(selector);
const el = (tag, attributes = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};

const state = {
  key: sessionStorage.getItem("orchestrator-key"),
  lastId: 0,
  sessions: new Map(),
  // The sessions list's filters, kept in the URL (#/?status=&state=&project=&find=) so a view
  // can be shared and survives a reload.
  filters: { status: "", state: "", project: "", find: "" },
  approvals: new Map(), // "sid/iid" -> interaction (pending and decided while this page is open)
  decidedHere: new Map(), // "sid/iid" -> the decision this tab sent
  seenPending: new Set(), // "sid/iid" of approvals this tab has seen open
  timeline: null, // { sid, events: Map(seq -> event), interactions: Map(id -> interaction), type }
  // The activity view: its filters (in the URL), the newest events across sessions that match
  // them (by "sid/seq"), where older ones continue, the chart's counts, and the sessions
  // announced since the page opened.
  activity: null, // { filters, events: Map, next, chart, minutes }
  announced: [],
  stream: null,
};

class Unauthorized extends Error {}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.key) headers.Authorization = `Bearer ${state.key}`;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) {
    askForKey(state.key ? "That key was not accepted." : "");
    throw new Unauthorized();
  }
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

// ---- auth -------------------------------------------------------------------------------

function askForKey(message) {
  const dialog = $("#key-dialog");
  $("#key-error").textContent = message;
  if (!dialog.open) dialog.showModal();
  $("#key-input").focus();
}

$("#key-form").addEventListener("submit", () => {
  state.key = $("#key-input").value.trim();
  sessionStorage.setItem("orchestrator-key", state.key);
  start();
});

// ---- the live stream ----------------------------------------------------------------------

function setLive(which) {
  const badge = $("#live");
  badge.dataset.state = which;
  badge.textContent = which;
}

async function connect() {
  if (state.stream) state.stream.close();
  state.stream = null;
  let url = `/v1/stream?after=${state.lastId}`;
  try {
    if (state.key) {
      const token = await api("POST", "/v1/stream-tokens");
      url += `&token=${encodeURIComponent(token.body.token)}`;
    }
  } catch (error) {
    if (!(error instanceof Unauthorized)) reconnectSoon();
    return;
  }
  const stream = new EventSource(url);
  state.stream = stream;
  stream.onopen = () => setLive("live");
  for (const type of ["session.created", "session.updated", "events.appended", "interaction.created", "interaction.completed"]) {
    stream.addEventListener(type, (message) => handle(JSON.parse(message.data)));
  }
  // EventSource would retry by itself with Last-Event-ID, but with the same (by then maybe
  // expired) token; so the page reconnects itself, after the last id it handled.
  stream.onerror = () => {
    stream.close();
    if (state.stream === stream) reconnectSoon();
  };
}

function reconnectSoon() {
  setLive("reconnecting");
  setTimeout(connect, 1000);
}

const work = []; // notifications are handled one at a time, in id order
let working = false;

function handle(notification) {
  if (notification.id <= state.lastId) return;
  state.lastId = notification.id;
  work.push(notification);
  if (!working) drain();
}

/// The least time between two batches of notifications, and between two live re-renders: a
/// busy server's notifications are taken in at most four batches a second, each costing one
/// read per session it names and one render, however many notifications it holds.
const LIVE_INTERVAL_MS = 250;

async function drain() {
  working = true;
  while (work.length) {
    const began = Date.now();
    // Whatever queued while the last batch was applied is applied together: a busy agent's
    // hundred notifications cost one read of its session, not a hundred, and one render.
    const batch = work.splice(0);
    try {
      await apply(batch);
    } catch (error) {
      console.error(error);
    }
    renderSoon();
    const rest = LIVE_INTERVAL_MS - (Date.now() - began);
    if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
  }
  working = false;
}

// Live updates re-render at most every LIVE_INTERVAL_MS; what a person does renders at once.
let renderTimer = null;
let renderedAt = 0;
function renderSoon() {
  if (renderTimer) return;
  const wait = Math.max(0, LIVE_INTERVAL_MS - (Date.now() - renderedAt));
  renderTimer = setTimeout(() => {
    renderTimer = null;
    render();
  }, wait);
}

/// Applies a batch of notifications: each session they name is read once, the open timeline
/// loads its new events once, and each interaction they name is read once.
async function apply(batch) {
  const sessions = new Set(batch.map((n) => n.session_id));
  await Promise.all([...sessions].map(refreshSession));
  const sid = state.timeline?.sid;
  if (sid && batch.some((n) => n.type === "events.appended" && n.session_id === sid)) await loadEvents(sid);
  for (const n of batch) {
    if (n.type === "session.created") state.announced = [n.session_id, ...state.announced.filter((a) => a !== n.session_id)].slice(0, 5);
  }
  if (state.activity && batch.some((n) => n.type === "events.appended")) refreshActivitySoon();
  const interactions = new Map(); // "sid/iid" -> created in this batch
  for (const n of batch) {
    if (n.type !== "interaction.created" && n.type !== "interaction.completed") continue;
    const key = `${n.session_id}/${n.interaction_id}`;
    interactions.set(key, interactions.get(key) || n.type === "interaction.created");
  }
  await Promise.all([...interactions].map(async ([key, created]) => {
    const [session, id] = [key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1)];
    const got = await api("GET", `/v1/sessions/${session}/interactions/${id}`);
    if (got.status === 200) noteInteraction(session, got.body, created);
  }));
}

// ---- data ---------------------------------------------------------------------------------

async function refreshSession(sid) {
  const got = await api("GET", `/v1/sessions/${sid}`);
  if (got.status === 200) state.sessions.set(sid, got.body);
}

async function loadSessions() {
  const query = state.filters.status ? `&status=${encodeURIComponent(state.filters.status)}` : "";
  const got = await api("GET", `/v1/sessions?limit=200${query}`);
  state.sessions = new Map(got.body.sessions.map((s) => [s.session_id, s]));
}

/// The approvals of the listed sessions, pending and decided: the inbox keeps its history
/// across reloads.
async function loadApprovals() {
  for (const session of state.sessions.values()) {
    const counts = session.interactions;
    if (!counts || Object.values(counts).every((n) => n === 0)) continue;
    await eachInteraction(session.session_id, "", (interaction) =>
      noteInteraction(session.session_id, interaction, false));
  }
}

// Every interaction of a session the query selects, page by page (a page ends early at the
// server's byte limit, so the cursor decides, not the page length).
async function eachInteraction(sid, query, use) {
  let after = "";
  for (;;) {
    const got = await api("GET", `/v1/sessions/${sid}/interactions?${query}limit=1000&after=${after}`);
    if (got.status !== 200) return;
    for (const interaction of got.body.interactions) use(interaction);
    if (!got.body.next_after) return;
    after = encodeURIComponent(got.body.next_after);
  }
}

function noteInteraction(sid, interaction, isNew) {
  if (state.timeline?.sid === sid) state.timeline.interactions.set(interaction.interaction_id, interaction);
  if (interaction.kind !== "approval") return;
  const key = `${sid}/${interaction.interaction_id}`;
  const known = state.approvals.has(key);
  if (interaction.status === "pending") state.seenPending.add(key);
  state.approvals.set(key, { ...interaction, session_id: sid });
  if (isNew && !known && interaction.status === "pending") notifyBrowser(interaction);
}

/// How many events the timeline holds at first, and loads per "Show older": the page holds
/// the newest events and what was asked for, never a whole long session.
const EVENT_PAGE = 500;

function keepEvents(timeline, events) {
  for (const event of events) {
    timeline.events.set(event.seq, event);
    // The highest and lowest seq held, kept as events arrive (spreading 200k keys into
    // Math.max overflows the stack).
    timeline.lastSeq = Math.max(timeline.lastSeq, event.seq);
    timeline.firstSeq = Math.min(timeline.firstSeq, event.seq);
  }
}

/// The session's newest events: the last page when the timeline opens.
async function loadNewestEvents(sid) {
  const timeline = state.timeline;
  const got = await api("GET", `/v1/sessions/${sid}/events?order=desc&limit=${EVENT_PAGE}`);
  if (got.status !== 200) return;
  keepEvents(timeline, got.body.events);
  timeline.olderLeft = got.body.events.length === EVENT_PAGE || got.body.truncated;
}

/// Events newer than the newest held (live updates).
async function loadEvents(sid) {
  const timeline = state.timeline;
  for (;;) {
    const got = await api("GET", `/v1/sessions/${sid}/events?after_seq=${timeline.lastSeq}&limit=1000`);
    if (got.status !== 200) return;
    keepEvents(timeline, got.body.events);
    if (got.body.events.length < 1000 && !got.body.truncated) return;
  }
}

/// The page of events before the oldest held.
async function loadOlderEvents() {
  const timeline = state.timeline;
  // The events held run from the newest down without a gap, so they are the offset.
  const got = await api("GET", `/v1/sessions/${timeline.sid}/events?order=desc&limit=${EVENT_PAGE}&offset=${timeline.events.size}`);
  if (got.status !== 200) return;
  keepEvents(timeline, got.body.events);
  timeline.olderLeft = got.body.events.length === EVENT_PAGE || got.body.truncated;
  render();
}

async function loadTimeline(sid) {
  state.timeline = { sid, events: new Map(), lastSeq: 0, firstSeq: Infinity, olderLeft: false, interactions: new Map(), type: "" };
  await refreshSession(sid);
  await loadNewestEvents(sid);
  // Anything that arrived while the first page loaded.
  if (state.timeline.lastSeq > 0) await loadEvents(sid);
  await eachInteraction(sid, "", (i) => state.timeline.interactions.set(i.interaction_id, i));
}

// ---- activity across sessions -------------------------------------------------------------

/// The activity view's filters, as the URL names them: search text, tool, event type, session,
/// project (a working directory) and how far back (minutes; also the chart's window when it
/// is 5, 15 or 60).
const ACTIVITY_FILTERS = ["q", "tool", "type", "session", "project", "range"];
const RANGES = { "5": "last 5 minutes", "15": "last 15 minutes", "60": "last hour", "1440": "last day", "": "any time" };
const ACTIVITY_PAGE = 50;
/// How many events the live list holds at first; "Show older" adds a page. Live updates
/// drop the oldest beyond it, so a page left open all day holds a bounded list.
const ACTIVITY_KEEP = 200;

function activityQuery(filters, after, until) {
  const query = new URLSearchParams({ limit: String(ACTIVITY_PAGE) });
  if (filters.q) query.set("q", filters.q);
  if (filters.tool) query.set("tool", filters.tool);
  if (filters.type) query.set("event_type", filters.type);
  if (filters.session) query.set("session_id", filters.session);
  if (filters.project) query.set("project", filters.project);
  if (filters.range) query.set("since", new Date(Date.now() - Number(filters.range) * 60000).toISOString());
  if (after) query.set("after", after);
  if (until) query.set("until", until);
  return `/v1/events?${query}`;
}

const eventKey = (e) => `${e.session_id}/${e.seq}`;

/// The newest matching events (the first page), merged with those held; and the chart.
async function loadActivity() {
  const a = state.activity;
  const filters = { ...a.filters };
  const [found, chart] = await Promise.all([
    api("GET", activityQuery(filters)),
    api("GET", `/v1/activity?minutes=${a.minutes}`),
  ]);
  if (state.activity !== a || JSON.stringify(filters) !== JSON.stringify(a.filters)) return;
  if (found.status === 200) {
    if (!a.loaded) a.older = Boolean(found.body.next);
    a.loaded = true;
    for (const e of found.body.events) a.events.set(eventKey(e), e);
    keepNewest(a);
    a.error = "";
  } else {
    a.error = found.body?.detail ?? `search failed (${found.status})`;
  }
  if (chart.status === 200) a.chart = chart.body;
}

const newestFirst = (x, y) => y.received_at.localeCompare(x.received_at) || y.session_id.localeCompare(x.session_id) || y.seq - x.seq;

/// Drops the oldest events beyond what the list keeps.
function keepNewest(a) {
  if (a.events.size <= a.keep) return;
  const kept = [...a.events.values()].sort(newestFirst).slice(0, a.keep);
  a.events = new Map(kept.map((e) => [eventKey(e), e]));
  a.older = true;
}

/// The page of events before the oldest held: those received up to its millisecond (the ones
/// of that millisecond already held are merged by key, and the cursor walks past them).
async function loadOlderActivity() {
  const a = state.activity;
  const oldest = [...a.events.values()].sort(newestFirst).at(-1);
  const until = oldest ? new Date(Date.parse(oldest.received_at) + 1).toISOString() : undefined;
  const before = a.events.size;
  a.keep += ACTIVITY_PAGE;
  // Many events of one millisecond: the cursor walks past those already held.
  let after;
  let got;
  for (let pages = 0; pages < 20; pages += 1) {
    got = await api("GET", activityQuery(a.filters, after, until));
    if (got.status !== 200) return;
    for (const e of got.body.events) a.events.set(eventKey(e), e);
    after = got.body.next;
    if (a.events.size > before || !after) break;
  }
  a.older = Boolean(got.body.next);
  keepNewest(a);
  render();
}

/// Opens (or re-filters) the activity view from the address.
async function openActivity(params) {
  const filters = Object.fromEntries(ACTIVITY_FILTERS.map((name) => [name, params.get(name) ?? ""]));
  const same = state.activity && JSON.stringify(state.activity.filters) === JSON.stringify(filters);
  if (!same) {
    const minutes = ["5", "60"].includes(filters.range) ? Number(filters.range) : 15;
    state.activity = { filters, events: new Map(), older: false, keep: ACTIVITY_KEEP, chart: null, minutes, loaded: false, error: "" };
    await loadActivity();
  }
}

// Live: a burst of notifications costs one search and one chart read, at most one a second
// (the text index takes in new events within about half a second of their commit).
let activityTimer = null;
function refreshActivitySoon() {
  if (activityTimer) return;
  activityTimer = setTimeout(async () => {
    activityTimer = null;
    if (!state.activity) return;
    try {
      await loadActivity();
    } catch (error) {
      console.error(error);
    }
    if (state.activity) renderSoon();
  }, 1000);
}

// ---- deciding -------------------------------------------------------------------------------

/// Approves or rejects; `always` is one of the request's permission suggestions to approve
/// with ("always allow"), which the agent's hook hands to Claude Code; `input` replaces the
/// tool's input (a question's answers).
async function decide(key, decision, reason, always, input) {
  const approval = state.approvals.get(key);
  const base = `/v1/sessions/${approval.session_id}/interactions/${approval.interaction_id}`;
  state.decidedHere.set(key, decision);
  const response = { reason: input ? "answered in the dashboard" : "approved in the dashboard" };
  if (always) response.updated_permissions = [always];
  if (input) response.updated_input = input;
  // Who decides, as this browser was told (the name box above the inbox).
  const by = localStorage.getItem("orchestrator-name") || undefined;
  const got = decision === "approve"
    ? await api("POST", `${base}/resolve`, { response, decided_by: by })
    : await api("POST", `${base}/reject`, { reason: reason || "rejected in the dashboard", decided_by: by });
  // 200: this tab decided. 409: another tab (or the deadline) got there first; the answer
  // carries the interaction as it stands, which is what every tab then shows.
  const interaction = got.status === 200 ? got.body.interaction : got.body?.interaction;
  if (interaction) {
    if (!(got.status === 200 && got.body.completed_now)) state.decidedHere.delete(key);
    noteInteraction(approval.session_id, interaction, false);
  }
  render();
}

// ---- what an event says ---------------------------------------------------------------------
// Claude Code's hook events (and any client's) in one line, and expanded as their kind reads
// best. Everything is text nodes: nothing from an event is ever parsed as HTML.

const TOOL_EVENTS = new Set(["PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest", "PermissionDenied"]);

function firstLine(text, max = 120) {
  const line = String(text ?? "").split("\n").find((l) => l.trim()) ?? "";
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/// A path as the project sees it: relative to the session's working directory when inside it.
function shortPath(path, cwd) {
  if (typeof path !== "string") return "";
  if (cwd && path === cwd) return ".";
  if (cwd && path.startsWith(`${cwd}/`)) return path.slice(cwd.length + 1);
  return path;
}

/// What a tool use is about: its command, file, pattern, address or description.
function toolSubject(tool, input, cwd) {
  if (!input || typeof input !== "object") return "";
  switch (tool) {
    case "Bash": return firstLine(input.command);
    case "Read": case "Write": case "Edit": case "MultiEdit": case "NotebookEdit":
      return shortPath(input.file_path ?? input.notebook_path, cwd);
    case "Grep": return `${input.pattern ?? ""}${input.path ? ` in ${shortPath(input.path, cwd)}` : ""}`;
    case "Glob": return String(input.pattern ?? "");
    case "WebFetch": return String(input.url ?? "");
    case "WebSearch": return String(input.query ?? "");
    case "Task": case "Agent": return firstLine(input.description ?? input.prompt);
    default: {
      const text = Object.values(input).find((v) => typeof v === "string");
      return firstLine(text ?? "");
    }
  }
}

/// One line saying what happened.
function summarize(e) {
  const d = e.data && typeof e.data === "object" ? e.data : {};
  const tool = d.tool_name;
  if (TOOL_EVENTS.has(e.event_type) && tool) {
    const subject = toolSubject(tool, d.tool_input, d.cwd);
    const line = subject ? `${tool}: ${subject}` : tool;
    if (e.event_type === "PostToolUseFailure") return `${line} — failed: ${firstLine(d.error, 80)}`;
    if (e.event_type === "PermissionDenied") return `${line} — denied`;
    return line;
  }
  switch (e.event_type) {
    case "UserPromptSubmit": return `“${firstLine(d.prompt, 100)}”`;
    case "Notification": return firstLine(d.message);
    case "Stop": case "SubagentStop": return d.last_assistant_message ? firstLine(d.last_assistant_message) : "stopped";
    case "StopFailure": return `failed: ${firstLine(d.error ?? d.message)}`;
    case "SessionStart": return [d.source, d.model].filter(Boolean).join(" · ");
    case "SessionEnd": return d.reason ? `ended: ${d.reason}` : "ended";
    case "PostToolBatch": {
      const calls = Array.isArray(d.tool_calls) ? d.tool_calls : [];
      return calls.map((c) => { const s = toolSubject(c.tool_name, c.tool_input, d.cwd); return s ? `${c.tool_name}: ${s}` : c.tool_name; }).join(", ");
    }
    case "MessageDisplay": return firstLine(d.delta);
    case "SubagentStart": return [d.agent_type, d.agent_id].filter(Boolean).join(" ");
    default: return firstLine(d.message ?? d.summary ?? d.status ?? d.reason ?? "");
  }
}

function labelled(label, ...content) {
  return el("div", { class: "field" }, el("span", { class: "label", text: label }), ...content);
}

function block(text, kind = "") {
  return el("pre", { class: `block ${kind}`.trim(), text: String(text ?? "") });
}

/// Lines of a unified diff, each marked for its kind (added, removed, context).
function diffView(lines) {
  return el("pre", { class: "diff" }, ...lines.map((line) => {
    const kind = line.startsWith("+") ? "added" : line.startsWith("-") ? "removed" : "context";
    return el("span", { class: kind, text: `${line}\n` });
  }));
}

/// The diff of an edit: Claude Code's structured patch when the result has one, else the
/// replaced text against the new.
function editDiff(input, response) {
  const patch = response && Array.isArray(response.structuredPatch) ? response.structuredPatch : [];
  if (patch.length) return patch.flatMap((hunk) => [`@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`, ...hunk.lines]);
  const edits = Array.isArray(input?.edits) ? input.edits : [input ?? {}];
  return edits.flatMap((edit) => [
    ...String(edit.old_string ?? "").split("\n").map((l) => `-${l}`),
    ...String(edit.new_string ?? "").split("\n").map((l) => `+${l}`),
  ]);
}

/// The expanded view of a tool use, as its kind reads best.
function toolDetail(e) {
  const d = e.data;
  const input = d.tool_input ?? {};
  const response = d.tool_response;
  const parts = [];
  switch (d.tool_name) {
    case "Bash":
      parts.push(labelled("command", block(input.command, "command")));
      if (input.description) parts.push(labelled("description", el("span", { text: input.description })));
      if (response && typeof response === "object") {
        if (response.stdout) parts.push(labelled("output", block(response.stdout)));
        if (response.stderr) parts.push(labelled("errors", block(response.stderr)));
        parts.push(labelled("exit", el("span", { class: "exit ok", text: response.interrupted ? "interrupted" : "0" })));
      }
      if (e.event_type === "PostToolUseFailure") {
        const code = /Exit code (\d+)/.exec(String(d.error ?? ""));
        parts.push(labelled("exit", el("span", { class: "exit failed", text: code ? code[1] : "failed" })));
        parts.push(labelled("output", block(d.error)));
      }
      break;
    case "Edit": case "MultiEdit":
      parts.push(labelled("file", el("span", { text: input.file_path ?? "" })));
      parts.push(labelled("diff", diffView(editDiff(input, response))));
      break;
    case "Write":
      parts.push(labelled("file", el("span", { text: input.file_path ?? "" })));
      parts.push(labelled("content", block(input.content)));
      break;
    case "Read": {
      parts.push(labelled("file", el("span", { text: input.file_path ?? "" })));
      const file = response?.file;
      if (file) parts.push(labelled("read", el("span", { text: `${file.numLines} of ${file.totalLines} lines` })));
      break;
    }
    case "Grep": case "Glob":
      parts.push(labelled("pattern", el("code", { text: input.pattern ?? "" })));
      if (input.path) parts.push(labelled("in", el("span", { text: input.path })));
      if (response !== undefined) {
        const found = typeof response === "string" ? firstLine(response, 200)
          : response?.numFiles !== undefined ? `${response.numFiles} files` : JSON.stringify(response);
        parts.push(labelled("result", el("span", { text: found })));
      }
      break;
    default:
      return [];
  }
  if (e.event_type === "PostToolUseFailure" && d.tool_name !== "Bash") parts.push(labelled("error", block(d.error)));
  return parts;
}

/// The expanded view of an event: its kind's rendering, then the raw JSON with a copy button.
function eventDetail(e) {
  const d = e.data && typeof e.data === "object" ? e.data : {};
  const parts = TOOL_EVENTS.has(e.event_type) && d.tool_name ? toolDetail(e) : [];
  if (e.event_type === "UserPromptSubmit" && d.prompt) parts.push(labelled("prompt", block(d.prompt)));
  if ((e.event_type === "Stop" || e.event_type === "SubagentStop") && d.last_assistant_message) parts.push(labelled("reply", block(d.last_assistant_message)));
  if (e.event_type === "Notification" && d.message) parts.push(labelled(d.notification_type ?? "message", block(d.message)));
  const raw = JSON.stringify(e.data, null, 2);
  const copy = el("button", { type: "button", class: "copy", text: "Copy", onclick: async (click) => {
    await navigator.clipboard?.writeText(raw).catch(() => {});
    click.target.textContent = "Copied";
  } });
  parts.push(el("details", { class: "raw" }, el("summary", { text: "raw JSON" }), copy, el("pre", { text: raw })));
  return parts;
}

// ---- views ----------------------------------------------------------------------------------

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function countdown(deadline) {
  const left = Math.max(0, Math.round((new Date(deadline) - Date.now()) / 1000));
  return `expires in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
}

function pendingApprovalsOf(sid) {
  let n = 0;
  for (const a of state.approvals.values()) if (a.session_id === sid && a.status === "pending") n += 1;
  return n;
}

/// How long an agent that is working or waiting may stay silent before it is shown as gone quiet.
const QUIET_MS = 10 * 60 * 1000;

/// What a session is doing, in a word: from its events (working, waiting for you, stopped,
/// ended), "gone quiet" when a working or waiting agent has sent nothing for a while, else its
/// status.
function sessionState(s) {
  if (s.status === "ended" || s.activity === "ended") return "ended";
  const quiet = Date.now() - new Date(s.updated_at).getTime() > QUIET_MS;
  if ((s.activity === "working" || s.activity === "waiting") && quiet) return "gone quiet";
  if (s.activity === "waiting" || pendingApprovalsOf(s.session_id) > 0) return "waiting for you";
  return s.activity ?? s.status;
}

/// A project by its directory's name (the full path is its title).
function projectName(path) {
  if (typeof path !== "string" || !path) return "";
  return path.replace(/\/+$/, "").split("/").pop() || path;
}

/// The route (`#/…`) and its query, the part after `?`.
function hashParts() {
  const [path, query = ""] = location.hash.split("?");
  return { path: path || "#/", params: new URLSearchParams(query) };
}

/// Sets (or, when empty, removes) parameters of the route's query, in place: a filter is part
/// of the address without a history entry per keystroke.
function setParams(updates) {
  const { path, params } = hashParts();
  for (const [name, value] of Object.entries(updates)) {
    if (value) params.set(name, value);
    else params.delete(name);
  }
  const query = params.toString();
  history.replaceState(null, "", `${location.pathname}${location.search}${path}${query ? `?${query}` : ""}`);
}

const SESSION_STATES = ["working", "waiting for you", "stopped", "ended", "gone quiet"];

/// A labelled filter: "any" and `values` (shown by `names` where given), `current` selected.
function filterSelect(id, label, current, values, onchange, names = {}) {
  return [
    el("label", { for: id, text: label }),
    el("select", { id, onchange: (e) => onchange(e.target.value) },
      ...[...new Set(["", ...values])].map((v) => el("option", { value: v, selected: v === current, text: names[v] ?? (v || "any") }))),
  ];
}

function sessionsView() {
  const f = state.filters;
  const setFilter = (name) => async (value) => {
    f[name] = value;
    setParams({ [name]: value });
    if (name === "status") await loadSessions();
    render();
  };
  const projects = [...new Set([...state.sessions.values()].map((s) => projectName(s.project)).filter(Boolean))].sort();
  if (!state.findBox) {
    // Made once, so typing is not interrupted by live re-renders.
    state.findBox = el("input", { id: "find", type: "search", placeholder: "title, id or project", value: f.find,
      oninput: (e) => { f.find = e.target.value; setParams({ find: f.find.trim() }); render(); } });
  }
  const find = f.find.trim().toLowerCase();
  const rows = [...state.sessions.values()]
    .filter((s) => !f.status || s.status === f.status)
    .filter((s) => !f.state || sessionState(s) === f.state)
    .filter((s) => !f.project || projectName(s.project) === f.project)
    .filter((s) => !find || [s.title, s.session_id, s.project].some((v) => typeof v === "string" && v.toLowerCase().includes(find)))
    .sort((a, b) => b.updated_at.localeCompare(a.updated_at))
    .map((s) => el("tr", { "data-session": s.session_id, "data-state": sessionState(s) },
      el("td", { class: "name" },
        el("a", { href: `#/session/${encodeURIComponent(s.session_id)}`, text: firstLine(s.title, 80) || s.session_id }),
        s.title ? el("div", { class: "muted id", text: s.session_id }) : null),
      el("td", { class: "project", title: s.project ?? "" , text: projectName(s.project) },
        s.model ? el("div", { class: "muted", text: s.model }) : null),
      el("td", { class: "state" }, el("span", { class: `badge ${sessionState(s).replaceAll(" ", "-")}`, text: sessionState(s) })),
      el("td", { class: "events", text: String(s.event_count) }),
      el("td", { class: "approvals", text: String(pendingApprovalsOf(s.session_id)) }),
      el("td", { text: when(s.updated_at) }, el("div", { class: "muted", text: `started ${when(s.created_at)}` }))));
  return [
    el("div", { class: "toolbar" }, el("h2", { text: "Sessions" }),
      ...filterSelect("status-filter", "Status", f.status, ["active", "idle", "ended"], setFilter("status")),
      ...filterSelect("state-filter", "State", f.state, SESSION_STATES, setFilter("state")),
      ...filterSelect("project-filter", "Project", f.project, projects, setFilter("project")),
      el("label", { for: "find", text: "Find" }), state.findBox),
    el("table", { id: "sessions" },
      el("thead", {}, el("tr", {}, ...["Session", "Project", "State", "Events", "Pending approvals", "Last activity"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...rows)),
    rows.length ? null : el("p", { class: "muted", text: state.sessions.size ? "No session matches these filters." : "No sessions yet." }),
  ];
}

function timelineView() {
  const t = state.timeline;
  const session = state.sessions.get(t.sid);
  const types = [...new Set([...t.events.values()].map((e) => e.event_type))].sort();
  const filter = el("select", { id: "type-filter", onchange: (e) => { t.type = e.target.value; setParams({ type: t.type }); render(); } },
    el("option", { value: "", text: "all types" }),
    ...types.map((type) => el("option", { value: type, selected: type === t.type, text: type })));
  const events = [...t.events.values()]
    .filter((e) => !t.type || e.event_type === t.type)
    .sort((a, b) => a.seq - b.seq)
    .map((e) => el("tr", { "data-seq": String(e.seq), "data-sequence": e.sequence ?? "", "data-type": e.event_type },
      el("td", { text: String(e.seq) }),
      el("td", { text: e.event_type }),
      el("td", { class: "what" },
        typeof e.data?.agent_type === "string" ? el("span", { class: "badge agent", text: e.data.agent_type }) : null,
        el("details", {}, el("summary", { class: "summary", text: summarize(e) || e.event_type }), ...eventDetail(e)),
        e.out_of_order ? el("span", { class: "flag", text: "out of order" }) : null),
      el("td", { text: when(e.timestamp) })));
  const interactions = [...t.interactions.values()].map((i) => el("tr", {},
    el("td", { text: i.interaction_id }), el("td", { text: i.kind }), el("td", { text: i.status }),
    el("td", { text: i.outcome ?? "" })));
  return [
    el("h2", { text: `Session ${t.sid}` }),
    session?.title ? el("p", { class: "title", text: session.title }) : null,
    session ? el("p", { class: "muted", text: [projectName(session.project) && `${projectName(session.project)} (${session.project})`, session.model, sessionState(session), `${session.event_count} events`, `last activity ${when(session.updated_at)}`].filter(Boolean).join(" · ") }) : null,
    messageBox(t),
    el("h3", { text: "Interactions and commands" }),
    interactions.length
      ? el("table", { id: "interactions" }, el("thead", {}, el("tr", {}, ...["Interaction", "Kind", "Status", "Outcome"].map((h) => el("th", { scope: "col", text: h })))), el("tbody", {}, ...interactions))
      : el("p", { class: "muted", text: "None." }),
    subagentsView(t),
    viewSwitch(t),
    t.conversation ? conversationView(t) : null,
    t.conversation ? null : el("div", { class: "toolbar" }, el("h3", { text: "Events" }), el("label", { for: "type-filter", text: "Event type" }), filter),
    !t.conversation && t.olderLeft
      ? el("p", {}, el("button", { type: "button", id: "older", onclick: loadOlderEvents,
        text: `Show older events (${t.firstSeq - 1} before these)` }))
      : null,
    t.conversation ? null : el("table", { id: "timeline" },
      el("thead", {}, el("tr", {}, ...["Seq", "Type", "What happened", "Time"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...events)),
  ];
}

/// The subagents the session started (SubagentStart / SubagentStop, and the `agent_id` every
/// event inside a subagent carries), from the events held: what each is, whether it is still
/// running, how many events it sent, and its last reply.
function subagentsView(t) {
  const agents = new Map();
  const agent = (id) => {
    if (!agents.has(id)) agents.set(id, { id, type: "", events: 0, state: "running", said: "", started: "" });
    return agents.get(id);
  };
  for (const e of [...t.events.values()].sort((a, b) => a.seq - b.seq)) {
    const d = e.data && typeof e.data === "object" ? e.data : {};
    if (typeof d.agent_id !== "string" || !d.agent_id) continue;
    const a = agent(d.agent_id);
    a.events += 1;
    if (d.agent_type) a.type = d.agent_type;
    if (e.event_type === "SubagentStart") a.started ||= e.timestamp;
    if (e.event_type === "SubagentStop") {
      a.state = "finished";
      a.said = d.last_assistant_message ?? "";
    }
  }
  if (!agents.size) return null;
  return el("section", { class: "subagents", "aria-label": "Subagents" },
    el("h3", { text: "Subagents" }),
    el("ul", { id: "subagents" }, ...[...agents.values()].map((a) => el("li", { "data-agent": a.id, "data-state": a.state },
      el("span", { class: "agent-type", text: a.type || "subagent" }), " ",
      el("span", { class: `badge ${a.state === "running" ? "working" : "stopped"}`, text: a.state }),
      el("span", { class: "muted", text: ` · ${a.events} events${a.started ? ` · started ${when(a.started)}` : ""}` }),
      a.said ? el("div", { class: "said", text: firstLine(a.said, 160) }) : null))));
}

/// Events or conversation: two views of the same session.
function viewSwitch(t) {
  const base = `#/session/${encodeURIComponent(t.sid)}`;
  const link = (href, text, current) => el("a", { href, text, "aria-current": current ? "page" : null });
  return el("nav", { class: "view-switch", "aria-label": "Session views" },
    link(base, "Events", !t.conversation), link(`${base}/conversation`, "Conversation", t.conversation));
}

/// The session as a conversation: the user's prompts, the agent's replies (its last message at
/// each Stop, a subagent's at SubagentStop), the tool calls between them in one line each, and
/// the messages sent from here where they were delivered. Built from the stored events, so it
/// reads the same whichever way the events came.
function conversationView(t) {
  const entries = [];
  for (const e of [...t.events.values()].sort((a, b) => a.seq - b.seq)) {
    const d = e.data && typeof e.data === "object" ? e.data : {};
    let entry = null;
    if (e.event_type === "UserPromptSubmit" && d.prompt) {
      entry = el("li", { class: "turn user" }, el("span", { class: "who", text: "You" }), block(d.prompt, "said"));
    } else if ((e.event_type === "Stop" || e.event_type === "SubagentStop") && d.last_assistant_message) {
      const who = e.event_type === "SubagentStop" ? `Subagent${d.agent_type ? ` ${d.agent_type}` : ""}` : "Agent";
      entry = el("li", { class: "turn agent" }, el("span", { class: "who", text: who }), block(d.last_assistant_message, "said"));
    } else if (e.event_type === "PostToolUse" || e.event_type === "PostToolUseFailure" || e.event_type === "PermissionDenied") {
      entry = el("li", { class: `tool ${e.event_type === "PostToolUse" ? "" : "failed"}`.trim(), text: summarize(e) });
    }
    if (entry) entries.push({ at: e.timestamp, seq: e.seq, node: entry });
  }
  for (const m of t.interactions.values()) {
    if (m.kind !== "command" || typeof m.payload?.prompt !== "string" || m.status !== "completed") continue;
    const at = m.result?.delivered_at ?? m.completed_at;
    entries.push({ at, seq: Infinity, node: el("li", { class: "turn user sent" },
      el("span", { class: "who", text: "You, from the dashboard" }), block(m.payload.prompt, "said")) });
  }
  entries.sort((a, b) => a.at.localeCompare(b.at) || a.seq - b.seq);
  return entries.length
    ? el("ol", { id: "conversation", "aria-label": "Conversation" }, ...entries.map((x) => x.node))
    : el("p", { class: "muted", text: "Nothing said yet." });
}

/// "Send the agent a message": queues a command with a `prompt`, which the agent's Stop hook
/// delivers at its next stop; the list shows each message queued, then delivered.
function messageBox(t) {
  const messages = [...t.interactions.values()]
    .filter((i) => i.kind === "command" && typeof i.payload?.prompt === "string")
    .sort((a, b) => a.created_at.localeCompare(b.created_at));
  // The form is made once per timeline, so a message being typed survives live updates.
  t.messageForm ??= messageForm(t);
  const list = el("ul", { id: "messages" }, ...messages.map((m) => el("li", { "data-status": m.status },
    el("span", { class: "prompt", text: m.payload.prompt }), " — ",
    el("span", { class: "state", text: messageState(m) }))));
  return el("section", { class: "messages", "aria-label": "Messages to the agent" }, t.messageForm, messages.length ? list : null);
}

function messageForm(t) {
  const text = el("textarea", { id: "message-text", name: "prompt", rows: "2", required: true,
    placeholder: "e.g. now add a test for it" });
  const status = el("p", { id: "message-status", class: "muted", role: "status" });
  const form = el("form", { id: "message-form", class: "message-form", onsubmit: async (e) => {
    e.preventDefault();
    const prompt = text.value.trim();
    if (!prompt) return;
    const got = await api("POST", `/v1/sessions/${t.sid}/commands`, { payload: { prompt } });
    if (got.status === 201 || got.status === 200) {
      text.value = "";
      t.interactions.set(got.body.interaction_id, got.body);
      render();
    } else {
      status.textContent = `Not sent: ${got.body?.detail ?? got.status}`;
    }
  } },
  el("label", { for: "message-text", text: "Send the agent a message" }),
  text,
  el("button", { type: "submit", text: "Send" }),
  status);
  return form;
}

function messageState(m) {
  if (m.status === "queued") return "waiting for the agent's next stop";
  if (m.status === "completed" && m.outcome === "ok") return `delivered ${when(m.result?.delivered_at ?? m.completed_at)}`;
  if (m.status === "pending") return "being delivered";
  return m.status.replace("_", " ");
}

/// The words for a decided approval, from this tab's point of view.
function outcomeText(key, a) {
  // "here" only when this tab's decision is the one that holds: a losing click is still in
  // flight when the winner's notification arrives.
  const mine = state.decidedHere.get(key);
  const here = (mine === "approve" && a.outcome === "approved") || (mine === "reject" && a.outcome === "rejected");
  // Decided before this page saw it open: history, said with when it was decided.
  const place = here ? "here" : state.seenPending.has(key) ? "in another tab" : when(a.completed_at);
  const where = a.decided_by ? `by ${a.decided_by} ${place}` : place;
  const answers = a.result?.updated_input?.answers;
  if (a.outcome === "approved" && answers && typeof answers === "object") {
    return `Answered ${where}: ${Object.values(answers).join("; ")}`;
  }
  if (a.outcome === "approved") return `Approved ${where}`;
  if (a.outcome === "rejected") return `Rejected ${where}${typeof a.result === "string" && a.result ? `: ${a.result}` : ""}`;
  if (a.status === "timed_out") return `Timed out ${when(a.completed_at)}`;
  if (a.status === "cancelled") return `Cancelled ${when(a.completed_at)}`;
  return a.status;
}

const cards = new Map(); // approval key -> its card, kept so typing a reason survives updates

function approvalCard(key, a) {
  let card = cards.get(key);
  if (!card) {
    const reason = el("input", { type: "text", name: "reason", "aria-label": "Reason for rejecting", placeholder: "reason (optional)" });
    const description = a.payload?.tool_input?.description;
    const meta = [a.payload?.cwd, `asked ${when(a.created_at)}`].filter(Boolean).join(" · ");
    const questions = questionsOf(a);
    card = el("article", { class: "card", "data-key": key, tabindex: "0", "aria-label": `${a.payload?.tool_name ?? a.kind} in ${a.session_id}` },
      el("h3", {}, el("span", { text: questions ? "A question" : String(a.payload?.tool_name ?? a.kind) }), questions ? " from " : " in ",
        el("a", { href: `#/session/${encodeURIComponent(a.session_id)}`, text: a.session_id })),
      typeof description === "string" ? el("p", { class: "description", text: description }) : null,
      // A question's card shows what was asked once it is answered (its form does before).
      el("div", { class: "ask", text: questions ? questions.map((q) => q.question).join("\n") : describe(a.payload) }),
      el("p", { class: "meta muted", text: meta }),
      el("p", { class: "status" }),
      questions ? questionForm(key, a, questions) : el("form", { onsubmit: (e) => e.preventDefault() },
        el("button", { type: "button", onclick: () => decide(key, "approve") , text: "Approve" }),
        ...suggestionsOf(a).map((suggestion) => el("button", { type: "button", class: "always",
          onclick: () => decide(key, "approve", undefined, suggestion), text: `Approve and always allow ${describeSuggestion(suggestion)}` })),
        reason,
        el("button", { type: "button", onclick: () => decide(key, "reject", reason.value.trim()), text: "Reject" })));
    cards.set(key, card);
  }
  card.dataset.status = a.status;
  card.dataset.outcome = a.outcome ?? "";
  const open = a.status === "pending";
  card.querySelector("form").hidden = !open;
  card.querySelector(".ask").hidden = open && card.querySelector("form.questions") !== null;
  const status = card.querySelector(".status");
  status.className = open ? "status muted" : "status decided";
  status.textContent = open ? (a.deadline ? countdown(a.deadline) : "waiting") : outcomeText(key, a);
  return card;
}

/// The questions of an `AskUserQuestion` request (Claude Code asks them through its permission
/// dialog), or null for any other request.
function questionsOf(a) {
  const questions = a.payload?.tool_name === "AskUserQuestion" ? a.payload?.tool_input?.questions : null;
  if (!Array.isArray(questions) || !questions.length) return null;
  return questions.filter((q) => q && typeof q.question === "string");
}

/// The questions as a form: each one's options (several may be picked when it says so) and
/// an answer of one's own. Sent as the tool's input with `answers` (question → answer; picks
/// joined by ", "), which Claude Code's hook passes on as `updatedInput`; Claude Code then
/// takes them as the user's answers.
function questionForm(key, a, questions) {
  const status = el("p", { class: "question-status", role: "alert" });
  const id = (i, j) => `q-${key.replace(/[^A-Za-z0-9_-]/g, "_")}-${i}${j === undefined ? "" : `-${j}`}`;
  const sets = questions.map((q, i) => {
    const options = Array.isArray(q.options) ? q.options.filter((o) => o && typeof o.label === "string") : [];
    const type = q.multiSelect ? "checkbox" : "radio";
    return el("fieldset", { class: "question", "data-question": q.question },
      el("legend", {}, q.header ? el("span", { class: "badge", text: q.header }) : null, " ", q.question),
      ...options.map((o, j) => el("div", { class: "option" },
        el("input", { type, id: id(i, j), name: id(i), value: o.label }),
        el("label", { for: id(i, j) }, o.label, o.description ? el("span", { class: "muted", text: ` — ${o.description}` }) : null))),
      el("div", { class: "option" },
        el("label", { for: id(i, "other"), text: "Other: " }),
        el("input", { type: "text", id: id(i, "other"), name: `${id(i)}-other`, class: "other" })));
  });
  return el("form", { class: "questions", onchange: () => { status.textContent = ""; }, onsubmit: (e) => {
    e.preventDefault();
    const answers = {};
    for (const set of sets) {
      const picked = [...set.querySelectorAll("input:checked")].map((input) => input.value);
      const own = set.querySelector("input.other").value.trim();
      if (own) picked.push(own);
      if (!picked.length) {
        status.textContent = `Answer “${set.dataset.question}” first.`;
        set.querySelector("input")?.focus();
        return;
      }
      answers[set.dataset.question] = picked.join(", ");
    }
    status.textContent = "";
    decide(key, "approve", undefined, undefined, { ...a.payload.tool_input, answers });
  } },
  ...sets,
  status,
  el("div", { class: "actions" },
    el("button", { type: "submit", text: "Send answers" }),
    el("input", { type: "text", name: "reason", "aria-label": "Reason for declining", placeholder: "reason (optional)" }),
    el("button", { type: "button", onclick: (e) => decide(key, "reject", e.target.form.querySelector('input[name="reason"]').value.trim()), text: "Decline" })));
}

/// The "always allow" options Claude Code's dialog would offer for this request.
function suggestionsOf(a) {
  const suggestions = a.payload?.permission_suggestions;
  return Array.isArray(suggestions) ? suggestions.filter((s) => s && typeof s === "object") : [];
}

/// A permission suggestion in words: what it allows, and where Claude Code keeps it.
function describeSuggestion(s) {
  const where = { session: "for this session", localSettings: "in this project (local settings)",
    projectSettings: "in this project", userSettings: "everywhere (user settings)" }[s.destination] ?? "";
  let what;
  if (s.type === "addRules" && Array.isArray(s.rules)) {
    what = s.rules.map((r) => (r.ruleContent ? `${r.toolName}(${r.ruleContent})` : r.toolName)).join(", ");
  } else if (s.type === "setMode") {
    what = `${s.mode} mode`;
  } else if (s.type === "addDirectories" && Array.isArray(s.directories)) {
    what = `access to ${s.directories.join(", ")}`;
  } else {
    what = s.type ?? "this";
  }
  return [what, where].filter(Boolean).join(" ");
}

function describe(payload) {
  if (!payload || typeof payload !== "object") return JSON.stringify(payload);
  const input = payload.tool_input;
  if (input && typeof input === "object" && typeof input.command === "string") return input.command;
  return JSON.stringify(input ?? payload, null, 2);
}

function approvalsView() {
  const all = [...state.approvals.entries()].sort(([, a], [, b]) =>
    (a.status === "pending" ? 0 : 1) - (b.status === "pending" ? 0 : 1) || b.created_at.localeCompare(a.created_at));
  // Made once, so typing is not interrupted by live re-renders; kept in this browser.
  state.nameBox ??= el("input", { id: "decider-name", type: "text", autocomplete: "name", maxlength: "128",
    value: localStorage.getItem("orchestrator-name") ?? "",
    oninput: (e) => localStorage.setItem("orchestrator-name", e.target.value.trim()) });
  return [
    el("h2", { text: "Approvals" }),
    el("p", { class: "decider" }, el("label", { for: "decider-name", text: "Your name, shown with your decisions " }), state.nameBox),
    all.length ? null : el("p", { class: "muted", text: "Nothing to approve." }),
    all.length ? el("p", { class: "shortcuts muted" }, "Keys: ", el("kbd", { text: "j" }), " / ", el("kbd", { text: "k" }),
      " next / previous · ", el("kbd", { text: "a" }), " approve · ", el("kbd", { text: "r" }), " reject") : null,
    el("section", { id: "approvals", "aria-label": "Approvals" }, ...all.map(([key, a]) => approvalCard(key, a))),
  ];
}

/// A session's name for people: its title (first prompt) if it has one, else its id.
function sessionName(sid) {
  const s = state.sessions.get(sid);
  return firstLine(s?.title, 60) || sid;
}

const CHART_SERIES = 6;

/// Events per minute, a stacked bar per minute: the busiest sessions each in their colour, the
/// rest together. Drawn as SVG by script (no inline style, so the page's CSP holds).
function activityChart(chart) {
  if (!chart) return el("p", { class: "muted", text: "Loading…" });
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = (tag, attributes = {}) => {
    const node = document.createElementNS(svgNs, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    return node;
  };
  const series = chart.sessions.slice(0, CHART_SERIES).map((s, i) => ({ name: sessionName(s.session_id), sid: s.session_id, counts: s.per_minute, colour: i }));
  const rest = chart.total.map((total, m) => total - series.reduce((sum, s) => sum + s.counts[m], 0));
  if (rest.some((n) => n > 0)) series.push({ name: "other sessions", counts: rest, colour: "other" });
  const peak = Math.max(1, ...chart.total);
  const [width, height, gap] = [1000, 110, 2];
  const barWidth = width / chart.minutes;
  const total = chart.total.reduce((a, b) => a + b, 0);
  const picture = svg("svg", { viewBox: `0 0 ${width} ${height + 16}`, role: "img", class: "chart",
    "aria-label": `Events per minute over the last ${chart.minutes} minutes: ${total} in all, at most ${Math.max(0, ...chart.total)} in a minute` });
  chart.total.forEach((_, m) => {
    let y = height;
    for (const s of series) {
      const n = s.counts[m];
      if (!n) continue;
      const h = (n / peak) * height;
      y -= h;
      const bar = svg("rect", { x: (m * barWidth + gap / 2).toFixed(1), y: y.toFixed(1), width: Math.max(1, barWidth - gap).toFixed(1), height: h.toFixed(1), class: `series-${s.colour}` });
      const title = svg("title");
      title.textContent = `${s.name}: ${n} event${n === 1 ? "" : "s"}, ${new Date(Date.parse(chart.from) + m * 60000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`;
      bar.append(title);
      picture.append(bar);
    }
  });
  picture.append(svg("line", { x1: 0, y1: height + 0.5, x2: width, y2: height + 0.5, class: "axis" }));
  const label = (x, text, anchor) => {
    const t = svg("text", { x, y: height + 13, "text-anchor": anchor, class: "axis-label" });
    t.textContent = text;
    return t;
  };
  picture.append(label(0, `${chart.minutes} min ago`, "start"), label(width, "now", "end"));
  const legend = el("ul", { class: "legend", "aria-label": "Chart legend" },
    ...series.map((s) => el("li", {}, el("span", { class: `swatch series-${s.colour}`, "aria-hidden": "true" }),
      s.sid ? el("a", { href: `#/session/${encodeURIComponent(s.sid)}`, text: s.name }) : s.name,
      el("span", { class: "muted", text: ` ${s.counts.reduce((a, b) => a + b, 0)}` }))));
  return el("figure", { class: "activity-chart" }, picture, el("figcaption", {}, legend));
}

function activityView() {
  const a = state.activity;
  const f = a.filters;
  const setFilter = (name) => (value) => {
    setParams({ [name]: value });
    route();
  };
  if (!state.searchBox) {
    // Made once, so typing is not interrupted by live re-renders; the search runs when the
    // typing pauses.
    let pause = null;
    state.searchBox = el("input", { id: "search", type: "search", placeholder: "command, path, prompt, message", value: f.q,
      oninput: (e) => { clearTimeout(pause); pause = setTimeout(() => setFilter("q")(e.target.value.trim()), 300); } });
  }
  const tools = ["Bash", "Edit", "MultiEdit", "Write", "Read", "Grep", "Glob", "WebFetch", "WebSearch", "Task", "Agent"];
  const types = ["PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest", "UserPromptSubmit", "Notification", "Stop", "SubagentStart", "SubagentStop", "SessionStart", "SessionEnd"];
  // A value the address names stays offered even when nothing listed has it.
  const select = (id, label, name, values, names) => filterSelect(id, label, f[name], [...values, f[name]], setFilter(name), names);
  const sessions = [...state.sessions.values()].sort((x, y) => y.updated_at.localeCompare(x.updated_at)).map((s) => s.session_id);
  const paths = [...new Set([...state.sessions.values()].map((s) => s.project).filter((p) => typeof p === "string" && p))].sort();
  // A project by its directory's name, or its whole path where two share a name.
  const named = (path) => paths.filter((p) => projectName(p) === projectName(path)).length > 1 ? path : projectName(path);
  const rows = [...a.events.values()]
    .sort(newestFirst)
    .map((e) => el("tr", { "data-session": e.session_id, "data-seq": String(e.seq), "data-type": e.event_type },
      el("td", { class: "when", text: new Date(e.received_at).toLocaleTimeString() }),
      el("td", { class: "session" }, el("a", { href: `#/session/${encodeURIComponent(e.session_id)}`, text: sessionName(e.session_id) })),
      el("td", { text: e.event_type }),
      el("td", { class: "what" },
        el("details", {}, el("summary", { class: "summary", text: summarize(e) || e.event_type }), ...eventDetail(e)))));
  const filtered = ACTIVITY_FILTERS.some((name) => f[name]);
  return [
    el("h2", { text: "Activity" }),
    el("div", { id: "announced", role: "status", "aria-live": "polite", class: "announced" },
      ...(state.announced.length ? ["New: ", ...state.announced.flatMap((sid, i) => [i ? ", " : "", el("a", { href: `#/session/${encodeURIComponent(sid)}`, text: sessionName(sid) })])] : [])),
    el("div", { class: "toolbar" },
      el("h3", { text: "Events per minute" }),
      ...["5", "15", "60"].map((m) => el("button", { type: "button", class: "window", "aria-pressed": String(a.minutes === Number(m)),
        onclick: async () => { a.minutes = Number(m); await loadActivity(); render(); }, text: `${m} min` }))),
    activityChart(a.chart),
    el("form", { class: "toolbar search", role: "search", onsubmit: (e) => { e.preventDefault(); setFilter("q")(state.searchBox.value.trim()); } },
      el("label", { for: "search", text: "Search" }), state.searchBox,
      ...select("tool-filter", "Tool", "tool", tools),
      ...select("kind-filter", "Event type", "type", types),
      ...select("session-filter", "Session", "session", sessions, Object.fromEntries(sessions.map((sid) => [sid, sessionName(sid)]))),
      ...select("project-filter", "Project", "project", paths, Object.fromEntries(paths.map((p) => [p, named(p)]))),
      ...select("range-filter", "When", "range", Object.keys(RANGES).filter(Boolean), RANGES)),
    a.error ? el("p", { role: "alert", class: "flag", text: a.error }) : null,
    el("table", { id: "activity" },
      el("thead", {}, el("tr", {}, ...["Time", "Session", "Type", "What happened"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...rows)),
    rows.length ? null : el("p", { class: "muted", text: !a.loaded ? "Loading…" : filtered ? "No event matches." : "No events yet." }),
    a.older ? el("p", {}, el("button", { type: "button", id: "older-activity", onclick: loadOlderActivity, text: "Show older events" })) : null,
  ];
}

function render() {
  renderedAt = Date.now();
  const pending = [...state.approvals.values()].filter((a) => a.status === "pending").length;
  $("#approval-count").textContent = pending ? String(pending) : "";
  const route = hashParts().path;
  const view = $("#view");
  const active = document.activeElement;
  let nodes;
  if (route.startsWith("#/session/") && state.timeline) nodes = timelineView();
  else if (route === "#/approvals") nodes = approvalsView();
  else if (route === "#/activity" && state.activity) nodes = activityView();
  else nodes = sessionsView();
  view.replaceChildren(...nodes.filter(Boolean));
  if (active && view.contains(active) === false && document.body.contains(active) === false) view.focus();
  else if (active && document.body.contains(active)) active.focus();
}

/// The filters the address names (the sessions list's, and a timeline's event type).
function readFilters() {
  const { params } = hashParts();
  for (const name of Object.keys(state.filters)) state.filters[name] = params.get(name) ?? "";
  if (state.findBox) state.findBox.value = state.filters.find;
  return params;
}

async function route() {
  // #/session/<id> is its events, #/session/<id>/conversation the same as a conversation.
  const params = readFilters();
  const match = hashParts().path.match(/^#\/session\/([^/]+)(\/conversation)?$/);
  if (match) {
    const sid = decodeURIComponent(match[1]);
    if (state.timeline?.sid !== sid) await loadTimeline(sid);
    state.timeline.conversation = Boolean(match[2]);
    state.timeline.type = params.get("type") ?? "";
  } else {
    state.timeline = null;
  }
  if (hashParts().path === "#/activity") {
    await openActivity(params);
    if (state.searchBox && document.activeElement !== state.searchBox) state.searchBox.value = state.activity.filters.q;
  } else {
    state.activity = null;
  }
  render();
}

// ---- keyboard ---------------------------------------------------------------------------------
// In the approvals inbox: j / k move between requests, a approves and r rejects the focused
// one (with the reason typed in its box). Keys typed into a field are the field's.

document.addEventListener("keydown", (e) => {
  if (location.hash !== "#/approvals" || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target instanceof Element && e.target.closest("input, textarea, select, [contenteditable]")) return;
  const all = [...document.querySelectorAll("#approvals .card")];
  const at = all.indexOf(document.activeElement?.closest?.(".card"));
  if (e.key === "j" || e.key === "k") {
    if (!all.length) return;
    const step = e.key === "j" ? 1 : -1;
    all[at < 0 ? 0 : Math.min(all.length - 1, Math.max(0, at + step))].focus();
    e.preventDefault();
  } else if ((e.key === "a" || e.key === "r") && at >= 0 && all[at].dataset.status === "pending") {
    const card = all[at];
    // The decided request moves down the list; the focus goes on to the next open one.
    const open = (c) => c.dataset.status === "pending";
    const next = all.slice(at + 1).find(open) ?? all.slice(0, at).reverse().find(open);
    const questions = card.querySelector("form.questions");
    if (questions && e.key === "a") {
      questions.requestSubmit();
    } else {
      decide(card.dataset.key, e.key === "a" ? "approve" : "reject", card.querySelector('input[name="reason"]').value.trim())
        .then(() => next?.focus());
    }
    e.preventDefault();
  }
});

// ---- theme ------------------------------------------------------------------------------------
// As the system says (auto), or light or dark as chosen here; remembered in this browser.

const THEMES = ["auto", "light", "dark"];
let theme = THEMES.includes(localStorage.getItem("orchestrator-theme")) ? localStorage.getItem("orchestrator-theme") : "auto";

function applyTheme() {
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  $("#theme").textContent = `Theme: ${theme}`;
}

$("#theme").addEventListener("click", () => {
  theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
  localStorage.setItem("orchestrator-theme", theme);
  applyTheme();
});
applyTheme();

// ---- browser notifications ----------------------------------------------------------------

function notifyBrowser(a) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  new Notification("Approval needed", { body: `${a.payload?.tool_name ?? a.kind}: ${describe(a.payload)}`, tag: a.interaction_id });
}

if ("Notification" in window && Notification.permission === "default") {
  const button = $("#notify");
  button.hidden = false;
  button.addEventListener("click", async () => {
    await Notification.requestPermission();
    button.hidden = true;
  });
}

// ---- start --------------------------------------------------------------------------------

async function start() {
  try {
    // Where "from now on" starts: loaded first, so nothing that changes while the page loads
    // is missed (it is replayed by the stream and applied again, harmlessly).
    readFilters();
    const latest = await api("GET", "/v1/notifications/latest");
    state.lastId = latest.body.id;
    await loadSessions();
    await loadApprovals();
    await route();
    connect();
  } catch (error) {
    if (!(error instanceof Unauthorized)) {
      console.error(error);
      reconnectSoon();
    }
  }
}

window.addEventListener("hashchange", route);
setInterval(() => {
  for (const card of cards.values()) {
    if (card.dataset.status === "pending" && document.body.contains(card)) {
      const a = state.approvals.get(card.dataset.key);
      if (a?.deadline) card.querySelector(".status").textContent = countdown(a.deadline);
    }
  }
}, 1000);
start();
