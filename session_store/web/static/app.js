// The viewer's pages, one per address; each asks the JSON API and draws with dom.js.
import { get } from "./api.js";
import { el, fill } from "./dom.js";
import { sessionsPage } from "./sessions.js";
import { sessionPage } from "./session.js";
import { searchPage } from "./search.js";
import { analyticsPage } from "./analytics.js";
import { auditPage } from "./audit.js";

const PAGES = {
  "/": ["sessions", sessionsPage],
  "/session": ["sessions", sessionPage],
  "/search": ["search", searchPage],
  "/analytics": ["analytics", analyticsPage],
  "/audit": ["audit", auditPage],
};

async function start() {
  const view = document.getElementById("view");
  const [name, page] = PAGES[window.location.pathname] || PAGES["/"];
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("current", link.dataset.page === name);
  }
  try {
    const status = await get("/api/status");
    document.getElementById("where").textContent = status.store;
    await page(view, new URLSearchParams(window.location.search), status);
  } catch (error) {
    fill(view, el("p", { class: "error" }, `Could not load: ${error.message}`));
  }
}

start();
