// Audit: run verify over the whole log (optionally against a digest kept elsewhere).
import { get } from "./api.js";
import { el, fill, num } from "./dom.js";

export async function auditPage(view) {
  const digest = el("input", { id: "digest", placeholder: "digest POSITION:ANCHOR (optional)", size: 60 });
  const run = el("button", { id: "run-verify" }, "Run verify");
  const out = el("div", { id: "report" });
  fill(view, el("h1", {}, "Audit"),
    el("p", { class: "muted" }, "Checks every event decodes, hash chains and anchors, versions and positions, " +
      "the log's bookkeeping and append-only triggers, and every read model against a fresh fold."),
    el("div", { class: "filters" }, digest, run), out);
  run.addEventListener("click", async () => {
    fill(out, el("p", { class: "muted" }, "verifying…"));
    try {
      const report = await get("/api/verify", { digest: digest.value.trim() });
      fill(out,
        el("p", { class: report.ok ? "ok big" : "bad big" },
          report.ok ? "✔ integrity OK" : `✘ integrity check FAILED: ${report.problems.length} problem(s)`),
        el("p", {}, `${num(report.events)} events in ${num(report.streams)} streams checked in ${report.seconds.toFixed(2)}s`),
        report.digest ? el("p", {}, "digest now: ", el("code", {}, report.digest)) : null,
        report.problems.length ? el("ul", { class: "problems" }, report.problems.map((p) => el("li", {}, p))) : null);
    } catch (error) {
      fill(out, el("p", { class: "bad" }, error.message));
    }
  });
}
