// One session: the conversation as a timeline, time travel (a version slider and stepper:
// the state as of that version by scope, and the diff from the version before), the
// chain's integrity on request, and new events appended live.
import { get, live } from "./api.js";
import { el, fill, when, ms, num, json } from "./dom.js";

const LIFECYCLE_STATUS = { SessionArchived: "archived", SessionReactivated: "active",
  SessionEnded: "ended", SessionExpired: "expired" };
const LIFECYCLE = new Set(["SessionCreated", "SessionArchived", "SessionReactivated",
  "SessionEnded", "SessionExpired", "SessionDeleted", "SessionPurged", "HistoryCleared",
  "MessageRetracted"]);
const WHAT = { SessionCreated: "session created", StateChanged: "state changed",
  InteractionTracked: "interaction tracked", SessionArchived: "archived",
  SessionReactivated: "reactivated", SessionEnded: "ended", SessionExpired: "expired",
  HistoryCleared: "history cleared", MessageRetracted: "message retracted",
  PayloadErased: "payload erased" };

function kindOf(record) {
  if (record.type === "MessageAppended") return "message";
  return LIFECYCLE.has(record.type) ? "lifecycle" : "change";
}

// One event of the stream, as the log holds it (the form `session-store export` writes).
export function entry(record, start) {
  const data = record.data || {};
  const message = record.type === "MessageAppended" ? data.message : null;
  const kind = kindOf(record);
  const at = message ? message.timestamp : record.recorded_at;
  const who = message ? (message.author || message.role) : kind === "lifecycle" ? "store" : "runner";
  const head = el("div", { class: "entry-head" },
    el("span", { class: "v" }, `v${record.version}`),
    el("span", { class: `who role-${message ? message.role : kind}` }, who),
    message && message.author && message.author !== message.role
      ? el("span", { class: "muted" }, `(${message.role})`) : null,
    el("span", { class: "muted" }, `+${(at - start).toFixed(3)}s`),
    kind !== "message" ? el("span", { class: `tag ${kind}` }, record.type) : null);
  const body = el("div", { class: "entry-body" });
  const facts = [];
  let delta = null;
  if (message) {
    if (message.text) body.append(el("div", { class: "text" }, message.text));
    for (const part of message.parts || []) {
      if (part && part.function_call) {
        body.append(el("div", { class: "call" }, `→ ${part.function_call.name}(${json(part.function_call.args ?? {})})`));
      } else if (part && part.function_response) {
        body.append(el("div", { class: "result" }, `← ${part.function_response.name}: ${json(part.function_response.response)}`));
      } else if (part && typeof part.text === "string") {
        if (!message.text) body.append(el("div", { class: "text" }, part.text));
      } else {
        body.append(el("div", { class: "text" }, json(part)));
      }
    }
    if (!message.text && !(message.parts || []).length) body.append(el("div", { class: "text muted" }, "(empty)"));
    if (message.usage) {
      facts.push(`${num(message.usage.tokens_in)} in / ${num(message.usage.tokens_out)} out tokens`);
      if (message.usage.model) facts.push(message.usage.model);
    }
    if (message.response_time !== undefined && message.response_time !== null) facts.push(ms(message.response_time));
    delta = message.state_delta;
  } else {
    const what = record.type === "MetadataChanged" ? (data.merge === false ? "metadata set" : "metadata merged")
      : WHAT[record.type] || record.type;
    body.append(el("div", { class: "text" }, what));
    if (record.type === "InteractionTracked") {
      facts.push(`${num(data.tokens_in)} in / ${num(data.tokens_out)} out tokens`);
      if (data.model) facts.push(data.model);
      if (data.response_time) facts.push(ms(data.response_time));
    }
    delta = data.state || data.delta || null;
    if (data.patch && Object.keys(data.patch).length) facts.push(`metadata ${json(data.patch)}`);
    if (data.metadata && Object.keys(data.metadata).length) facts.push(`metadata ${json(data.metadata)}`);
    if (data.tags && data.tags.length) facts.push(`tags ${data.tags.join(", ")}`);
    const rest = Object.entries(data).filter(([k]) => !["type", "state", "delta", "patch", "metadata",
      "tags", "tokens_in", "tokens_out", "response_time", "model", "merge"].includes(k));
    if (rest.length) facts.push(rest.map(([k, v]) => `${k}=${json(v)}`).join(", "));
  }
  if (delta && Object.keys(delta).length) facts.push(`state ${json(delta)}`);
  if (facts.length) body.append(el("div", { class: "facts" }, facts.join(" · ")));
  return el("li", { class: `entry ${kind}`, "data-version": record.version,
    title: `position ${record.position} · hash ${record.hash}` }, head, body);
}

function quantile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
}

// The session's figures, from its events: messages, model calls, tokens, response times.
function summarize(records) {
  let messages = 0, calls = 0, tokensIn = 0, tokensOut = 0;
  const times = [];
  for (const record of records) {
    const data = record.data || {};
    const usage = record.type === "MessageAppended" ? data.message.usage
      : record.type === "InteractionTracked" ? data : null;
    const time = record.type === "MessageAppended" ? data.message.response_time
      : record.type === "InteractionTracked" ? data.response_time : null;
    if (record.type === "MessageAppended") messages += 1;
    if (usage || (time !== null && time !== undefined)) calls += 1;
    if (usage) { tokensIn += usage.tokens_in || 0; tokensOut += usage.tokens_out || 0; }
    if (time) times.push(time);
  }
  times.sort((a, b) => a - b);
  return [`${num(messages)} messages`, `${num(calls)} model calls`,
    `${num(tokensIn)} tokens in / ${num(tokensOut)} out`, `p50 ${ms(quantile(times, 0.5))}`,
    `p95 ${ms(quantile(times, 0.95))}`, `p99 ${ms(quantile(times, 0.99))}`].join(" · ");
}

function stateTable(title, state) {
  const keys = Object.keys(state);
  return el("div", { class: "scope" }, el("h3", {}, title),
    keys.length ? el("table", { class: "kv" }, el("tbody", {}, keys.map((k) =>
      el("tr", {}, el("td", { class: "key" }, k), el("td", {}, json(state[k]))))))
      : el("p", { class: "muted" }, "(empty)"));
}

function diffList(diff) {
  if (!diff.length) return el("p", { class: "muted" }, "No state change at this version.");
  return el("ul", { class: "diff" }, diff.map((d) => el("li", { class: d.change },
    el("span", { class: "sign" }, d.change === "added" ? "+" : d.change === "removed" ? "−" : "~"),
    el("span", { class: "key" }, d.key), " ",
    d.change === "added" ? json(d.after) : d.change === "removed" ? json(d.before)
      : `${json(d.before)} → ${json(d.after)}`)));
}

export async function sessionPage(view, query) {
  const key = { app: query.get("app"), user: query.get("user"), session: query.get("session") };
  const data = await get("/api/session", key);
  const s = data.session;
  const start = s.created_at;
  let latest = s.version;
  let chosen = Number(query.get("version")) || latest;
  chosen = Math.min(Math.max(1, chosen), latest);

  const statusBadge = el("span", { class: `status ${s.status}` }, s.status);
  const versionOf = el("span", { class: "muted" });
  const slider = el("input", { type: "range", min: 1, max: latest, value: chosen, id: "version",
    "aria-label": "version" });
  const back = el("button", { id: "back", title: "one version back" }, "◀");
  const forward = el("button", { id: "forward", title: "one version on" }, "▶");
  const now = el("button", { id: "latest" }, "latest");
  const label = el("span", { class: "version-label", id: "version-label" });
  const diffBox = el("div", { id: "diff" });
  const stateBox = el("div", { class: "scopes", id: "state" });
  const timeline = el("ol", { class: "timeline", id: "timeline" });
  const verifyOut = el("span", { id: "verify-result", class: "muted" });
  const verify = el("button", { id: "verify" }, "Verify chain");
  const figures = el("p", { class: "figures", id: "figures" });
  fill(view,
    el("h1", {}, `${s.app_name} / ${s.user_id} / `, el("span", { class: "sid" }, s.id), " ", statusBadge),
    el("p", { class: "muted" }, `created ${when(s.created_at)} UTC · last activity `,
      el("span", { id: "last-activity" }, when(s.last_update_time)), " UTC · ",
      versionOf, s.tags.length ? ` · tags ${s.tags.join(", ")}` : ""),
    figures,
    el("div", { class: "verify" }, verify, " ", verifyOut),
    el("section", { class: "travel" },
      el("h2", {}, "Time travel"),
      el("div", { class: "controls" }, back, slider, forward, now, label),
      el("div", { class: "travel-body" },
        el("div", {}, el("h3", {}, "What changed"), diffBox), stateBox)),
    el("section", {}, el("h2", {}, "Timeline"), timeline));

  const records = data.timeline;
  for (const record of records) timeline.append(entry(record, start));
  const showFigures = () => { figures.textContent = summarize(records); };
  showFigures();
  const showVersions = () => { versionOf.textContent = `v${latest}`; slider.max = String(latest); };
  showVersions();

  let asked = 0;
  const travel = async (version) => {
    chosen = Math.min(Math.max(1, version), latest);
    slider.value = String(chosen);
    label.textContent = `version ${chosen} of ${latest}`;
    for (const li of timeline.children) li.classList.toggle("future", Number(li.dataset.version) > chosen);
    const ticket = ++asked;
    const then = await get("/api/session/state", { ...key, version: chosen });
    if (ticket !== asked) return; // a later step was asked for meanwhile
    fill(diffBox, diffList(then.diff));
    fill(stateBox, stateTable("session", then.state.session),
      stateTable("app:", then.state.app), stateTable("user:", then.state.user));
    const url = new URL(window.location.href);
    if (chosen === latest) url.searchParams.delete("version");
    else url.searchParams.set("version", String(chosen));
    window.history.replaceState(null, "", url.pathname + url.search);
  };
  slider.addEventListener("input", () => travel(Number(slider.value)));
  back.addEventListener("click", () => travel(chosen - 1));
  forward.addEventListener("click", () => travel(chosen + 1));
  now.addEventListener("click", () => travel(latest));
  verify.addEventListener("click", async () => {
    verifyOut.textContent = "verifying…";
    verifyOut.className = "muted";
    const report = await get("/api/verify", key);
    verifyOut.textContent = report.ok
      ? `✔ chain intact: ${num(report.events)} events checked in ${report.seconds.toFixed(2)}s`
      : `✘ ${report.problems.length} problem(s): ${report.problems.slice(0, 5).join("; ")}`;
    verifyOut.className = report.ok ? "ok" : "bad";
  });
  await travel(chosen);

  const after = records.length ? records[records.length - 1].position : 0;
  live({ ...key, after }, (event) => {
    if (event.version <= latest) return; // already shown
    const following = chosen === latest;
    latest = event.version;
    records.push(event);
    timeline.append(entry(event, start));
    showFigures();
    document.getElementById("last-activity").textContent = when(event.recorded_at);
    if (LIFECYCLE_STATUS[event.type]) {
      statusBadge.textContent = LIFECYCLE_STATUS[event.type];
      statusBadge.className = `status ${LIFECYCLE_STATUS[event.type]}`;
    }
    showVersions();
    if (following) travel(latest); else label.textContent = `version ${chosen} of ${latest}`;
  });
}
