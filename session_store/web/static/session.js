// One session: the conversation as a timeline, time travel (a version slider and stepper:
// the state as of that version by scope, and the diff from the version before), the
// chain's integrity on request, and new events appended live.
import { get, live } from "./api.js";
import { el, clear, when, ms, num, json } from "./dom.js";

const LIFECYCLE_STATUS = { SessionArchived: "archived", SessionReactivated: "active",
  SessionEnded: "ended", SessionExpired: "expired" };

function entry(row, start) {
  const at = row.at ?? row.recorded_at;
  const head = el("div", { class: "entry-head" },
    el("span", { class: "v" }, `v${row.version}`),
    el("span", { class: `who role-${row.role || row.kind}` }, row.who),
    row.role && row.role !== row.who ? el("span", { class: "muted" }, `(${row.role})`) : null,
    el("span", { class: "muted" }, `+${(at - start).toFixed(3)}s`),
    row.kind !== "message" ? el("span", { class: `tag ${row.kind}` }, row.type) : null);
  const body = el("div", { class: "entry-body" });
  if (row.kind === "message") {
    if (row.text) body.append(el("div", { class: "text" }, row.text));
    for (const call of row.calls || []) {
      body.append(el("div", { class: "call" }, `→ ${call.name}(${json(call.args ?? {})})`));
    }
    for (const result of row.results || []) {
      body.append(el("div", { class: "result" }, `← ${result.name}: ${json(result.response)}`));
    }
    if (!row.text && !(row.calls || []).length && !(row.results || []).length) {
      body.append(el("div", { class: "text muted" }, row.what));
    }
  } else {
    body.append(el("div", { class: "text" }, row.what));
  }
  const facts = [];
  if (row.tokens_in !== undefined) facts.push(`${num(row.tokens_in)} in / ${num(row.tokens_out)} out tokens`);
  if (row.model) facts.push(row.model);
  if (row.response_time !== undefined) facts.push(ms(row.response_time));
  const delta = row.state_delta && Object.keys(row.state_delta).length ? row.state_delta : null;
  if (delta) facts.push(`state ${json(delta)}`);
  if (row.metadata && Object.keys(row.metadata).length) facts.push(`metadata ${json(row.metadata)}`);
  if (facts.length) body.append(el("div", { class: "facts" }, facts.join(" · ")));
  return el("li", { class: `entry ${row.kind}`, "data-version": row.version, title: `hash ${row.hash}` },
    head, body);
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
  const stats = data.statistics;
  const figures = stats ? [`${num(stats.messages)} messages`, `${num(stats.interactions)} model calls`,
    `${num(stats.tokens_in)} tokens in / ${num(stats.tokens_out)} out`,
    `p50 ${ms(stats.response_time.p50)}`, `p95 ${ms(stats.response_time.p95)}`,
    `p99 ${ms(stats.response_time.p99)}`].join(" · ") : "";

  clear(view).append(
    el("h1", {}, `${s.app_name} / ${s.user_id} / `, el("span", { class: "sid" }, s.id), " ", statusBadge),
    el("p", { class: "muted" }, `created ${when(s.created_at)} UTC · last activity `,
      el("span", { id: "last-activity" }, when(s.last_update_time)), " UTC · ",
      versionOf, s.tags.length ? ` · tags ${s.tags.join(", ")}` : ""),
    el("p", { class: "figures" }, figures),
    el("div", { class: "verify" }, verify, " ", verifyOut),
    el("section", { class: "travel" },
      el("h2", {}, "Time travel"),
      el("div", { class: "controls" }, back, slider, forward, now, label),
      el("div", { class: "travel-body" },
        el("div", {}, el("h3", {}, "What changed"), diffBox), stateBox)),
    el("section", {}, el("h2", {}, "Timeline"), timeline));

  for (const row of data.timeline) timeline.append(entry(row, start));
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
    clear(diffBox).append(diffList(then.diff));
    clear(stateBox).append(stateTable("session", then.state.session),
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

  live({ ...key, after: data.position }, (event) => {
    if (event.version <= latest) return; // already shown
    const following = chosen === latest;
    latest = event.version;
    timeline.append(entry(event.entry, start));
    document.getElementById("last-activity").textContent = when(event.recorded_at);
    if (LIFECYCLE_STATUS[event.type]) {
      statusBadge.textContent = LIFECYCLE_STATUS[event.type];
      statusBadge.className = `status ${LIFECYCLE_STATUS[event.type]}`;
    }
    showVersions();
    if (following) travel(latest); else label.textContent = `version ${chosen} of ${latest}`;
  });
}
