// The API client: every request goes to this page's own origin, with the trader's token.

const TOKEN_KEY = "sniper.token";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// A relative path only: the token never leaves this origin.
export async function api(path, { method = "GET", body } = {}) {
  if (!path.startsWith("/api/v1/")) throw new Error(`not an API path: ${path}`);
  const headers = { Authorization: `Bearer ${savedToken() || ""}` };
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const detail = payload && (payload.detail || payload.error) ? payload.detail || payload.error : response.statusText;
    throw new ApiError(response.status, String(detail));
  }
  return payload;
}

// A paged list (`{items, next}`): its items, following `next` for at most `maxPages` pages of `limit`.
export async function apiAll(path, { limit = 500, maxPages = 20 } = {}) {
  const items = [];
  let cursor = null;
  for (let pages = 0; pages < maxPages; pages++) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next;
    if (!cursor) break;
  }
  return items;
}

// The live stream: reconnects after a drop, resuming after the last event seen.
export class LiveStream {
  constructor(onEvent, onState) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.after = null;
    this.socket = null;
    this.closed = false;
    this.delay = 1000;
  }

  open() {
    this.closed = false;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = this.after === null ? "" : `?after=${this.after}`;
    const socket = new WebSocket(`${scheme}//${location.host}/api/v1/stream${query}`);
    this.socket = socket;
    socket.addEventListener("open", () => socket.send(JSON.stringify({ token: savedToken() || "" })));
    socket.addEventListener("message", (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (frame.kind === "ready") {
        this.delay = 1000;
        this.onState("live");
      } else if (frame.kind === "event") {
        this.after = Math.max(this.after || 0, frame.event.position);
        this.onEvent(frame.event);
      } else if (frame.kind === "resync") {
        this.onEvent(null);
      }
    });
    socket.addEventListener("close", (event) => {
      this.socket = null;
      if (this.closed) return;
      if (event.code === 4401) {
        this.onState("refused");
        return;
      }
      this.onState("reconnecting");
      setTimeout(() => this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 30000);
    });
  }

  close() {
    this.closed = true;
    if (this.socket) this.socket.close();
  }
}
