// Analytics of one app: tokens in/out and messages per day, the response-time distribution
// with p50/p95/p99, model usage, by user; and every app's totals.
import { get } from "./api.js";
import { el, fill, ms, num } from "./dom.js";
import { bars, histogram, hbars } from "./charts.js";

function figuresTable(rows, nameOf) {
  return el("table", { class: "figures-table" },
    el("thead", {}, el("tr", {}, ["", "messages", "calls", "tokens in", "tokens out", "p50", "p95", "p99"]
      .map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, el("td", {}, nameOf(r)),
      [r.messages, r.interactions, r.tokens_in, r.tokens_out].map((v) => el("td", { class: "num" }, num(v))),
      [r.response_time.p50, r.response_time.p95, r.response_time.p99].map((v) => el("td", { class: "num" }, ms(v)))))));
}

export async function analyticsPage(view, query, status) {
  const found = await get("/api/analytics", { app: query.get("app") });
  if (!found.app_name) {
    fill(view, el("h1", {}, "Analytics"), el("p", { class: "muted" }, "No sessions to analyse."));
    return;
  }
  const picker = el("select", { id: "analytics-app" },
    status.apps.map((a) => el("option", { value: a, selected: a === found.app_name }, a)));
  picker.addEventListener("change", () => { window.location.search = `?app=${encodeURIComponent(picker.value)}`; });
  const days = found.days.map((d) => d.day);
  const rt = found.response_time || {};
  fill(view,
    el("h1", {}, "Analytics ", picker),
    el("p", { class: "figures" }, `${num(rt.count)} timed responses · mean ${ms(rt.mean)} · p50 ${ms(rt.p50)} · ` +
      `p95 ${ms(rt.p95)} · p99 ${ms(rt.p99)} · max ${ms(rt.max)}`),
    el("div", { class: "charts" },
      el("section", {}, el("h2", {}, "Tokens per day"), bars("tokens in and out per day", days, [
        { name: "tokens in", cls: "tokens-in", values: found.days.map((d) => d.tokens_in) },
        { name: "tokens out", cls: "tokens-out", values: found.days.map((d) => d.tokens_out) }])),
      el("section", {}, el("h2", {}, "Messages per day"), bars("messages per day", days, [
        { name: "messages", cls: "messages", values: found.days.map((d) => d.messages) }])),
      el("section", {}, el("h2", {}, "Response times"), histogram("response-time distribution",
        found.histogram, { p50: rt.p50, p95: rt.p95, p99: rt.p99 })),
      el("section", {}, el("h2", {}, "Model usage"), found.models.length
        ? hbars("calls per model", found.models.map((m) => ({ label: m.model, value: m.calls,
            note: `${num(m.calls)} calls · ${num(m.tokens_in + m.tokens_out)} tokens` })), "model")
        : el("p", { class: "muted" }, "No model named in the usage recorded."))),
    el("section", {}, el("h2", {}, "By user"),
      hbars("tokens per user", found.users.map((u) => ({ label: u.user_id, value: u.tokens_in + u.tokens_out,
        note: `${num(u.tokens_in + u.tokens_out)} tokens` }))),
      figuresTable(found.users, (r) => r.user_id)),
    el("section", {}, el("h2", {}, "By app"), figuresTable(found.apps, (r) => r.app_name)));
}
