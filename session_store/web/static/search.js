// Search: messages holding every word typed (case and accents ignored), hits marked.
import { get } from "./api.js";
import { el, clear, fill, when, sessionHref } from "./dom.js";

export async function searchPage(view, query, status) {
  const box = el("input", { type: "search", id: "q", name: "q", value: query.get("q") || "",
    placeholder: "words to find", autofocus: true, autocomplete: "off" });
  const app = el("select", { id: "search-app" }, el("option", { value: "" }, "every app"),
    status.apps.map((a) => el("option", { value: a, selected: a === query.get("app") }, a)));
  const out = el("div", { id: "hits" });
  fill(view, el("h1", {}, "Search"), el("div", { class: "filters" }, box, app), out);

  let asked = 0;
  const run = async () => {
    const q = box.value.trim();
    const url = new URL(window.location.href);
    url.searchParams.set("q", q);
    window.history.replaceState(null, "", url.pathname + url.search);
    if (!q) { clear(out); return; }
    const ticket = ++asked;
    const found = await get("/api/search", { q, app: app.value, limit: 100 });
    if (ticket !== asked) return;
    fill(out, el("p", { class: "muted" }, `${found.hits.length} message(s), newest first`));
    for (const hit of found.hits) {
      const href = sessionHref(hit.app_name, hit.user_id, hit.session_id) + `&version=${hit.version}`;
      out.append(el("div", { class: "hit" },
        el("div", { class: "hit-head" },
          el("a", { href }, `${hit.app_name} / ${hit.user_id} / ${hit.session_id}`),
          el("span", { class: "muted" }, ` v${hit.version} · ${hit.author || hit.role} (${hit.role}) · ${when(hit.timestamp)} UTC`)),
        el("div", { class: "text" }, hit.fragments.map(([text, isHit]) =>
          isHit ? el("mark", {}, text) : text))));
    }
  };
  let timer = null;
  box.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 200); });
  app.addEventListener("change", run);
  if (box.value) await run();
}
