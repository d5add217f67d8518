// phenoflow clinician view: renders the pages from the server's JSON and follows /stream (SSE).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const data = (id) => JSON.parse(($("#" + id) || {}).textContent || "null");
const fmt = (x, d = 2) => (x === null || x === undefined ? "—" : Number(x).toFixed(d));
const sig = (x) => (x === null || x === undefined ? "—" : Number(Number(x).toPrecision(3)).toLocaleString("en"));

function ago(hours) {
  if (hours === null || hours === undefined) return "never";
  if (hours < 1) return "< 1 h ago";
  if (hours < 48) return `${Math.round(hours)} h ago`;
  return `${Math.round(hours / 24)} days ago`;
}

// --- live stream -------------------------------------------------------------------
function follow(handlers) {
  const es = new EventSource("/stream");
  const live = $("#live");
  es.onopen = () => live && live.classList.remove("off");
  es.onerror = () => live && live.classList.add("off");  // EventSource reconnects by itself
  for (const kind of ["alert", "ack"]) {
    es.addEventListener(kind, (e) => { const note = JSON.parse(e.data); (handlers[kind] || (() => {}))(note[kind]); });
  }
  return es;
}

// --- acknowledgements ----------------------------------------------------------------
const byInput = () => $("#by");
function restoreBy() {
  const el = byInput();
  if (!el) return;
  el.value = localStorage.getItem("phenoflow.by") || "";
  el.addEventListener("change", () => localStorage.setItem("phenoflow.by", el.value.trim()));
}

function ackHtml(a) {
  if (a.ack) {
    const when = new Date(a.ack.ts * 1000).toISOString().slice(0, 16).replace("T", " ");
    return `<span class="ackd">✓ acknowledged${a.ack.by ? " by " + esc(a.ack.by) : ""} (${when} UTC)${a.ack.note ? ": " + esc(a.ack.note) : ""}</span>`;
  }
  return `<form class="ack" data-event-id="${esc(a.event_id)}" data-participant="${esc(a.participant)}">
    <input name="note" maxlength="2000" placeholder="Note, e.g. called, follow-up booked" aria-label="note">
    <button type="submit">Acknowledge</button></form>`;
}

document.addEventListener("submit", async (e) => {
  const form = e.target.closest("form.ack");
  if (!form) return;
  e.preventDefault();
  const button = $("button", form);
  button.disabled = true;
  button.textContent = "Saving…";
  const body = {event_id: form.dataset.eventId, participant: form.dataset.participant,
                note: form.note.value, by: (byInput() && byInput().value.trim()) || ""};
  const resp = await fetch("/api/ack", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  if (resp.ok) {
    const ack = await resp.json();
    form.outerHTML = ackHtml({...body, ack});
  } else {
    const err = await resp.json().catch(() => ({error: resp.statusText}));
    button.disabled = false;
    button.textContent = "Acknowledge";
    alert("Not saved: " + err.error);
  }
});

function applyAck(ack) {
  document.querySelectorAll(`form.ack[data-event-id="${CSS.escape(ack.event_id)}"]`).forEach((f) => {
    f.outerHTML = ackHtml({event_id: ack.event_id, participant: ack.participant, ack});
  });
}

// --- alert descriptions ---------------------------------------------------------------
function contributorsHtml(a) {
  if (!a.contributors || !a.contributors.length) return "";
  const items = a.contributors.map((c) => {
    const nums = c.value !== undefined ? ` <small>(that day ${sig(c.value)}, usual ${sig(c.baseline)})</small>` : "";
    return `<li>${esc(c.words)}${nums}</li>`;
  }).join("");
  return `<ul class="contrib">${items}</ul>`;
}

function whatHtml(a) {
  if (a.kind === "anomaly") {
    return `Score ${fmt(a.score)} above personal threshold ${fmt(a.threshold)}. Most unusual:` + contributorsHtml(a) +
      ` <a href="/p/${encodeURIComponent(a.participant)}/day/${a.day}">raw numbers →</a>`;
  }
  const why = a.source === "survey" ? "WHO-5 well-being survey" : "run of anomalous days (passive data)";
  return `Well-being level ${esc(a.from_level)} → <b>${esc(a.to_level)}</b> (${why})`;
}
const kindLabel = (a) => `<span class="kind-${a.kind}">${a.kind === "anomaly" ? "Anomaly" : "Step-up"}</span>`;

// --- cohort page ----------------------------------------------------------------------
const COV = ["any", "accel", "location", "screen", "light", "sound"];
function cohortRow(r) {
  const cov = COV.map((g) => {
    const v = r.coverage[g] || 0;
    return `<span class="${v < 0.5 ? "low" : ""}" title="${g}: ${Math.round(v * 100)} % of hours"><i style="width:${Math.round(v * 100)}%"></i><b>${Math.round(v * 100)}%</b></span>`;
  }).join("");
  const state = r.state === "scored" ? `scored (τ = ${fmt(r.threshold)})` : r.state;
  return `<tr data-participant="${esc(r.participant)}">
    <td><a href="/p/${encodeURIComponent(r.participant)}">${esc(r.participant)}</a></td>
    <td>${esc(r.newest_alert || "—")}</td>
    <td class="num anomalies"><span class="${r.anomalies_7 ? "hot" : ""}">${r.anomalies_7}</span> / ${r.anomalies_30}</td>
    <td class="num"><span class="${r.stepups_7 ? "hot" : ""}">${r.stepups_7}</span> / ${r.stepups_30}</td>
    <td class="num">${r.unacked}</td>
    <td>${esc(r.last_day || "—")}</td>
    <td class="state-${esc(r.state)}">${esc(state)}</td>
    <td><div class="cov">${cov}</div></td>
    <td>${ago(r.hours_since_data)} ${r.stale ? '<span class="flag">No data &gt; 24 h</span>' : ""}</td></tr>`;
}

function cohortPage() {
  let rows = data("data") || [];
  let key = null, asc = false;
  const value = (r, k) => (k === "cov_any" ? r.coverage.any : r[k]);
  const render = () => {
    const sorted = key === null ? rows : [...rows].sort((a, b) => {
      const x = value(a, key), y = value(b, key);
      const c = x === y ? 0 : x === null || x === undefined ? 1 : y === null || y === undefined ? -1 : x < y ? -1 : 1;
      return asc ? c : -c;
    });
    $("#cohort tbody").innerHTML = sorted.map(cohortRow).join("");
  };
  document.querySelectorAll("#cohort th").forEach((th) => th.addEventListener("click", () => {
    asc = key === th.dataset.key ? !asc : th.dataset.key === "participant";
    key = th.dataset.key;
    document.querySelectorAll("#cohort th").forEach((h) => h.classList.remove("sorted", "asc"));
    th.classList.add("sorted");
    if (asc) th.classList.add("asc");
    render();
  }));
  render();
  let timer = null;
  const refresh = () => {  // debounced: a burst of events costs one request
    clearTimeout(timer);
    timer = setTimeout(async () => { rows = (await (await fetch("/api/cohort")).json()).rows; render(); }, 300);
  };
  follow({alert: refresh, ack: refresh});
}

// --- inbox page -----------------------------------------------------------------------
function inboxRow(a, fresh) {
  return `<tr data-event-id="${esc(a.event_id)}" data-kind="${a.kind}" class="${fresh ? "new" : ""}">
    <td>${esc(a.day)}</td><td><a href="/p/${encodeURIComponent(a.participant)}">${esc(a.participant)}</a></td>
    <td>${kindLabel(a)}</td><td>${whatHtml(a)}</td><td>${ackHtml(a)}</td></tr>`;
}

function inboxPage() {
  const form = $("#filters");
  const params = new URLSearchParams(location.search);
  for (const k of ["kind", "participant"]) if (params.get(k)) form[k].value = params.get(k);
  const tbody = $("#inbox tbody");
  const load = async () => {
    const q = new URLSearchParams({kind: form.kind.value, participant: form.participant.value});
    const alerts = (await (await fetch("/api/inbox?" + q)).json()).alerts;
    tbody.innerHTML = alerts.map((a) => inboxRow(a, false)).join("") || '<tr class="empty"><td colspan="5">No alerts.</td></tr>';
  };
  form.kind.addEventListener("change", load);
  form.participant.addEventListener("change", load);
  load();
  let unseen = 0;
  follow({
    alert: (a) => {
      if ((form.kind.value && a.kind !== form.kind.value) || (form.participant.value && a.participant !== form.participant.value)) return;
      if (tbody.querySelector(`tr[data-event-id="${CSS.escape(a.event_id)}"]`)) return;
      $(".empty", tbody)?.remove();
      // Newest first: insert before the first row of an earlier day.
      const after = [...tbody.rows].find((r) => r.cells[0].textContent < a.day);
      const tmp = document.createElement("tbody");
      tmp.innerHTML = inboxRow(a, true);
      tbody.insertBefore(tmp.firstElementChild, after || null);
      unseen += 1;
      const badge = $("#new-count");
      badge.hidden = false;
      badge.textContent = `${unseen} new`;
    },
    ack: applyAck,
  });
}

// --- participant page (seed Fig. 4) ---------------------------------------------------
function shiftDay(day, hours) { return new Date(Date.parse(day + "T00:00:00Z") + hours * 3600e3).toISOString(); }

function participantFigure(p, traj) {
  const keys = Object.keys(traj);
  const n = keys.length;
  const gap = 0.025, scoreH = 0.27, rowH = (1 - scoreH - gap * n) / n;
  const layout = {height: 260 + 120 * n, margin: {l: 70, r: 200, t: 30, b: 40}, hovermode: "x unified",
                  legend: {x: 1.01, y: 1, xanchor: "left"}, showlegend: true, shapes: [], annotations: [],
                  font: {family: "system-ui, DejaVu Sans, sans-serif", size: 12}};
  const traces = [];
  const top = 1 - scoreH;
  layout.yaxis = {domain: [top, 1], title: {text: "Anomaly score"}, zeroline: false};
  layout.xaxis = {type: "date", anchor: "y" + (n + 1), showticklabels: false, matches: "x" + (n + 1)};
  traces.push({x: p.days, y: p.score, name: "Daily anomaly score", mode: "lines+markers", line: {color: "#1f4e79"}, marker: {size: 4}, connectgaps: false});
  traces.push({x: p.days, y: p.threshold, name: "Personal threshold τ", mode: "lines", line: {color: "#c0392b", dash: "dash"}, connectgaps: false});
  const scoreOf = Object.fromEntries(p.days.map((d, i) => [d, p.score[i]]));
  const tauOf = Object.fromEntries(p.days.map((d, i) => [d, p.threshold[i]]));
  const an = p.alerts.filter((a) => a.kind === "anomaly"), st = p.alerts.filter((a) => a.kind === "stepup");
  traces.push({x: an.map((a) => a.day), y: an.map((a) => a.score), name: "Anomaly event", mode: "markers",
               marker: {symbol: "x", size: 11, color: "#b3261e", line: {width: 2}}, text: an.map((a) => a.contributors.map((c) => c.words).join("; ")), hoverinfo: "x+text"});
  traces.push({x: st.map((a) => a.day), y: st.map((a) => scoreOf[a.day] ?? tauOf[a.day] ?? 0), name: "Step-up (well-being drop)", mode: "markers",
               marker: {symbol: "triangle-down", size: 12, color: "#b26a00"}, text: st.map((a) => `${a.from_level} → ${a.to_level} (${a.source})`), hoverinfo: "x+text"});
  // Calibration periods: grey bands across every panel. Days without a score record
  // (not enough data for the rhythm windows) do not split a band.
  const known = p.days.map((d, i) => [d, p.calibrating[i], p.score[i] !== null || p.threshold[i] !== null || p.calibrating[i]])
    .filter(([, , has]) => has);
  let start = null, prev = null;
  known.forEach(([d, cal], i) => {
    if (cal && start === null) start = d;
    if (start !== null && (!cal || i === known.length - 1)) {
      const end = cal ? d : prev;
      layout.shapes.push({type: "rect", xref: "x", yref: "paper", x0: shiftDay(start, -12), x1: shiftDay(end, 12), y0: 0, y1: 1,
                          fillcolor: "#9aa3ad", opacity: 0.18, line: {width: 0}, layer: "below"});
      layout.annotations.push({x: shiftDay(start, 0), y: 1, xref: "x", yref: "paper", text: "calibrating (no alerts)", showarrow: false, xanchor: "left", yanchor: "bottom", font: {color: "#5b6675"}});
      start = null;
    }
    prev = d;
  });
  for (const a of an) {  // a thin red line through every panel on anomalous days
    layout.shapes.push({type: "line", xref: "x", yref: "paper", x0: a.day, x1: a.day, y0: 0, y1: 1, line: {color: "#b3261e", width: 1, dash: "dot"}, opacity: 0.5});
  }
  const colours = ["#6a3d9a", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"];
  keys.forEach((k, i) => {
    const ax = i + 2, hi = top - gap - i * (rowH + gap);
    const [label, unit] = traj[k];
    layout["yaxis" + ax] = {domain: [hi - rowH, hi], title: {text: unit, font: {size: 11}}, rangemode: "tozero"};
    layout["xaxis" + ax] = {type: "date", anchor: "y" + ax, matches: ax === n + 1 ? undefined : "x" + (n + 1), showticklabels: ax === n + 1};
    layout.annotations.push({text: `<b>${label}</b>`, xref: "paper", yref: "paper", x: 0, y: hi, xanchor: "left", yanchor: "top", showarrow: false, bgcolor: "rgba(255,255,255,.7)"});
    traces.push({x: p.days, y: p.trajectories[k], name: label, xaxis: "x" + ax, yaxis: "y" + ax, mode: "lines+markers",
                 line: {color: colours[i % colours.length]}, marker: {size: 3}, connectgaps: false, showlegend: false, hovertemplate: `%{y:.2f} ${unit}<extra>${label}</extra>`});
  });
  layout["xaxis" + (n + 1)].title = {text: "Local day"};
  return {traces, layout};
}

function participantAlerts(p) {
  const box = $("#alerts");
  box.innerHTML = p.alerts.map((a) => `<div class="card ${a.kind}" data-event-id="${esc(a.event_id)}">
    <b>${esc(a.day)}</b> · ${kindLabel(a)} — ${whatHtml(a)}<div>${ackHtml(a)}</div></div>`).join("") || "<p>No alerts in the days shown.</p>";
}

function participantPage() {
  const p = data("data"), traj = data("traj");
  const draw = (q) => {
    const {traces, layout} = participantFigure(q, traj);
    Plotly.react("fig", traces, layout, {displaylogo: false, responsive: true});
    participantAlerts(q);
  };
  draw(p);
  let timer = null;
  follow({
    alert: (a) => {
      if (a.participant !== p.participant) return;
      clearTimeout(timer);
      timer = setTimeout(async () => draw(await (await fetch(`/api/participant/${encodeURIComponent(p.participant)}`)).json()), 300);
    },
    ack: applyAck,
  });
}

document.addEventListener("DOMContentLoaded", () => {
  restoreBy();
  const page = document.body.dataset.page;
  if (page === "cohort") cohortPage();
  else if (page === "inbox") inboxPage();
  else if (page === "participant") participantPage();
});
