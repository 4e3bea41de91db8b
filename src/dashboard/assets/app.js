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
  statusFilter: "",
  approvals: new Map(), // "sid/iid" -> interaction (pending and decided while this page is open)
  decidedHere: new Map(), // "sid/iid" -> the decision this tab sent
  timeline: null, // { sid, events: Map(seq -> event), interactions: Map(id -> interaction), type }
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

async function drain() {
  working = true;
  while (work.length) {
    const n = work.shift();
    try {
      await apply(n);
    } catch (error) {
      console.error(error);
    }
  }
  working = false;
  render();
}

async function apply(n) {
  const sid = n.session_id;
  await refreshSession(sid);
  if (n.type === "events.appended" && state.timeline?.sid === sid) await loadEvents(sid);
  if (n.type === "interaction.created" || n.type === "interaction.completed") {
    const got = await api("GET", `/v1/sessions/${sid}/interactions/${n.interaction_id}`);
    if (got.status === 200) noteInteraction(sid, got.body, n.type === "interaction.created");
  }
}

// ---- data ---------------------------------------------------------------------------------

async function refreshSession(sid) {
  const got = await api("GET", `/v1/sessions/${sid}`);
  if (got.status === 200) state.sessions.set(sid, got.body);
}

async function loadSessions() {
  const query = state.statusFilter ? `&status=${state.statusFilter}` : "";
  const got = await api("GET", `/v1/sessions?limit=200${query}`);
  state.sessions = new Map(got.body.sessions.map((s) => [s.session_id, s]));
}

async function loadPendingApprovals() {
  for (const session of state.sessions.values()) {
    if (!session.interactions || session.interactions.pending === 0) continue;
    await eachInteraction(session.session_id, "status=pending&", (interaction) =>
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
  state.approvals.set(key, { ...interaction, session_id: sid });
  if (isNew && !known && interaction.status === "pending") notifyBrowser(interaction);
}

async function loadEvents(sid) {
  const timeline = state.timeline;
  for (;;) {
    const after = timeline.events.size ? Math.max(...timeline.events.keys()) : 0;
    const got = await api("GET", `/v1/sessions/${sid}/events?after_seq=${after}&limit=1000`);
    if (got.status !== 200) return;
    for (const event of got.body.events) timeline.events.set(event.seq, event);
    if (got.body.events.length < 1000 && !got.body.truncated) return;
  }
}

async function loadTimeline(sid) {
  state.timeline = { sid, events: new Map(), interactions: new Map(), type: "" };
  await refreshSession(sid);
  await loadEvents(sid);
  await eachInteraction(sid, "", (i) => state.timeline.interactions.set(i.interaction_id, i));
}

// ---- deciding -------------------------------------------------------------------------------

async function decide(key, decision, reason) {
  const approval = state.approvals.get(key);
  const base = `/v1/sessions/${approval.session_id}/interactions/${approval.interaction_id}`;
  state.decidedHere.set(key, decision);
  const got = decision === "approve"
    ? await api("POST", `${base}/resolve`, { response: { reason: "approved in the dashboard" } })
    : await api("POST", `${base}/reject`, { reason: reason || "rejected in the dashboard" });
  // 200: this tab decided. 409: another tab (or the deadline) got there first; the answer
  // carries the interaction as it stands, which is what every tab then shows.
  const interaction = got.status === 200 ? got.body.interaction : got.body?.interaction;
  if (interaction) {
    if (!(got.status === 200 && got.body.completed_now)) state.decidedHere.delete(key);
    noteInteraction(approval.session_id, interaction, false);
  }
  render();
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

function sessionsView() {
  const select = el("select", { id: "status-filter", onchange: async (e) => {
    state.statusFilter = e.target.value;
    await loadSessions();
    render();
  } }, ...["", "active", "idle", "ended"].map((s) => el("option", { value: s, selected: s === state.statusFilter, text: s || "any" })));
  const rows = [...state.sessions.values()]
    .filter((s) => !state.statusFilter || s.status === state.statusFilter)
    .sort((a, b) => b.updated_at.localeCompare(a.updated_at))
    .map((s) => el("tr", { "data-session": s.session_id },
      el("td", {}, el("a", { href: `#/session/${encodeURIComponent(s.session_id)}`, text: s.session_id })),
      el("td", { text: s.status }),
      el("td", { class: "events", text: String(s.event_count) }),
      el("td", { class: "approvals", text: String(pendingApprovalsOf(s.session_id)) }),
      el("td", { text: when(s.updated_at) })));
  return [
    el("div", { class: "toolbar" }, el("h2", { text: "Sessions" }),
      el("label", { for: "status-filter", text: "Status" }), select),
    el("table", { id: "sessions" },
      el("thead", {}, el("tr", {}, ...["Session", "Status", "Events", "Pending approvals", "Last activity"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...rows)),
    rows.length ? null : el("p", { class: "muted", text: "No sessions yet." }),
  ];
}

function timelineView() {
  const t = state.timeline;
  const session = state.sessions.get(t.sid);
  const types = [...new Set([...t.events.values()].map((e) => e.event_type))].sort();
  const filter = el("select", { id: "type-filter", onchange: (e) => { t.type = e.target.value; render(); } },
    el("option", { value: "", text: "all types" }),
    ...types.map((type) => el("option", { value: type, selected: type === t.type, text: type })));
  const events = [...t.events.values()]
    .filter((e) => !t.type || e.event_type === t.type)
    .sort((a, b) => a.seq - b.seq)
    .map((e) => el("tr", { "data-seq": String(e.seq), "data-sequence": e.sequence ?? "" },
      el("td", { text: String(e.seq) }),
      el("td", { text: e.event_type }),
      el("td", { text: e.sequence ?? "" }),
      el("td", {}, e.out_of_order ? el("span", { class: "flag", text: "out of order" }) : null),
      el("td", { text: when(e.timestamp) }),
      el("td", {}, el("details", {}, el("summary", { text: "data" }), el("pre", { text: JSON.stringify(e.data, null, 2) })))));
  const interactions = [...t.interactions.values()].map((i) => el("tr", {},
    el("td", { text: i.interaction_id }), el("td", { text: i.kind }), el("td", { text: i.status }),
    el("td", { text: i.outcome ?? "" })));
  return [
    el("h2", { text: `Session ${t.sid}` }),
    session ? el("p", { class: "muted", text: `${session.status} · ${session.event_count} events · last activity ${when(session.updated_at)}` }) : null,
    el("h3", { text: "Interactions and commands" }),
    interactions.length
      ? el("table", { id: "interactions" }, el("thead", {}, el("tr", {}, ...["Interaction", "Kind", "Status", "Outcome"].map((h) => el("th", { scope: "col", text: h })))), el("tbody", {}, ...interactions))
      : el("p", { class: "muted", text: "None." }),
    el("div", { class: "toolbar" }, el("h3", { text: "Events" }), el("label", { for: "type-filter", text: "Event type" }), filter),
    el("table", { id: "timeline" },
      el("thead", {}, el("tr", {}, ...["Seq", "Type", "Sequence", "", "Time", "Data"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...events)),
  ];
}

/// The words for a decided approval, from this tab's point of view.
function outcomeText(key, a) {
  // "here" only when this tab's decision is the one that holds: a losing click is still in
  // flight when the winner's notification arrives.
  const mine = state.decidedHere.get(key);
  const here = (mine === "approve" && a.outcome === "approved") || (mine === "reject" && a.outcome === "rejected");
  const where = here ? "here" : "in another tab";
  if (a.outcome === "approved") return `Approved ${where}`;
  if (a.outcome === "rejected") return `Rejected ${where}${typeof a.result === "string" && a.result ? `: ${a.result}` : ""}`;
  if (a.status === "timed_out") return "Timed out";
  if (a.status === "cancelled") return "Cancelled";
  return a.status;
}

const cards = new Map(); // approval key -> its card, kept so typing a reason survives updates

function approvalCard(key, a) {
  let card = cards.get(key);
  if (!card) {
    const reason = el("input", { type: "text", name: "reason", "aria-label": "Reason for rejecting", placeholder: "reason (optional)" });
    card = el("article", { class: "card", "data-key": key },
      el("h3", {}, el("span", { text: String(a.payload?.tool_name ?? a.kind) }), " in ",
        el("a", { href: `#/session/${encodeURIComponent(a.session_id)}`, text: a.session_id })),
      el("div", { class: "ask", text: describe(a.payload) }),
      el("p", { class: "status" }),
      el("form", { onsubmit: (e) => e.preventDefault() },
        el("button", { type: "button", onclick: () => decide(key, "approve") , text: "Approve" }),
        reason,
        el("button", { type: "button", onclick: () => decide(key, "reject", reason.value.trim()), text: "Reject" })));
    cards.set(key, card);
  }
  card.dataset.status = a.status;
  card.dataset.outcome = a.outcome ?? "";
  const open = a.status === "pending";
  card.querySelector("form").hidden = !open;
  const status = card.querySelector(".status");
  status.className = open ? "status muted" : "status decided";
  status.textContent = open ? (a.deadline ? countdown(a.deadline) : "waiting") : outcomeText(key, a);
  return card;
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
  return [
    el("h2", { text: "Approvals" }),
    all.length ? null : el("p", { class: "muted", text: "Nothing to approve." }),
    el("section", { id: "approvals", "aria-label": "Approvals" }, ...all.map(([key, a]) => approvalCard(key, a))),
  ];
}

function render() {
  const pending = [...state.approvals.values()].filter((a) => a.status === "pending").length;
  $("#approval-count").textContent = pending ? String(pending) : "";
  const route = location.hash;
  const view = $("#view");
  const active = document.activeElement;
  let nodes;
  if (route.startsWith("#/session/") && state.timeline) nodes = timelineView();
  else if (route === "#/approvals") nodes = approvalsView();
  else nodes = sessionsView();
  view.replaceChildren(...nodes.filter(Boolean));
  if (active && view.contains(active) === false && document.body.contains(active) === false) view.focus();
  else if (active && document.body.contains(active)) active.focus();
}

async function route() {
  const match = location.hash.match(/^#\/session\/(.+)$/);
  if (match) await loadTimeline(decodeURIComponent(match[1]));
  else state.timeline = null;
  render();
}

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
    const latest = await api("GET", "/v1/notifications/latest");
    state.lastId = latest.body.id;
    await loadSessions();
    await loadPendingApprovals();
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
