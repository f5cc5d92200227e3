// rlhp labelling page: shows two clips in sync, sends the answer, prefetches the next pair.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: null, current: null, nextPromise: null, busy: false, shownAt: 0, statusTimer: null };

function readToken() {
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    sessionStorage.setItem("rlhp-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname); // keep the token out of the address bar
  }
  return sessionStorage.getItem("rlhp-token");
}

async function api(path, body) {
  const init = { headers: { Authorization: `Bearer ${state.token}` } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    sessionStorage.removeItem("rlhp-token");
    showLogin("That token was not accepted. Paste the token the run printed.");
    throw new Error("unauthorized");
  }
  return response;
}

function say(text) { $("message").textContent = text; }

// What went wrong, from a failed response: its JSON {"error"} when it has one, else its status
// (a proxy's or the server's own error page is HTML or plain text, not JSON).
async function errorText(response) {
  try {
    const body = await response.clone().json();
    if (body && typeof body.error === "string") return body.error;
  } catch (_) { /* not JSON */ }
  return `the server answered ${response.status} ${response.statusText}`.trim();
}

function showLogin(text) {
  $("pair").hidden = true; $("choices").hidden = true; $("login").hidden = false;
  say(text || "");
  $("token-input").focus();
}

async function fetchClip(clipId) {
  const response = await api(`api/clips/${clipId}`);
  if (!response.ok) throw new Error(await errorText(response));
  return URL.createObjectURL(await response.blob());
}

// Ask for a pair the page does not hold yet, and download both clips before it is needed.
async function loadPair() {
  const holding = state.current ? [state.current.pair_id] : [];
  const response = await api("api/next", { holding });
  if (!response.ok) throw new Error(await errorText(response));
  const { pair } = await response.json();
  if (!pair) return null;
  const [left, right] = await Promise.all([fetchClip(pair.left_clip), fetchClip(pair.right_clip)]);
  return { ...pair, left, right };
}

function playTogether() {
  const left = $("left"), right = $("right");
  left.currentTime = 0; right.currentTime = 0;
  Promise.all([left.play(), right.play()]).catch(() => {});
  state.shownAt = performance.now();
}

function show(pair) {
  const left = $("left"), right = $("right");
  let ready = 0;
  const onReady = () => { if (++ready === 2) playTogether(); };
  left.addEventListener("canplay", onReady, { once: true });
  right.addEventListener("canplay", onReady, { once: true });
  left.src = pair.left; right.src = pair.right;
  $("pair").dataset.pairId = pair.pair_id;
  $("pair").hidden = false; $("choices").hidden = false;
  setBusy(false);
  say("");
}

// Keep the right clip on the left clip's clock (both loop over the same number of frames).
$("left").addEventListener("timeupdate", () => {
  const left = $("left"), right = $("right");
  if (!right.paused && Math.abs(right.currentTime - left.currentTime) > 0.15) right.currentTime = left.currentTime;
});

function setBusy(busy) {
  state.busy = busy;
  for (const b of document.querySelectorAll(".choices button")) b.disabled = busy;
}

async function advance() {
  for (const url of [state.current?.left, state.current?.right]) if (url) URL.revokeObjectURL(url);
  const prefetched = state.nextPromise;
  state.nextPromise = null;
  state.current = (prefetched && (await prefetched)) || (await loadPair());
  if (!state.current) {
    $("pair").hidden = true; $("choices").hidden = true;
    say("No pairs are waiting right now; new ones come as the agent learns. Checking again…");
    setTimeout(() => advance().catch(retrySoon), 2000);
    return;
  }
  show(state.current);
  // prefetch the pair after this one (one request at a time, so the server sees what we hold)
  state.nextPromise = loadPair().catch((err) => { report(err); return null; });
}

async function answer(choice) {
  if (state.busy || !state.current) return;
  setBusy(true);
  const pair = state.current;
  const body = { pair_id: pair.pair_id, lease: pair.lease, choice,
                 answer_ms: Math.round(performance.now() - state.shownAt) };
  let response;
  try {
    response = await api("api/answer", body);
  } catch (err) {
    setBusy(false);
    say("Could not reach the run; your answer was not stored. Try again.");
    return;
  }
  if (response.ok) {
    const out = await response.json().catch(() => ({}));
    if (out.your_labels !== undefined) $("your-labels").textContent = out.your_labels;
  } else if ([403, 404, 409].includes(response.status)) {
    say(await errorText(response)); // this pair is gone (not yours, unknown, answered): move on
  } else {
    // 5xx, 429, 413 …: nothing was stored; keep the pair on screen so it can be sent again
    const wait = response.headers.get("Retry-After");
    say(`Your answer was not stored (${await errorText(response)}). ` +
        (wait ? `Try again in ${wait} s.` : "Try again."));
    setBusy(false);
    return;
  }
  await advance().catch(retrySoon);
}

function report(err) { if (err.message !== "unauthorized") say(`Problem: ${err.message}`); }

// Say what failed and try again in a few seconds (a 500, a restarting run, a lost network).
function retrySoon(err) {
  if (err.message === "unauthorized") return; // the login form is showing
  say(`Problem: ${err.message}. Trying again…`);
  setTimeout(() => advance().catch(retrySoon), 3000);
}

function drawTrend(points) {
  const svg = $("trend");
  svg.replaceChildren();
  if (points.length) $("predicted").textContent = points[points.length - 1][1].toFixed(1);
  if (points.length < 2) return;
  const ys = points.map((p) => p[1]);
  const lo = Math.min(...ys), hi = Math.max(...ys), span = hi - lo || 1;
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.map((p, i) =>
    `${(i / (points.length - 1)) * 136 + 2},${30 - ((p[1] - lo) / span) * 28}`).join(" "));
  svg.append(line);
  svg.setAttribute("aria-label", `predicted return trend, latest ${ys[ys.length - 1].toFixed(1)}`);
  $("predicted").textContent = ys[ys.length - 1].toFixed(1);
}

async function refreshStatus() {
  const response = await api("api/status");
  if (!response.ok) return;
  const s = await response.json();
  $("task").textContent = s.task;
  $("labeller").textContent = s.labeller;
  $("your-labels").textContent = s.your_labels;
  $("labels").textContent = s.labels;
  const p = s.progress || {};
  $("steps").textContent = p.global_step !== undefined
    ? `${Math.round(p.global_step).toLocaleString()} / ${Math.round(p.total_steps).toLocaleString()}`
    : p.initial_labels !== undefined ? `starts after the first ${p.initial_labels} labels` : "starting";
  drawTrend(s.predicted_return || []);
}

const KEYS = { ArrowLeft: "left", 1: "left", ArrowRight: "right", 2: "right",
               ArrowUp: "tie", 3: "tie", t: "tie", ArrowDown: "cant_tell", 0: "cant_tell", c: "cant_tell" };
document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT" || event.altKey || event.ctrlKey || event.metaKey) return;
  const choice = KEYS[event.key];
  if (choice) { event.preventDefault(); answer(choice); }
});
for (const button of document.querySelectorAll(".choices button")) {
  button.addEventListener("click", () => answer(button.dataset.choice));
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("rlhp-token", $("token-input").value.trim());
  start();
});

async function start() {
  state.token = readToken();
  if (!state.token) { showLogin(); return; }
  $("login").hidden = true;
  try {
    await refreshStatus();
  } catch (err) { report(err); if (err.message === "unauthorized") return; }
  if (!state.statusTimer) state.statusTimer = setInterval(() => refreshStatus().catch(report), 3000);
  await advance().catch(retrySoon);
}

start();
