// Sessions: filters, cursor paging, live: rows move and new sessions appear as events commit.
import { get, live } from "./api.js";
import { el, clear, fill, when, sessionHref } from "./dom.js";

const STATUSES = ["", "active", "archived", "ended", "expired"];

export async function sessionsPage(view, query, status) {
  const filters = Object.fromEntries(
    ["app", "user", "status", "tags", "since"].map((name) => [name, query.get(name) || ""]));
  const field = (name, input) => el("label", {}, name, input);
  const appSelect = el("select", { name: "app" }, el("option", { value: "" }, "every app"),
    status.apps.map((app) => el("option", { value: app, selected: app === filters.app }, app)));
  const statusSelect = el("select", { name: "status" },
    STATUSES.map((s) => el("option", { value: s, selected: s === filters.status }, s || "any status")));
  const form = el("form", { class: "filters", method: "get", action: "/" },
    field("app", appSelect),
    field("user", el("input", { name: "user", value: filters.user, placeholder: "any user" })),
    field("status", statusSelect),
    field("tags", el("input", { name: "tags", value: filters.tags, placeholder: "tag, tag" })),
    field("active since", el("input", { name: "since", value: filters.since, placeholder: "2026-12-01" })),
    el("button", { type: "submit" }, "Filter"));
  const body = el("tbody");
  const more = el("button", { class: "more", hidden: true }, "More sessions");
  const count = el("span", { class: "muted" });
  fill(view, el("h1", {}, "Sessions ", count), form,
    el("table", { class: "sessions" },
      el("thead", {}, el("tr", {}, ["app", "user", "session", "status", "events", "last activity (UTC)", "tags"]
        .map((h) => el("th", {}, h)))), body), more);

  const rows = new Map();
  let cursor = null;
  const row = (s) => {
    const tr = el("tr", { "data-key": `${s.app_name}\u0000${s.user_id}\u0000${s.id}` },
      el("td", {}, s.app_name), el("td", {}, s.user_id),
      el("td", {}, el("a", { href: sessionHref(s.app_name, s.user_id, s.id), class: "session-link" }, s.id)),
      el("td", {}, el("span", { class: `status ${s.status}` }, s.status)),
      el("td", { class: "num version" }, String(s.version)),
      el("td", { class: "when" }, when(s.last_update_time)), el("td", {}, s.tags.join(", ")));
    rows.set(tr.dataset.key, tr);
    return tr;
  };
  const load = async (reset) => {
    const page = await get("/api/sessions", { ...filters, cursor: reset ? null : cursor, limit: 50 });
    if (reset) { clear(body); rows.clear(); }
    for (const s of page.sessions) body.append(row(s));
    if (!rows.size) body.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No sessions match.")));
    cursor = page.next_cursor;
    more.hidden = cursor === null;
    count.textContent = `(${rows.size}${cursor ? "+" : ""})`;
    return page.position;
  };
  more.addEventListener("click", () => load(false));
  const position = await load(true);

  let pending = null;
  live({ app: filters.app, user: filters.user, after: position }, (event) => {
    if (!event.session_id) return; // app: and user: scope streams
    const tr = rows.get(`${event.app_name}\u0000${event.user_id}\u0000${event.session_id}`);
    if (tr) {
      tr.querySelector(".version").textContent = String(event.version);
      tr.querySelector(".when").textContent = when(event.recorded_at);
      tr.classList.remove("flash");
      void tr.offsetWidth;
      tr.classList.add("flash");
    } else if (pending === null) {  // a session this page does not show yet: read the page again
      pending = setTimeout(() => { pending = null; load(true); }, 300);
    }
  });
}
