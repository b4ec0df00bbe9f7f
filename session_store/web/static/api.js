// The page's client of the JSON API: the token (from ?token= or the cookie the server set),
// JSON reads, and live events over EventSource.

const TOKEN_KEY = "session-store-token";
const here = new URL(window.location.href);
const given = here.searchParams.get("token");
if (given) {
  sessionStorage.setItem(TOKEN_KEY, given);
  here.searchParams.delete("token"); // keep it out of the address bar and history
  window.history.replaceState(null, "", here.pathname + here.search + here.hash);
}
const token = sessionStorage.getItem(TOKEN_KEY);

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

export async function get(path, params = {}) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const response = await fetch(url(path, params), { headers, credentials: "same-origin" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body.error || response.statusText);
  return body;
}

// Calls onEvent(data) for each committed event matching params (app, user, session);
// `after` is the log position the page already shows. Returns the EventSource.
export function live(params, onEvent) {
  const source = new EventSource(url("/api/events", { ...params, token }));
  const badge = document.getElementById("live");
  source.addEventListener("open", () => {
    badge.textContent = "● live";
    badge.className = "live on";
  });
  source.addEventListener("error", () => {
    badge.textContent = "○ reconnecting";
    badge.className = "live";
  });
  source.addEventListener("appended", (message) => onEvent(JSON.parse(message.data)));
  return source;
}
