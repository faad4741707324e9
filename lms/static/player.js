// The lesson player (lms/content/templates/player.html): a plain ES module, no build step.
//
// For a learner it opens a view (POST /api/v1/lessons/{id}/views), resumes at the position
// the server answers, records the spans of the timeline actually played (timeupdate,
// seeking, pause, ended) and reports them in a heartbeat at least every
// data-heartbeat-ms (POST /api/v1/views/{view_id}/heartbeat {"segments": [[from, to], ...]}).
// The server decides what is credited (ATT-4): the player only reports what it played.
// Hiding the page pauses the video and reports at once; a presence challenge in a heartbeat
// answer pauses the video until its code is typed back (POST .../challenge); leaving the
// page ends the view (POST .../end, fetch with keepalive so the CSRF header can be sent).
// Staff get a plain preview: no view, no heartbeats.

import { apiCall, csrfToken, deviceKey } from "./lms_api.js";

const root = document.getElementById("player");
const video = document.getElementById("lesson-video");

const EPS = 1e-6;
// Two timeupdates further apart than this (× rate) on the timeline are not continuous play.
const MAX_STEP_SECONDS = 2.0;

function api(method, url, body, options = {}) {
  return apiCall(method, url, body, options);
}

function errorMessage(r) {
  return (r && r.data && r.data.error && r.data.error.message) || String(r ? r.status : "");
}

function round3(x) {
  return Math.round(x * 1000) / 1000;
}

function percent(p) {
  return Math.floor(Math.max(0, Math.min(1, p)) * 100 + EPS) + "%";
}

function fillRates(select, rates, maxRate) {
  if (!select) return;
  const current = Number(select.value) || 1;
  select.textContent = "";
  const allowed = rates.filter((r) => r <= maxRate + EPS);
  if (!allowed.includes(1)) allowed.unshift(1);
  for (const r of allowed.sort((a, b) => a - b)) {
    const opt = document.createElement("option");
    opt.value = String(r);
    opt.textContent = r + "×";
    if (Math.abs(r - Math.min(current, maxRate)) < EPS) opt.selected = true;
    select.appendChild(opt);
  }
}

class Player {
  constructor(root, video) {
    this.root = root;
    this.video = video;
    const d = root.dataset;
    this.apiBase = d.apiBase || "/api/v1";
    this.lessonId = d.lessonId;
    this.mediaUrl = d.mediaUrl;
    this.heartbeatMs = Math.max(250, Number(d.heartbeatMs) || 10000);
    this.maxRate = Number(d.maxRate) || 1;
    this.rates = (d.rates || "1").split(",").map(Number).filter((r) => r > 0);
    this.weekOthers = Number(d.weekOthers) || 0;
    this.weekCount = Number(d.weekCount) || 0;
    this.progress = Number(d.progress) || 0;
    this.msg = JSON.parse(d.messages || "{}");

    this.statusEl = document.getElementById("player-status");
    this.rateSel = document.getElementById("rate");
    this.dialog = document.getElementById("challenge");
    this.codeEl = document.getElementById("challenge-code");
    this.inputEl = document.getElementById("challenge-input");
    this.errorEl = document.getElementById("challenge-error");

    this.viewId = null;
    this.stopped = false; // the view ended (here or elsewhere): nothing more is reported
    this.challenge = null; // {id, code} while a presence challenge is pending
    this.resumeAfterChallenge = false;
    this.spans = []; // closed spans not yet reported
    this.segStart = null; // start of the span being played
    this.lastPos = null; // last position observed while playing that span
    this.lastSentPos = null; // where the last reported span ended
    this.inflight = false;
    this.timer = null;
  }

  say(text) {
    if (this.statusEl && text) this.statusEl.textContent = text;
  }

  // --- what was played ---------------------------------------------------------------

  blocked() {
    return this.stopped || this.challenge !== null || this.viewId === null;
  }

  openSpan(t) {
    if (this.blocked() || this.segStart !== null) return;
    this.segStart = t;
    this.lastPos = t;
  }

  extendTo(t) {
    if (this.segStart === null || !Number.isFinite(t)) return;
    const step = t - this.lastPos;
    if (step >= 0 && step <= MAX_STEP_SECONDS * Math.max(1, this.video.playbackRate)) this.lastPos = t;
  }

  closeSpan() {
    if (this.segStart !== null && this.lastPos > this.segStart + EPS) this.spans.push([this.segStart, this.lastPos]);
    this.segStart = null;
    this.lastPos = null;
  }

  takeSpans() {
    if (this.segStart !== null && this.lastPos > this.segStart + EPS) {
      this.spans.push([this.segStart, this.lastPos]);
      this.segStart = this.lastPos;
    }
    return this.spans.splice(0).map(([a, b]) => [round3(a), round3(b)]).filter(([a, b]) => b > a);
  }

  onTimeUpdate() {
    const v = this.video;
    if (v.seeking || v.paused || this.blocked()) return;
    const t = v.currentTime;
    if (this.segStart === null) {
      this.openSpan(t);
      return;
    }
    const step = t - this.lastPos;
    if (step >= 0 && step <= MAX_STEP_SECONDS * Math.max(1, v.playbackRate)) {
      this.lastPos = t;
    } else {
      // A jump without a seek event (or backwards): a new span starts here.
      this.closeSpan();
      this.openSpan(t);
    }
  }

  // --- the view --------------------------------------------------------------------------

  async start() {
    this.bindPlayback();
    this.say(this.msg.starting);
    let r;
    try {
      r = await api("POST", `${this.apiBase}/lessons/${this.lessonId}/views`);
    } catch (e) {
      this.say(this.msg.offline);
      return;
    }
    if (!r.ok || !r.data || r.data.view_id === undefined) {
      this.stopped = true;
      this.say((this.msg.start_failed || "") + errorMessage(r));
      return;
    }
    const a = r.data;
    this.viewId = a.view_id;
    if (Number(a.max_playback_rate) > 0) this.maxRate = Number(a.max_playback_rate);
    fillRates(this.rateSel, this.rates, this.maxRate);
    if (typeof a.progress === "number") this.showProgress(a.progress, a.completed, a.status);
    const resumeAt = Math.max(0, Number(a.position_seconds) || 0);
    this.video.addEventListener("loadedmetadata", () => {
      const dur = this.video.duration;
      if (resumeAt > 0 && (!Number.isFinite(dur) || resumeAt < dur - 1)) {
        this.video.currentTime = resumeAt;
        const m = Math.floor(resumeAt / 60), s = Math.floor(resumeAt % 60);
        this.say((this.msg.resumed || "").replace("%(t)s", `${m}:${String(s).padStart(2, "0")}`));
      } else {
        this.say(this.msg.ready);
      }
    }, { once: true });
    this.video.src = this.mediaUrl;
    this.bindPage();
    this.timer = setInterval(() => this.beat(), this.heartbeatMs);
    // A challenge left unanswered in an earlier view carries over (ATT-4).
    if (a.challenge && a.challenge.id) this.showChallenge(a.challenge);
  }

  async beat({ keepalive = false } = {}) {
    if (this.viewId === null || this.stopped) return;
    if (this.inflight && !keepalive) return;
    const segments = this.takeSpans();
    if (!segments.length && (this.video.paused || this.challenge)) return; // nothing to say
    this.inflight = true;
    let r;
    try {
      r = await api("POST", `${this.apiBase}/views/${this.viewId}/heartbeat`, { segments }, { keepalive });
    } catch (e) {
      this.inflight = false;
      this.spans.unshift(...segments); // sent again with the next heartbeat
      this.say(this.msg.offline);
      return;
    }
    this.inflight = false;
    if (r.ok) {
      if (segments.length) this.lastSentPos = segments[segments.length - 1][1];
      const a = r.data || {};
      if (typeof a.progress === "number") this.showProgress(a.progress, a.completed, a.status);
      if (a.challenge && a.challenge.id) this.showChallenge(a.challenge);
      else if (a.completed && segments.length) this.say(this.msg.completed);
      else if (segments.length && !this.video.paused) this.say(this.msg.saved); // keeps a "paused" notice
    } else if (r.status >= 500 || r.status === 429) {
      this.spans.unshift(...segments);
      this.say(this.msg.offline);
    } else if (r.status === 401) {
      this.stop(this.msg.session_over);
    } else if (r.status === 400) {
      console.warn("heartbeat refused", r.data); // malformed report: dropped
    } else {
      this.stop(`${this.msg.ended_elsewhere} (${errorMessage(r)})`);
    }
  }

  stop(message) {
    this.stopped = true;
    clearInterval(this.timer);
    this.video.pause();
    this.say(message);
  }

  end() {
    if (this.viewId === null || this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    const headers = { "X-CSRFToken": csrfToken() };
    const device = deviceKey();
    if (device) headers["X-LMS-Device"] = device;
    fetch(`${this.apiBase}/views/${this.viewId}/end`, {
      method: "POST", headers, credentials: "same-origin", keepalive: true,
    }).catch(() => {});
  }

  // --- progress ------------------------------------------------------------------------

  showProgress(progress, completed, status) {
    const p = completed ? 1 : Math.max(0, Math.min(1, Number(progress) || 0));
    this.progress = Math.max(this.progress, p);
    const bar = document.getElementById("lesson-progress-bar");
    const text = document.getElementById("lesson-progress");
    if (bar) bar.value = this.progress;
    if (text) text.textContent = percent(this.progress);
    if (this.weekCount > 0) {
      const w = (this.weekOthers + this.progress) / this.weekCount;
      const wbar = document.getElementById("week-progress-bar");
      const wtext = document.getElementById("week-progress");
      if (wbar) wbar.value = w;
      if (wtext) wtext.textContent = percent(w);
    }
    const badge = document.getElementById("lesson-status");
    const labels = this.msg.status_labels || {};
    const shown = status || (completed && this.root.dataset.deadlinePassed === "0" ? "attended" : null);
    if (badge && shown && labels[shown]) {
      badge.dataset.status = shown;
      badge.textContent = labels[shown];
      badge.className = "badge " + (shown === "absent" ? "bad" : shown === "pending" ? "muted" : "ok");
      const attended = document.getElementById("week-attended");
      if (attended && this.msg.week_attended) {
        const n = (Number(this.root.dataset.weekOthersAttended) || 0) + (shown === "attended" ? 1 : 0);
        attended.textContent = this.msg.week_attended.replace("%(n)s", String(this.weekCount)).replace("%(a)s", String(n));
      }
    }
  }

  // --- presence challenge (ATT-4) --------------------------------------------------------

  showChallenge(ch) {
    if (this.challenge && this.challenge.id === ch.id) return;
    this.challenge = { id: ch.id, code: String(ch.code) };
    // Nothing more is credited until it is answered: stop, and forget what was played
    // since the last report (the learner plays it again after answering).
    this.resumeAfterChallenge = !this.video.paused;
    this.segStart = null;
    this.lastPos = null;
    this.spans = [];
    this.video.pause();
    const t = this.video.currentTime;
    if (this.lastSentPos !== null && t > this.lastSentPos && t - this.lastSentPos < 60) {
      this.video.currentTime = this.lastSentPos;
    }
    this.codeEl.textContent = this.challenge.code;
    this.inputEl.value = "";
    this.errorEl.textContent = "";
    if (!this.dialog.open) this.dialog.showModal();
    this.inputEl.focus();
    this.say(this.msg.challenge_pending);
  }

  async answerChallenge() {
    if (!this.challenge) return;
    const code = this.inputEl.value.trim();
    if (!code) return;
    let r;
    try {
      r = await api("POST", `${this.apiBase}/views/${this.viewId}/challenge`, { id: this.challenge.id, code });
    } catch (e) {
      this.errorEl.textContent = this.msg.offline;
      return;
    }
    if (r.ok) {
      this.challenge = null;
      this.dialog.close();
      this.say(this.msg.challenge_ok);
      if (this.resumeAfterChallenge) this.video.play().catch(() => {});
    } else if (r.status === 422 || r.status === 400) {
      this.errorEl.textContent = this.msg.challenge_wrong;
      this.inputEl.select();
    } else if (r.status === 401) {
      this.dialog.close();
      this.stop(this.msg.session_over);
    } else {
      this.dialog.close();
      this.stop(`${this.msg.ended_elsewhere} (${errorMessage(r)})`);
    }
  }

  // --- wiring ----------------------------------------------------------------------------

  clampRate() {
    const v = this.video;
    if (v.playbackRate > this.maxRate + EPS) {
      v.playbackRate = this.maxRate;
      this.say((this.msg.rate_limited || "").replace("%(r)s", String(this.maxRate)));
    }
    if (v.defaultPlaybackRate > this.maxRate + EPS) v.defaultPlaybackRate = this.maxRate;
    if (this.rateSel && Math.abs(Number(this.rateSel.value) - v.playbackRate) > EPS) {
      this.rateSel.value = String(v.playbackRate);
    }
  }

  bindPlayback() {
    const v = this.video;
    fillRates(this.rateSel, this.rates, this.maxRate);
    if (this.rateSel) {
      this.rateSel.addEventListener("change", () => {
        v.playbackRate = Math.min(Number(this.rateSel.value) || 1, this.maxRate);
      });
    }
    v.addEventListener("ratechange", () => this.clampRate());
    v.addEventListener("play", () => {
      if (this.challenge || this.stopped || this.viewId === null) v.pause();
    });
    v.addEventListener("playing", () => this.openSpan(v.currentTime));
    v.addEventListener("timeupdate", () => this.onTimeUpdate());
    v.addEventListener("seeking", () => this.closeSpan()); // ends at the last position played
    v.addEventListener("seeked", () => {
      if (!v.paused) this.openSpan(v.currentTime);
    });
    v.addEventListener("pause", () => {
      this.extendTo(v.currentTime);
      this.closeSpan();
    });
    v.addEventListener("ended", () => {
      this.extendTo(v.duration);
      this.closeSpan();
      this.beat();
    });
    this.dialog.addEventListener("cancel", (e) => e.preventDefault()); // Esc does not dismiss it
    document.getElementById("challenge-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.answerChallenge();
    });
  }

  bindPage() {
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState !== "hidden") return;
      if (!this.video.paused) {
        this.extendTo(this.video.currentTime);
        this.video.pause();
        this.say(this.msg.paused_hidden);
      }
      this.closeSpan();
      this.beat({ keepalive: true });
    });
    window.addEventListener("pagehide", () => {
      this.extendTo(this.video.currentTime);
      this.closeSpan();
      this.beat({ keepalive: true });
      this.end();
    });
    window.addEventListener("pageshow", (e) => {
      if (e.persisted) window.location.reload(); // back from the page cache: the view ended
    });
  }
}

function preview(root, video) {
  const maxRate = Number(root.dataset.maxRate) || 1;
  const rates = (root.dataset.rates || "1").split(",").map(Number).filter((r) => r > 0);
  const sel = document.getElementById("rate");
  fillRates(sel, rates, maxRate);
  if (sel) sel.addEventListener("change", () => { video.playbackRate = Number(sel.value) || 1; });
}

if (root && video) {
  if (root.dataset.track === "1") {
    const player = new Player(root, video);
    window.lmsPlayer = player; // for diagnostics
    player.start();
  } else {
    preview(root, video);
  }
}
