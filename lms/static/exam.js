// Exam pages (lms/proctoring/templates/proctoring): a plain ES module, no build step.
//
// The notice page (#exam-entry): the learner types a fresh OTP code (EXM-8); the module
// starts or resumes the attempt (POST /api/v1/exams/{id}/attempts {"otp"}) and opens the
// lockdown page.
//
// The lockdown page (#exam-take), EXM-9: the items are shown only in fullscreen (entered
// from a button: browsers need a user gesture). Leaving fullscreen, leaving the window or
// tab, copy/cut/paste, the context menu, printing, the PrintScreen key and the developer-
// tools keys are prevented where a page can prevent them and each is reported as an
// incident (POST /api/v1/attempts/{id}/incidents), which the instructor sees on the
// monitor. Text outside the answer fields cannot be selected. Each answer is saved when it
// changes (text after a pause) with PUT /api/v1/attempts/{id}/answers/{item_id}; failed
// saves are retried. The countdown runs from the server's remaining_seconds, re-synced by
// every save and by a periodic read of the attempt; at zero the saved answers are
// submitted. The server decides everything: a 409 attempt_closed ends the page.
//
// Item texts are only ever set with textContent (never as HTML).

import { apiCall } from "./lms_api.js";

const INCIDENT_GAP_MS = 1000; // the same kind of incident is reported at most once a second
const TEXT_DEBOUNCE_MS = { short_answer: 700, essay: 1200 };
const MAX_RETRY_MS = 15000;
const API_TIMEOUT_MS = 15000;

async function api(method, url, body, { keepalive = false } = {}) {
  // A network failure or timeout is a result here (status 0), not an exception: saves retry.
  try {
    const r = await apiCall(method, url, body, { keepalive, timeoutMs: API_TIMEOUT_MS, noStore: true });
    return { ...r, network: false };
  } catch (e) {
    return { status: 0, ok: false, network: true, data: null };
  }
}

function errorCode(r) {
  return (r && r.data && r.data.error && r.data.error.code) || "";
}

function errorMessage(r) {
  return (r && r.data && r.data.error && r.data.error.message) || String(r ? r.status : "");
}

function fmt(template, vars) {
  return String(template || "").replace(/%\((\w+)\)s/g, (m, k) => (k in vars ? String(vars[k]) : m));
}

function timeOf(iso) {
  // "2027-03-16T09:01:02.123+09:00" → "09:01:02" (the server's KST time)
  const m = /T(\d\d:\d\d:\d\d)/.exec(iso || "");
  return m ? m[1] : "";
}

function dateTimeOf(iso) {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)/.exec(iso || "");
  return m ? `${m[1]} ${m[2]}` : "";
}

function clockText(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${String(m).padStart(2, "0")}:${ss}`;
}

function points(p) {
  const v = Math.round(Number(p) * 100) / 100;
  return Number.isFinite(v) ? String(v) : "";
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isTextField(node) {
  return node instanceof HTMLTextAreaElement || (node instanceof HTMLInputElement && node.type === "text");
}

function isEmptyAnswer(v) {
  return v === null || v === undefined || v === "" || (Array.isArray(v) && v.length === 0);
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// --- the notice page: entering with a fresh OTP code (EXM-8) -------------------------------------

function initEntry(root) {
  const form = document.getElementById("enter-form");
  if (!form) return;
  const msg = JSON.parse(root.dataset.messages || "{}");
  const errors = msg.errors || {};
  const otp = document.getElementById("enter-otp");
  const agree = document.getElementById("enter-agree");
  const error = document.getElementById("enter-error");
  const button = document.getElementById("enter-button");
  const base = root.dataset.apiBase || "/api/v1";
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const code = otp.value.replace(/\s+/g, "");
    if (!/^\d{6,8}$/.test(code)) {
      error.textContent = msg.need_code;
      otp.focus();
      return;
    }
    if (agree && !agree.checked) {
      error.textContent = msg.agree_rules;
      agree.focus();
      return;
    }
    button.disabled = true;
    error.textContent = msg.entering;
    const r = await api("POST", `${base}/exams/${root.dataset.examId}/attempts`, { otp: code });
    if ((r.status === 200 || r.status === 201) && r.data && r.data.attempt_id) {
      window.location.assign(root.dataset.takeUrl.replace("{id}", String(r.data.attempt_id)));
      return;
    }
    button.disabled = false;
    otp.value = "";
    const code2 = r.network ? "network" : errorCode(r);
    error.textContent = errors[code2] || errorMessage(r);
    otp.focus();
  });
}

// --- the lockdown page (EXM-9) ------------------------------------------------------------------

class Lockdown {
  constructor(root) {
    this.root = root;
    const d = root.dataset;
    this.base = d.apiBase || "/api/v1";
    this.attemptId = d.attemptId;
    this.url = `${this.base}/attempts/${this.attemptId}`;
    this.syncMs = Math.max(1000, Number(d.syncMs) || 60000);
    this.msg = JSON.parse(d.messages || "{}");

    this.timerEl = document.getElementById("exam-timer");
    this.clockBox = this.timerEl.closest(".exam-clock");
    this.saveEl = document.getElementById("exam-save");
    this.submitBtn = document.getElementById("exam-submit");
    this.gate = document.getElementById("exam-gate");
    this.gateText = document.getElementById("exam-gate-text");
    this.fsBtn = document.getElementById("exam-fullscreen");
    this.alertEl = document.getElementById("exam-alert");
    this.form = document.getElementById("exam-items");
    this.result = document.getElementById("exam-result");
    this.dialog = document.getElementById("exam-confirm");
    this.confirmText = document.getElementById("exam-confirm-text");

    // loading → gate (items hidden) ⇄ running (items shown) → closing → done
    this.state = "loading";
    this.armed = false; // fullscreen was entered once: from now on leaving it is an incident
    this.gateMode = "start";
    this.fsSupported = !!(document.fullscreenEnabled && document.documentElement.requestFullscreen);
    this.items = [];
    this.values = new Map(); // item id → current answer (shown indexes / text)
    this.slots = new Map(); // item id → save state
    this.lastSavedAt = null;
    this.endAt = null; // performance.now() at which the server's deadline falls
    this.lastIncident = {};
    this.alertTimer = null;
  }

  // -- start -----------------------------------------------------------------------------

  async start() {
    this.listen();
    for (let delay = 1000; ; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
      const r = await api("GET", this.url);
      if (r.ok && r.data) return this.load(r.data);
      if (r.status === 401) return this.sessionOver(r);
      if (!r.network && r.status < 500) return this.showAlert(errorMessage(r));
      this.showAlert(this.msg.network);
      await sleep(delay);
    }
  }

  load(data) {
    if (!data.open) return this.closed();
    this.items = data.items || [];
    this.totalPoints = this.items.reduce((sum, it) => sum + (Number(it.points) || 0), 0);
    this.sync(data.remaining_seconds);
    this.tick();
    this.tickTimer = setInterval(() => this.tick(), 250);
    this.syncTimer = setInterval(() => this.resync(), this.syncMs);
    this.render();
    this.hideAlert();
    this.state = "gate";
    this.showGate(this.fsSupported ? "start" : "unsupported");
  }

  open() {
    return this.state === "gate" || this.state === "running";
  }

  watching() {
    return this.armed && this.open();
  }

  // -- rendering (textContent only) -----------------------------------------------------------

  render() {
    const kinds = this.msg.kinds || {};
    this.form.textContent = "";
    for (const it of this.items) {
      this.values.set(it.id, it.answer === undefined ? null : it.answer);
      const box = el("fieldset", "item");
      box.dataset.itemId = String(it.id);
      box.dataset.kind = it.kind;
      box.setAttribute("data-testid", `item-${it.position}`);
      const head = el("div", "item-head");
      head.id = `item-head-${it.id}`;
      box.setAttribute("aria-labelledby", head.id);
      head.appendChild(el("span", "item-no", `${it.position}.`));
      head.appendChild(el("span", "item-kind", kinds[it.kind] || it.kind));
      head.appendChild(el("span", "item-points", fmt(this.msg.points, { p: points(it.points) })));
      const state = el("span", "item-state");
      state.setAttribute("data-testid", `item-state-${it.position}`);
      head.appendChild(state);
      box.appendChild(head);
      box.appendChild(el("p", "prompt", it.prompt));
      box.appendChild(this.answerField(it));
      this.form.appendChild(box);
      this.slots.set(it.id, { value: null, dirty: false, inflight: false, timer: null, delay: 0, version: 0,
                              failing: false, stateEl: state, box });
      this.itemState(it.id, isEmptyAnswer(this.values.get(it.id)) ? "empty" : "stored");
    }
    this.form.addEventListener("submit", (e) => e.preventDefault());
  }

  answerField(it) {
    const wrap = el("div", "answer");
    const name = `item-${it.id}`;
    if (it.kind === "single_choice" || it.kind === "multiple_choice") {
      const multi = it.kind === "multiple_choice";
      const current = it.answer;
      (it.choices || []).forEach((text, i) => {
        const label = el("label", "choice");
        const input = document.createElement("input");
        input.type = multi ? "checkbox" : "radio";
        input.name = name;
        input.value = String(i);
        input.checked = multi ? Array.isArray(current) && current.includes(i) : current === i;
        input.addEventListener("change", () => {
          if (multi) {
            const picked = Array.from(wrap.querySelectorAll("input:checked"), (n) => Number(n.value));
            this.answer(it.id, picked, 250);
          } else if (input.checked) {
            this.answer(it.id, i, 0);
          }
        });
        label.appendChild(input);
        label.appendChild(el("span", "choice-no", `${i + 1}.`));
        label.appendChild(el("span", "choice-text", text));
        wrap.appendChild(label);
      });
      return wrap;
    }
    const field = document.createElement(it.kind === "essay" ? "textarea" : "input");
    if (field instanceof HTMLInputElement) {
      field.type = "text";
      field.maxLength = 1000;
    } else {
      field.maxLength = 20000;
      field.rows = 10;
    }
    field.name = name;
    field.spellcheck = false;
    field.setAttribute("autocomplete", "off");
    field.setAttribute("autocorrect", "off");
    field.setAttribute("autocapitalize", "off");
    field.placeholder = this.msg.answer_placeholder || "";
    field.value = typeof it.answer === "string" ? it.answer : "";
    const value = () => (field.value === "" ? null : field.value);
    field.addEventListener("input", () => this.answer(it.id, value(), TEXT_DEBOUNCE_MS[it.kind] || 800));
    field.addEventListener("change", () => this.flush(it.id));
    field.addEventListener("blur", () => this.flush(it.id));
    wrap.appendChild(field);
    return wrap;
  }

  setInputsDisabled(disabled) {
    for (const input of this.form.querySelectorAll("input, textarea")) input.disabled = disabled;
  }

  // -- the gate: fullscreen first ------------------------------------------------------------------

  showGate(mode) {
    this.gateMode = mode;
    this.form.hidden = true;
    this.submitBtn.disabled = true;
    this.gate.hidden = false;
    this.gate.classList.toggle("warning", mode === "return" || mode === "refused");
    const text = { start: this.msg.gate_start, return: this.msg.gate_return, refused: this.msg.gate_refused,
                   unsupported: this.msg.gate_unsupported }[mode];
    this.gateText.textContent = text || "";
    this.fsBtn.textContent = mode === "return" ? this.msg.button_return
      : mode === "unsupported" ? this.msg.button_continue : this.msg.button_start;
    this.fsBtn.disabled = false;
    if (this.state === "running") this.state = "gate";
  }

  reveal() {
    if (!this.open()) return;
    this.state = "running";
    this.gate.hidden = true;
    this.form.hidden = false;
    this.submitBtn.disabled = false;
  }

  async enterFullscreen() {
    if (!this.open()) return;
    if (!this.fsSupported) {
      // No Fullscreen API (some mobile browsers): the exam goes on, the instructor is told.
      this.incident("fullscreen_refused", "the browser has no Fullscreen API");
      this.armed = true;
      this.reveal();
      return;
    }
    this.fsBtn.disabled = true;
    try {
      await document.documentElement.requestFullscreen({ navigationUI: "hide" });
    } catch (e) {
      this.incident("fullscreen_refused", String((e && e.name) || e).slice(0, 200));
      this.showGate("refused");
      return;
    }
    if (document.fullscreenElement) this.onFullscreen();
  }

  onFullscreen() {
    if (document.fullscreenElement) {
      if (this.open()) {
        this.armed = true;
        this.reveal();
      }
    } else if (this.watching()) {
      this.incident("fullscreen_exit");
      this.showGate("return");
    }
  }

  // -- watching (EXM-9) --------------------------------------------------------------------------

  listen() {
    this.fsBtn.addEventListener("click", () => this.enterFullscreen());
    document.addEventListener("fullscreenchange", () => this.onFullscreen());
    window.addEventListener("blur", () => {
      if (!this.watching()) return;
      this.root.classList.add("obscured");
      this.incident("blur");
    });
    window.addEventListener("focus", () => this.root.classList.remove("obscured"));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden" && this.watching()) this.incident("visibility_hidden");
    });
    for (const kind of ["copy", "cut", "paste"]) {
      document.addEventListener(kind, (e) => {
        e.preventDefault();
        if (this.watching()) this.incident(kind);
      }, true);
    }
    document.addEventListener("contextmenu", (e) => {
      e.preventDefault();
      if (this.watching()) this.incident("contextmenu");
    }, true);
    for (const kind of ["dragstart", "drop"]) document.addEventListener(kind, (e) => e.preventDefault(), true);
    document.addEventListener("selectstart", (e) => {
      if (!isTextField(e.target)) e.preventDefault();
    }, true);
    window.addEventListener("beforeprint", () => {
      if (this.watching()) this.incident("print");
    });
    document.addEventListener("keydown", (e) => this.onKey(e), true);
    document.addEventListener("keyup", (e) => {
      if (e.key === "PrintScreen" && this.watching()) this.screenshotKey();
    }, true);
    window.addEventListener("beforeunload", (e) => {
      if (this.watching()) {
        e.preventDefault();
        e.returnValue = "";
      }
    });
    window.addEventListener("pagehide", () => {
      if (this.watching()) this.incident("other", "left the exam page", { keepalive: true });
    });
    this.submitBtn.addEventListener("click", () => this.confirmSubmit());
    this.dialog.addEventListener("close", () => {
      if (this.dialog.returnValue === "submit") this.submit(false);
    });
  }

  onKey(e) {
    const key = (e.key || "").toLowerCase();
    const mod = e.ctrlKey || e.metaKey;
    if (mod && key === "p") {
      e.preventDefault();
      if (this.watching()) this.incident("print", "Ctrl+P");
    } else if (key === "printscreen") {
      if (this.watching()) this.screenshotKey();
    } else if (key === "f12" || (mod && e.shiftKey && ["i", "j", "c", "k"].includes(key)) || (mod && key === "u")) {
      e.preventDefault();
      if (this.watching()) this.incident("devtools", e.key.length <= 20 ? e.key : "");
    } else if (mod && ["s", "f", "g", "o", "h", "j"].includes(key)) {
      e.preventDefault(); // save page, find in page, open, history, downloads: not during the exam
    }
  }

  screenshotKey() {
    this.incident("screenshot_key", "PrintScreen");
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText("").catch(() => {});
  }

  incident(kind, detail, { keepalive = false } = {}) {
    const now = Date.now();
    if (now - (this.lastIncident[kind] || 0) < INCIDENT_GAP_MS) return;
    this.lastIncident[kind] = now;
    if (!keepalive) this.showAlert(fmt(this.msg.incident_notice, { k: (this.msg.incidents || {})[kind] || kind }), 4000);
    this.sendIncident({ kind, detail: detail ? String(detail).slice(0, 300) : null }, 0, keepalive);
  }

  async sendIncident(body, tries, keepalive) {
    const r = await api("POST", `${this.url}/incidents`, body, { keepalive });
    if ((r.network || r.status >= 500) && tries < 6 && !keepalive) {
      setTimeout(() => this.sendIncident(body, tries + 1, false), 1000 * 2 ** tries);
    } else if (r.status === 401) {
      this.sessionOver(r);
    }
  }

  // -- answers: autosave with retries -------------------------------------------------------------

  answer(itemId, value, delayMs) {
    if (!this.open()) return;
    const s = this.slots.get(itemId);
    this.values.set(itemId, value);
    s.value = value;
    s.dirty = true;
    s.version += 1;
    clearTimeout(s.timer);
    s.timer = null;
    this.itemState(itemId, "dirty");
    this.saveStatus();
    if (delayMs > 0) s.timer = setTimeout(() => this.flush(itemId), delayMs);
    else this.flush(itemId);
  }

  flush(itemId) {
    const s = this.slots.get(itemId);
    if (!s) return;
    clearTimeout(s.timer);
    s.timer = null;
    if (s.dirty && !s.inflight && this.canSave()) this.send(itemId, s);
  }

  canSave() {
    return this.state !== "done" && this.state !== "loading";
  }

  async send(itemId, s) {
    s.inflight = true;
    s.dirty = false;
    const version = s.version;
    this.saveStatus();
    const r = await api("PUT", `${this.url}/answers/${itemId}`, { answer: s.value });
    s.inflight = false;
    if (r.ok && r.data) {
      s.delay = 0;
      s.failing = false;
      this.lastSavedAt = r.data.saved_at;
      this.sync(r.data.remaining_seconds);
      if (!s.dirty) this.itemState(itemId, "saved", r.data.saved_at);
    } else if (r.network || r.status >= 500 || r.status === 429) {
      if (s.version === version) s.dirty = true;
      s.failing = true;
      s.delay = Math.min(Math.max(1000, s.delay * 2), MAX_RETRY_MS);
      this.itemState(itemId, "retrying");
      clearTimeout(s.timer);
      s.timer = setTimeout(() => this.flush(itemId), s.delay);
    } else if (errorCode(r) === "attempt_closed") {
      if (s.version === version) s.dirty = true;
      this.closed();
    } else if (r.status === 401) {
      if (s.version === version) s.dirty = true;
      this.sessionOver(r);
    } else if (r.status === 403) {
      // EXM-9: this address is another learner's (duplicate IP/device): answers are refused.
      if (s.version === version) s.dirty = true;
      s.failing = true;
      this.itemState(itemId, "refused", errorMessage(r));
      this.showAlert(this.msg.blocked + errorMessage(r));
    } else {
      s.failing = true;
      this.itemState(itemId, "refused", errorMessage(r));
    }
    this.saveStatus();
    if (s.dirty && !s.timer && !s.failing) this.flush(itemId);
  }

  itemState(itemId, state, extra) {
    const s = this.slots.get(itemId);
    if (!s) return;
    const el = s.stateEl;
    const answered = !isEmptyAnswer(this.values.get(itemId));
    s.box.classList.toggle("answered", answered);
    el.className = "item-state";
    if (state === "saved") {
      el.textContent = answered ? fmt(this.msg.saved_at, { t: timeOf(extra) }) : this.msg.not_answered;
      el.classList.add(answered ? "answered" : "empty");
    } else if (state === "dirty") {
      el.textContent = this.msg.saving;
    } else if (state === "retrying") {
      el.textContent = this.msg.retrying;
      el.classList.add("error");
    } else if (state === "refused") {
      el.textContent = this.msg.save_refused + (extra || "");
      el.classList.add("error");
    } else if (state === "stored") {
      el.textContent = this.msg.answered;
      el.classList.add("answered");
    } else {
      el.textContent = this.msg.not_answered;
    }
  }

  pending() {
    for (const s of this.slots.values()) if (s.dirty || s.inflight) return true;
    return false;
  }

  saveStatus() {
    let failing = false;
    let busy = false;
    for (const s of this.slots.values()) {
      if (s.failing && s.dirty) failing = true;
      if (s.dirty || s.inflight) busy = true;
    }
    this.saveEl.className = "exam-save";
    if (failing) {
      this.saveEl.textContent = this.msg.retrying;
      this.saveEl.classList.add("error");
    } else if (busy) {
      this.saveEl.textContent = this.msg.saving;
    } else if (this.lastSavedAt) {
      this.saveEl.textContent = fmt(this.msg.saved_at, { t: timeOf(this.lastSavedAt) });
      this.saveEl.classList.add("ok");
    } else {
      this.saveEl.textContent = "";
    }
  }

  async flushAll(limitMs) {
    // Every unsaved answer is sent now; wait (at most limitMs) until all are saved.
    const until = Date.now() + limitMs;
    while (this.pending() && Date.now() < until) {
      for (const [itemId, s] of this.slots) {
        if (s.dirty && !s.inflight) {
          s.failing = false;
          this.flush(itemId);
        }
      }
      await sleep(150);
    }
  }

  // -- the clock: the server's deadline ---------------------------------------------------------

  sync(remaining) {
    if (typeof remaining !== "number" || !Number.isFinite(remaining)) return;
    const at = performance.now() + remaining * 1000;
    // remaining_seconds is whole seconds: keep the local clock unless it is off by more.
    if (this.endAt === null || Math.abs(at - this.endAt) > 1500) this.endAt = at;
  }

  tick() {
    if (this.endAt === null) return;
    const left = (this.endAt - performance.now()) / 1000;
    this.timerEl.textContent = clockText(left);
    this.clockBox.classList.toggle("low", left < 300);
    if (left <= 0 && this.open()) this.timeUp();
  }

  async resync() {
    if (!this.open()) return;
    const r = await api("GET", this.url);
    if (r.ok && r.data) {
      if (!r.data.open) return this.closed();
      this.sync(r.data.remaining_seconds);
    } else if (r.status === 401) {
      this.sessionOver(r);
    }
  }

  async timeUp() {
    this.state = "closing";
    this.timerEl.textContent = clockText(0);
    this.setInputsDisabled(true);
    this.submitBtn.disabled = true;
    this.showAlert(this.msg.time_up);
    await this.flushAll(4000);
    await sleep(1200); // past the deadline: the server closes the attempt at its deadline
    await this.submitNow(true);
  }

  // -- submitting -------------------------------------------------------------------------------

  confirmSubmit() {
    if (this.state !== "running") return;
    const unanswered = this.items.filter((it) => isEmptyAnswer(this.values.get(it.id))).length;
    this.confirmText.textContent = unanswered ? fmt(this.msg.confirm_unanswered, { n: unanswered }) : this.msg.confirm_all;
    this.dialog.returnValue = "";
    this.dialog.showModal();
  }

  async submit() {
    if (this.state !== "running") return;
    this.state = "closing";
    this.setInputsDisabled(true);
    this.submitBtn.disabled = true;
    this.saveEl.textContent = this.msg.submitting;
    await this.flushAll(8000);
    await this.submitNow(false);
  }

  async submitNow(auto) {
    for (let delay = 2000; ; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
      const r = await api("POST", `${this.url}/submit`);
      if (r.ok && r.data) return this.finished(r.data);
      if (errorCode(r) === "attempt_closed") return this.showClosedAttempt();
      if (r.status === 401) return this.sessionOver(r);
      if (!auto && !r.network && r.status < 500) {
        // Refused (should not happen): let the learner try again.
        this.state = "running";
        this.setInputsDisabled(false);
        this.submitBtn.disabled = false;
        this.showAlert(this.msg.submit_failed + errorMessage(r));
        return;
      }
      this.showAlert(this.msg.network);
      await sleep(delay);
    }
  }

  async closed() {
    // The server says the attempt is over (deadline passed, or submitted elsewhere). An
    // unsubmitted attempt past its deadline is closed at its deadline by POST submit.
    if (this.state === "done" || this.closing) return;
    this.closing = true;
    this.state = "closing";
    this.setInputsDisabled(true);
    this.submitBtn.disabled = true;
    this.showAlert(this.msg.closed);
    await this.submitNow(true);
  }

  async showClosedAttempt() {
    for (let delay = 2000; ; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
      const r = await api("GET", this.url);
      if (r.ok && r.data) return this.finished(r.data, true);
      if (r.status === 401) return this.sessionOver(r);
      await sleep(delay);
    }
  }

  finished(data, closedByServer = false) {
    this.stop();
    this.gate.hidden = true;
    this.form.hidden = true;
    this.submitBtn.hidden = true;
    this.saveEl.textContent = "";
    if (!closedByServer) this.hideAlert();
    document.getElementById("exam-result-title").textContent = this.msg.submitted;
    document.getElementById("exam-result-time").textContent =
      data.submitted_at ? fmt(this.msg.submitted_at, { t: dateTimeOf(data.submitted_at) }) : this.msg.closed;
    const score = document.getElementById("exam-result-score");
    if (data.needs_grading) score.textContent = this.msg.needs_grading;
    else if (data.score !== null && data.score !== undefined)
      score.textContent = fmt(this.msg.score, { s: points(data.score), t: points(this.totalPoints || 0) });
    this.result.hidden = false;
    this.root.dataset.state = "submitted";
    if (document.fullscreenElement && document.exitFullscreen) document.exitFullscreen().catch(() => {});
  }

  sessionOver(r) {
    if (this.state === "done") return;
    this.stop();
    this.gate.hidden = true;
    this.form.hidden = true;
    this.submitBtn.disabled = true;
    const code = errorCode(r);
    this.showAlert(code === "session_replaced" ? this.msg.session_replaced : this.msg.session_expired);
    if (document.fullscreenElement && document.exitFullscreen) document.exitFullscreen().catch(() => {});
  }

  stop() {
    this.state = "done";
    this.armed = false;
    clearInterval(this.tickTimer);
    clearInterval(this.syncTimer);
    for (const s of this.slots.values()) clearTimeout(s.timer);
    this.setInputsDisabled(true);
  }

  showAlert(text, hideAfterMs = 0) {
    clearTimeout(this.alertTimer);
    this.alertEl.textContent = text || "";
    this.alertEl.hidden = !text;
    if (hideAfterMs > 0) this.alertTimer = setTimeout(() => this.hideAlert(), hideAfterMs);
  }

  hideAlert() {
    clearTimeout(this.alertTimer);
    this.alertEl.hidden = true;
    this.alertEl.textContent = "";
  }
}

const entry = document.getElementById("exam-entry");
if (entry) initEntry(entry);
const take = document.getElementById("exam-take");
if (take) {
  const page = new Lockdown(take);
  page.start();
}
