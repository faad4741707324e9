// Live progress board (CRS-11): polls the board's JSON endpoint every data-refresh-ms
// (at most 10 s), updates the rows in place (no reload), sorts by clicking a header, keeps
// the download links on the current sort, and sends the attendance reminder (CRS-8).
(function () {
  "use strict";

  var root = document.getElementById("board");
  if (!root) { return; }

  var MAX_REFRESH_MS = 10000;
  var FIELDS = ["name", "section", "progress", "attended", "absent", "excused", "pending",
                "at_risk", "last_access", "last_access_ip"];
  // The first click on a column sorts in the order a TA most likely wants.
  var FIRST_ORDER = { name: "asc", section: "asc", progress: "asc", attended: "asc", absent: "desc",
                      excused: "desc", pending: "desc", at_risk: "desc", last_access: "asc" };

  var apiUrl = root.dataset.apiUrl;
  var refreshMs = Math.min(MAX_REFRESH_MS, Math.max(500, parseInt(root.dataset.refreshMs, 10) || MAX_REFRESH_MS));
  var state = { sort: root.dataset.sort || "name", order: root.dataset.order || "asc",
                sectionId: root.dataset.sectionId || "" };
  var tbody = root.querySelector("[data-role=rows]");
  var updatedEl = root.querySelector("[data-role=updated]");
  var stateEl = root.querySelector("[data-role=state]");
  var timer = null;
  var inFlight = false;
  var stopped = false;
  var token = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function query(extra) {
    var q = "sort=" + encodeURIComponent(state.sort) + "&order=" + encodeURIComponent(state.order);
    if (state.sectionId) { q += "&section_id=" + encodeURIComponent(state.sectionId); }
    return apiUrl + "?" + (extra ? extra + "&" : "") + q;
  }

  // Times come as ISO 8601 in KST with the offset (API.md): show them as written.
  function minutes(iso) { return iso ? iso.slice(0, 10) + " " + iso.slice(11, 16) : "\u2014"; }
  function seconds(iso) { return iso ? iso.slice(0, 10) + " " + iso.slice(11, 19) : ""; }
  function pct(p) { return p === null || p === undefined ? "\u2014" : Math.round(p * 100) + "%"; }

  function setText(el, text) { if (el.textContent !== text) { el.textContent = text; } }

  function fillCell(td, field, r) {
    switch (field) {
      case "name": {
        var who = td.querySelector("span.muted");
        if (!who) {
          td.textContent = "";
          td.appendChild(document.createTextNode(""));
          who = document.createElement("span");
          who.className = "muted";
          td.appendChild(who);
        }
        setText(td.firstChild, r.name + " ");
        setText(who, r.username);
        break;
      }
      case "section": setText(td, r.section || ""); break;
      case "progress": setText(td, pct(r.week_progress)); break;
      case "at_risk": {
        var badge = td.querySelector(".badge");
        if (r.at_risk > 0) {
          if (!badge) {
            td.textContent = "";
            badge = document.createElement("span");
            badge.className = "badge warn";
            td.appendChild(badge);
          }
          setText(badge, String(r.at_risk));
        } else {
          setText(td, "0");
        }
        break;
      }
      case "last_access": setText(td, minutes(r.last_access_at)); break;
      case "last_access_ip": setText(td, r.last_access_ip || "\u2014"); break;
      default: setText(td, String(r[field]));
    }
  }

  function newRow(r) {
    var tr = document.createElement("tr");
    tr.dataset.learnerId = String(r.learner_id);
    tr.setAttribute("data-testid", "board-row-" + r.username);
    FIELDS.forEach(function (f) {
      var td = document.createElement("td");
      td.dataset.field = f;
      tr.appendChild(td);
    });
    return tr;
  }

  function render(data) {
    var existing = {};
    Array.prototype.forEach.call(tbody.querySelectorAll("tr[data-learner-id]"), function (tr) {
      existing[tr.dataset.learnerId] = tr;
    });
    data.learners.forEach(function (r) {
      var key = String(r.learner_id);
      var tr = existing[key] || newRow(r);
      delete existing[key];
      FIELDS.forEach(function (f) {
        var td = tr.querySelector('td[data-field="' + f + '"]');
        if (td) { fillCell(td, f, r); }
      });
      tr.classList.toggle("at-risk", r.at_risk > 0);
      tbody.appendChild(tr); // moves an existing row into the server's order
    });
    Object.keys(existing).forEach(function (k) { existing[k].remove(); });
    var empty = root.querySelector("[data-role=empty]");
    if (empty) { empty.hidden = data.learners.length > 0; }
    var count = root.querySelector("[data-role=at-risk-count]");
    if (count && count.dataset.template === undefined) {
      count.dataset.template = count.textContent.replace(/\d+/, "{n}");
    }
    if (count) { setText(count, count.dataset.template.replace("{n}", String(data.at_risk_learners))); }
    setText(updatedEl, seconds(data.generated_at));
    root.dataset.refreshedAt = data.generated_at;
    setText(stateEl, "");
  }

  function markSorted() {
    Array.prototype.forEach.call(root.querySelectorAll("th[data-sort-key]"), function (th) {
      if (th.dataset.sortKey === state.sort) {
        th.setAttribute("aria-sort", state.order === "asc" ? "ascending" : "descending");
      } else {
        th.removeAttribute("aria-sort");
      }
    });
    Array.prototype.forEach.call(root.querySelectorAll("a[data-format]"), function (a) {
      a.href = query("format=" + a.dataset.format);
    });
  }

  function schedule() {
    if (stopped) { return; }
    clearTimeout(timer);
    timer = setTimeout(refresh, refreshMs);
  }

  function refresh() {
    if (stopped) { return; }
    if (inFlight) { schedule(); return; }
    if (document.hidden) { schedule(); return; } // refreshed again when the tab is shown
    inFlight = true;
    var asked = state.sort + "/" + state.order;
    fetch(query(""), { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (resp) {
        if (resp.status === 401 || resp.status === 403) {
          stopped = true;
          setText(stateEl, root.dataset.msgEnded);
          return null;
        }
        if (!resp.ok) { throw new Error("HTTP " + resp.status); }
        return resp.json();
      })
      .then(function (data) {
        // A sort clicked while this request was out is fetched again right away.
        if (data && asked === state.sort + "/" + state.order) { render(data); }
      })
      .catch(function () { setText(stateEl, root.dataset.msgFailed); })
      .then(function () {
        inFlight = false;
        if (asked !== state.sort + "/" + state.order) { refresh(); } else { schedule(); }
      });
  }

  root.addEventListener("click", function (ev) {
    var btn = ev.target.closest("button[data-sort]");
    if (!btn) { return; }
    var key = btn.dataset.sort;
    if (key === state.sort) {
      state.order = state.order === "asc" ? "desc" : "asc";
    } else {
      state.sort = key;
      state.order = FIRST_ORDER[key] || "asc";
    }
    markSorted();
    clearTimeout(timer);
    refresh();
  });

  var remind = root.querySelector("[data-role=remind]");
  if (remind) {
    var result = root.querySelector("[data-role=remind-result]");
    remind.addEventListener("click", function () {
      remind.disabled = true;
      setText(result, root.dataset.msgSending);
      var body = state.sectionId ? { section_id: parseInt(state.sectionId, 10) } : {};
      fetch(root.dataset.reminderUrl, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": token },
        body: JSON.stringify(body)
      })
        .then(function (resp) {
          if (!resp.ok) { throw new Error("HTTP " + resp.status); }
          return resp.json();
        })
        .then(function (data) { setText(result, root.dataset.msgSent.replace("{n}", String(data.sent))); })
        .catch(function () { setText(result, root.dataset.msgSendFailed); })
        .then(function () { remind.disabled = false; });
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { clearTimeout(timer); refresh(); }
  });

  markSorted();
  schedule();
}());
