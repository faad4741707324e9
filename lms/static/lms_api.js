// Shared by the player and the exam page: JSON calls to our API with the session cookie,
// the CSRF token (<meta name="csrf-token">) and the per-browser device key (X-LMS-Device).

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export function deviceKey() {
  // A per-browser device key (API.md: X-LMS-Device), kept in this browser only.
  try {
    let key = localStorage.getItem("lms-device");
    if (!key) {
      const bytes = new Uint8Array(12);
      crypto.getRandomValues(bytes);
      key = "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      localStorage.setItem("lms-device", key);
    }
    return key;
  } catch (e) {
    return null;
  }
}

// fetch() a JSON API call; resolves to {status, ok, data}. A network failure (or the
// timeout, when timeoutMs is given) rejects, as fetch does.
export async function apiCall(method, url, body, { keepalive = false, timeoutMs = 0, noStore = false } = {}) {
  const headers = { Accept: "application/json", "X-CSRFToken": csrfToken() };
  const device = deviceKey();
  if (device) headers["X-LMS-Device"] = device;
  const init = { method, headers, credentials: "same-origin", keepalive };
  if (noStore) init.cache = "no-store";
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const ctrl = timeoutMs && !keepalive ? new AbortController() : null;
  const timer = ctrl ? setTimeout(() => ctrl.abort(), timeoutMs) : null;
  if (ctrl) init.signal = ctrl.signal;
  let resp;
  try {
    resp = await fetch(url, init);
  } finally {
    if (timer) clearTimeout(timer);
  }
  let data = null;
  try {
    data = await resp.json();
  } catch (e) {
    data = null;
  }
  return { status: resp.status, ok: resp.ok, data };
}
