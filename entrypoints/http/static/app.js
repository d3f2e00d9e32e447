// The trader's cockpit: one page over the HTTP API and its live stream.
import { api, apiAll, ApiError, forgetToken, LiveStream, savedToken, saveToken } from "./api.js";
import { lineChart } from "./chart.js";
import { amount, negate, price, quantity, quote, shownValue, sign, signedText, sum } from "./money.js";

const SECTIONS = ["overview", "listings", "positions", "history", "settings", "backtests"];
const OPEN_TARGET = new Set(["watching", "ready", "scheduled"]);
const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  stop: null,
  stopInfo: null, // {since, by} of the stop in force, from the audit trail
  portfolio: null,
  settings: null,
  strategies: [],
  targets: [],
  calendar: [],
  trades: [],
  seen: new Map(), // target id -> the statuses this page saw, in order
  samples: new Map(), // position id -> [[ms, price]] current prices seen while open, when received (this browser's clock)
  // Position id (and "target:" target id) -> how far the clock that stamps its events (occurred_at)
  // is behind this browser's: the least (received - occurred) of its events the stream brought. A
  // worker on the wall clock: a few ms; a replay in virtual time: hours (while the API's own events,
  // an emergency stop, are on the wall clock). A chart puts the prices received on its events' clock.
  skews: new Map(),
  histories: new Map(), // target id -> its recorded events (the open positions' price path)
  analyses: new Map(), // coin id -> the latest advisory analysis of an upcoming listing, or null
  analysedAt: 0,
  auditCursors: [null],
  stream: null,
  refreshTimer: null,
};

// --- small DOM helpers -------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Live updates redraw sections while the trader may be typing in them: what they changed (marked
// dirty on input) and where the focus was survive the redraw, by element id.
function fill(id, ...children) {
  const target = typeof id === "string" ? $(id) : id;
  const edits = [...target.querySelectorAll("[data-dirty][id]")].map((el) => [el.id, el.value]);
  const focused = target.contains(document.activeElement) ? document.activeElement.id : "";
  target.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  for (const [elementId, value] of edits) {
    const el = document.getElementById(elementId);
    if (el && target.contains(el)) {
      el.value = value;
      el.dataset.dirty = "1";
    }
  }
  if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
}

function setValue(id, value) {
  const el = $(id);
  if (!el.dataset.dirty) el.value = value;
}

function setChecked(id, value) {
  const el = $(id);
  if (!el.dataset.dirty) el.checked = value;
}

function clean(form) {
  for (const el of form.querySelectorAll("[data-dirty]")) delete el.dataset.dirty;
}

function table(caption, headers, rows, attrs = {}) {
  return h("div", { class: "table-wrap" },
    h("table", attrs,
      h("caption", { text: caption }),
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, rows)));
}

// A P&L: "+4.9775" in green, "-1.20" in red (formatted from the string, never through a float).
function signed(text) {
  if (text === null || text === undefined) return h("span", { text: "–" });
  const value = sign(text);
  return h("span", { class: value > 0 ? "pos" : value < 0 ? "neg" : "", text: signedText(text) });
}

function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)} UTC`;
}

function countdown(iso) {
  const ms = new Date(iso).getTime() - Date.now();
  const past = ms < 0;
  let s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const hh = Math.floor(s / 3600);
  s -= hh * 3600;
  const mm = Math.floor(s / 60);
  s -= mm * 60;
  const text = `${d ? `${d}d ` : ""}${String(hh).padStart(2, "0")}:${String(mm).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  return past ? `launched ${text} ago` : `in ${text}`;
}

function notify(text, bad = false) {
  const notice = $("notice");
  notice.textContent = text;
  notice.classList.toggle("bad", bad);
}

function problem(error) {
  return error instanceof ApiError ? error.message : `could not reach the server (${error.message})`;
}

// A confirmation dialog; resolves to {reason} or null.
function confirmAction(text, { reason = null, yes = "Confirm" } = {}) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  $("confirm-yes").textContent = yes;
  $("confirm-reason-row").hidden = reason === null;
  $("confirm-reason").value = reason || "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes" ? { reason: $("confirm-reason").value.trim() } : null);
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    (reason === null ? $("confirm-no") : $("confirm-reason")).focus();
  });
}

async function attempt(action, errorId) {
  if (errorId) $(errorId).textContent = "";
  try {
    return await action();
  } catch (error) {
    if (errorId) $(errorId).textContent = problem(error);
    else notify(problem(error), true);
    return undefined;
  }
}

// --- navigation --------------------------------------------------------------------------

function show(section, focus = false) {
  if (!SECTIONS.includes(section)) section = "overview";
  for (const name of SECTIONS) $(name).hidden = name !== section;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (focus) {
    const title = $(`${section}-title`);
    title.setAttribute("tabindex", "-1");
    title.focus();
  }
}

function currentSection() {
  const name = location.hash.slice(1);
  return SECTIONS.includes(name) ? name : "overview";
}

// --- overview ----------------------------------------------------------------------------

async function findStopInfo() {
  // Since when and by whom: /status names every stop holding for the trader (a global one too).
  try {
    const status = await api("/api/v1/status");
    const stop = status.stops && status.stops[0];
    if (stop) return { since: stop.since, by: stop.by };
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
  }
  // A server without /status: the trader's own stop's last activation in the audit trail.
  let found = null;
  for (const event of await apiAll("/api/v1/audit", { maxPages: 100 })) {
    if (event.type === "EmergencyStopActivated") found = { since: event.occurred_at, by: event.data.activated_by };
    if (event.type === "EmergencyStopCleared") found = null;
  }
  return found;
}

async function loadStop() {
  state.stop = await api("/api/v1/emergency-stop");
  if (state.stop.active && !state.stopInfo) state.stopInfo = await findStopInfo();
  if (!state.stop.active) state.stopInfo = null;
  renderStop();
}

function renderStop() {
  const stop = state.stop;
  const card = $("stop-card");
  card.classList.toggle("halted", stop.active);
  $("stop-state").textContent = stop.active ? "HALTED: new orders are refused" : "Trading: no emergency stop";
  const info = state.stopInfo;
  fill("stop-detail", stop.active
    ? [h("span", { text: stop.reason || "" }), info ? h("span", { text: ` (since ${when(info.since)}, by ${info.by})` }) : null]
    : []);
  $("stop-press").hidden = stop.active;
  $("stop-clear").hidden = !stop.active || (stop.reason || "").startsWith("global");
}

async function pressStop() {
  const answer = await confirmAction("Halt all trading? New orders are refused and open orders cancelled until you clear it.",
    { reason: "pressed on the dashboard", yes: "Halt trading" });
  if (!answer) return;
  await attempt(async () => {
    const result = await api("/api/v1/emergency-stop", { method: "POST", body: { reason: answer.reason || "pressed on the dashboard" } });
    state.stopInfo = { since: result.active_since || new Date().toISOString(), by: state.me.user_id };
    notify(result.note || "Emergency stop pressed: trading is halted.");
    await loadStop();
  });
}

async function clearStop() {
  const answer = await confirmAction("Clear the emergency stop and let trading resume?", { yes: "Resume trading" });
  if (!answer) return;
  await attempt(async () => {
    const result = await api("/api/v1/emergency-stop", { method: "DELETE" });
    notify(result.note || "Emergency stop cleared: trading resumes.");
    await loadStop();
  });
}

function utcToday() {
  return new Date().toISOString().slice(0, 10);
}

async function loadOverview() {
  const [portfolio, daily, agents] = await Promise.all([
    api("/api/v1/portfolio"),
    api(`/api/v1/pnl/daily?from=${utcToday()}&to=${utcToday()}`),
    api("/api/v1/agents"),
  ]);
  state.portfolio = portfolio;
  const open = portfolio.positions.filter((p) => p.status !== "closed");
  for (const p of open) {
    if (p.current_price === undefined || p.current_price === null) continue;
    const list = state.samples.get(p.position_id) || [];
    const last = list[list.length - 1];
    if (!last || last[1] !== Number(p.current_price)) list.push([Date.now(), Number(p.current_price)]);
    state.samples.set(p.position_id, list);
  }
  const today = daily.length ? daily[daily.length - 1].realised_pnl : "0";
  fill("pnl-today", signed(today));
  fill("pnl-total", signed(portfolio.realised_pnl));
  const unrealised = open.filter((p) => p.unrealised_pnl !== undefined && p.unrealised_pnl !== null);
  fill("pnl-unrealised", unrealised.length
    ? signed(sum(unrealised.map((p) => p.unrealised_pnl)))
    : h("span", { text: open.length ? "no current price yet" : "0 (nothing open)" }));
  fill("pnl-fees", h("span", { text: quote(portfolio.fees) }));
  renderExposure(today);
  fill("agents", agents.length
    ? table("Worker agents", ["Agent", "Health", "Last heartbeat", "Detail"], agents.map((a) => h("tr", {},
        h("td", { text: `${a.name} (${a.worker_id})` }),
        h("td", { class: a.healthy && !a.stale ? "pos" : "neg", text: a.stale ? "stale" : a.healthy ? "healthy" : "unhealthy" }),
        h("td", { text: when(a.last_beat_at) }),
        h("td", { text: a.detail }))))
    : h("p", { text: "No agent has reported: is `sniper worker` running?" }));
  await loadBalances();
}

function meter(label, value, max, shown) {
  const id = `meter-${label.replace(/\W+/g, "-").toLowerCase()}`;
  return h("div", { class: "meter" },
    h("label", { for: id, text: `${label}: ${shown}` }),
    h("meter", { id, min: 0, max: Math.max(Number(max) || 0, 0.00000001), value: Math.max(Number(value) || 0, 0),
                 high: (Number(max) || 0) * 0.8, optimum: 0 }));
}

function renderExposure(todayPnl) {
  const risk = state.settings && state.settings.risk;
  const p = state.portfolio;
  if (!risk || !p) return;
  const loss = sign(todayPnl) < 0 ? negate(todayPnl) : "0";
  fill("exposure",
    meter("Open exposure", p.open_exposure, risk.max_total_exposure, `${quote(p.open_exposure)} of ${quote(risk.max_total_exposure)}`),
    meter("Open positions", p.open_positions, risk.max_concurrent_positions, `${p.open_positions} of ${risk.max_concurrent_positions}`),
    meter("Loss today", loss, risk.max_daily_loss, `${quote(loss)} of ${quote(risk.max_daily_loss)}`),
    h("p", { class: "small", text: `Largest snipe ${quote(risk.max_quote_per_snipe)}; quote assets ${risk.allowed_quote_assets.join(", ")}; ${risk.live ? "LIVE trading" : "paper trading"}.` }));
}

async function loadBalances() {
  try {
    const answer = await api("/api/v1/balances");
    const quoteAssets = new Set((state.settings && state.settings.risk && state.settings.risk.allowed_quote_assets) || ["USDT"]);
    const shown = (asset, text) => (quoteAssets.has(asset) ? quote(text) : quantity(text));
    fill("balances",
      h("p", { class: "small", text: `${answer.mode === "live" ? "From MEXC with your keys" : "The paper account"} as of ${when(answer.as_of)}` }),
      answer.balances.length
        ? table("Balances", ["Asset", "Free", "Locked"], answer.balances.map((b) => h("tr", {},
            h("td", { text: b.asset }), h("td", { class: "num", text: shown(b.asset, b.free) }),
            h("td", { class: "num", text: shown(b.asset, b.locked) }))))
        : h("p", { text: "No balance." }));
  } catch (error) {
    fill("balances", h("p", { text: error instanceof ApiError && error.status === 404 ? "This server does not answer balances." : problem(error) }));
  }
}

// --- listings and targets ----------------------------------------------------------------

// "scheduled" is the ready state once its buy is booked for the launch (the two are recorded together).
const STATUS_LABELS = { scheduled: "ready, buy scheduled" };
const statusLabel = (status) => STATUS_LABELS[status] || status;

function noteStatus(target) {
  const seen = state.seen.get(target.target_id) || [];
  if (seen[seen.length - 1] !== statusLabel(target.status)) seen.push(statusLabel(target.status));
  state.seen.set(target.target_id, seen);
  return seen;
}

function strategyOptions(selected) {
  return state.strategies.map((s) => h("option", { value: s.name, selected: s.name === selected, text: s.name }));
}

function targetActions(target) {
  if (!OPEN_TARGET.has(target.status)) return h("span", { text: target.reason || "" });
  const amountId = `amend-amount-${target.target_id}`;
  const strategyId = `amend-strategy-${target.target_id}`;
  const form = h("form", { class: "row compact", onsubmit: async (event) => {
    event.preventDefault();
    await attempt(async () => {
      await api(`/api/v1/targets/${encodeURIComponent(target.target_id)}`, { method: "PATCH",
        body: { quote_amount: $(amountId).value.trim(), exit_strategy: $(strategyId).value } });
      delete $(amountId).dataset.dirty;
      delete $(strategyId).dataset.dirty;
      notify(`Target ${target.symbol} amended.`);
      await loadTargets();
    });
  } },
  h("label", { for: amountId, class: "sr-only", text: `Quote amount for ${target.symbol}` }),
  h("input", { id: amountId, value: amount(target.quote_amount), inputmode: "decimal", size: 8 }),
  h("label", { for: strategyId, class: "sr-only", text: `Exit strategy for ${target.symbol}` }),
  h("select", { id: strategyId }, strategyOptions(target.exit_strategy)),
  h("button", { type: "submit", text: "Amend" }),
  h("button", { type: "button", class: "danger", text: "Cancel target", onclick: async () => {
    const answer = await confirmAction(`Cancel the target on ${target.symbol}?`, { yes: "Cancel the target" });
    if (!answer) return;
    await attempt(async () => {
      await api(`/api/v1/targets/${encodeURIComponent(target.target_id)}/cancel`, { method: "POST", body: { reason: "cancelled on the dashboard" } });
      notify(`Target ${target.symbol} cancelled.`);
      await loadTargets();
    });
  } }));
  return form;
}

function renderTargets() {
  const rows = state.targets.slice().reverse().map((t) => {
    const seen = noteStatus(t);
    return h("tr", { dataset: { target: t.target_id, symbol: t.symbol, status: t.status } },
      h("td", { text: t.symbol }),
      h("td", {}, h("span", { class: `status ${t.status}`, text: statusLabel(t.status) }),
        seen.length > 1 ? h("span", { class: "small seen", text: ` (seen: ${seen.join(" → ")})` }) : null),
      h("td", { text: when(t.launch_at) }),
      h("td", { class: "num", text: quote(t.quote_amount) }),
      h("td", { text: t.exit_strategy }),
      h("td", { class: "num", title: "the rules' confidence that this listing trades at launch", text: amount(t.confidence) }),
      h("td", { text: t.live ? "live" : "paper" }),
      h("td", {}, targetActions(t)));
  });
  fill("targets", rows.length
    ? table("Your snipe targets, newest first", ["Symbol", "Status", "Launch", "Quote", "Exit plan", "Confidence", "Mode", "Actions"], rows, { id: "targets-table" })
    : h("p", { text: "No target yet." }));
}

function createForm(listing) {
  const amountId = `new-amount-${listing.coin_id}`;
  const strategyId = `new-strategy-${listing.coin_id}`;
  const defaults = state.settings || { quote_amount: "10", exit_strategy: "balanced" };
  return h("form", { class: "row compact", onsubmit: async (event) => {
    event.preventDefault();
    await attempt(async () => {
      await api("/api/v1/targets", { method: "POST", body: {
        symbol: listing.symbol, launch_at: listing.launch_at, quote_amount: $(amountId).value.trim(),
        exit_strategy: $(strategyId).value, quote_asset: defaults.quote_asset || "USDT" } });
      delete $(amountId).dataset.dirty;
      delete $(strategyId).dataset.dirty;
      notify(`Target on ${listing.symbol} created.`);
      await loadTargets();
    });
  } },
  h("label", { for: amountId, class: "sr-only", text: `Quote amount for ${listing.symbol}` }),
  h("input", { id: amountId, value: amount(defaults.quote_amount), inputmode: "decimal", size: 8 }),
  h("label", { for: strategyId, class: "sr-only", text: `Exit strategy for ${listing.symbol}` }),
  h("select", { id: strategyId }, strategyOptions(defaults.exit_strategy)),
  h("button", { type: "submit", text: "Create target" }));
}

function renderCalendar() {
  const byCoin = new Map(state.targets.map((t) => [t.coin_id, t]));
  const items = state.calendar.slice().sort((a, b) => a.launch_at.localeCompare(b.launch_at)).map((listing) => {
    const target = byCoin.get(listing.coin_id);
    const steps = [
      ["announced", true],
      ["target watching", Boolean(target)],
      ["ready pattern (sts 2, st 2, tt 4)", listing.ready],
    ];
    return h("li", { class: "listing card", dataset: { coin: listing.coin_id, symbol: listing.symbol } },
      h("h4", { text: `${listing.ticker} (${listing.symbol})` }),
      h("p", {}, h("time", { datetime: listing.launch_at, class: "countdown", dataset: { launch: listing.launch_at }, text: countdown(listing.launch_at) }),
        h("span", { class: "small", text: ` · ${when(listing.launch_at)}` })),
      h("ol", { class: "steps", "aria-label": `Progress of ${listing.ticker} towards the ready pattern` },
        steps.map(([label, done]) => h("li", { class: done ? "done" : "", text: `${done ? "✓" : "○"} ${label}` }))),
      analysisOf(listing),
      target
        ? h("div", {}, h("p", {}, "Your target: ", h("span", { class: `status ${target.status}`, text: statusLabel(target.status) }),
            ` · confidence ${amount(target.confidence)}`, target.reason ? ` · ${target.reason}` : ""), targetActions(target))
        : createForm(listing));
  });
  fill("calendar", items.length ? h("ul", { class: "cards plain" }, items) : h("p", { text: "No launch announced." }));
}

function analysisOf(listing) {
  const a = state.analyses.get(listing.coin_id);
  if (!a) return null;
  return h("details", { class: "analysis" },
    h("summary", { text: `Analysis: score ${amount(a.score)} of 100 (${a.provider})` }),
    h("p", { text: a.explanation }),
    a.similar_symbols.length ? h("p", { class: "small", text: `Similar listings: ${a.similar_symbols.join(", ")}` }) : null);
}

// The advisory analyses of the upcoming listings: a new listing's at once, the others' again at
// most once a minute.
async function loadAnalyses() {
  const again = Date.now() - state.analysedAt >= 60000;
  if (again) state.analysedAt = Date.now();
  const wanted = state.calendar.filter((listing) => again || !state.analyses.has(listing.coin_id));
  await Promise.all(wanted.map(async (listing) => {
    try {
      state.analyses.set(listing.coin_id, await api(`/api/v1/listings/${encodeURIComponent(listing.coin_id)}/analysis`));
    } catch {
      state.analyses.set(listing.coin_id, null);
    }
  }));
}

function tickCountdowns() {
  for (const node of document.querySelectorAll("[data-launch]")) node.textContent = countdown(node.dataset.launch);
}

async function loadTargets() {
  const [targets, calendar] = await Promise.all([apiAll("/api/v1/targets"), apiAll("/api/v1/calendar")]);
  state.targets = targets;
  state.calendar = calendar;
  await loadAnalyses();
  renderTargets();
  renderCalendar();
  renderTimelineChoices();
}

// --- positions ---------------------------------------------------------------------------

function planOf(position) {
  // The plan the position was opened with (its PositionOpened event), else the target's by name.
  const opened = (state.histories.get(position.target_id) || []).find((e) => e.type === "PositionOpened");
  if (opened && opened.data.exit_plan) return opened.data.exit_plan;
  const target = state.targets.find((t) => t.target_id === position.target_id);
  return target ? state.strategies.find((s) => s.name === target.exit_strategy) : undefined;
}

const EXIT_LABELS = { TakeProfitHit: "TP", StopLossHit: "SL", TrailingStopHit: "trail", MaxHoldTimeReached: "time",
  EmergencyExitFilled: "emergency", ManualExitFilled: "by hand", DustWrittenOff: "dust" };

// The price path since launch as recorded: the entry, each new peak, each exit fill, at the
// events' own times; then the current prices this page saw, at the times they were received, on
// the events' clock (a replay's virtual time is not the wall clock), never before the entry.
function positionChart(position) {
  const entry = Number(position.entry_price);
  const events = (state.histories.get(position.target_id) || []).filter((e) => e.data && e.data.position_id === position.position_id);
  const points = [];
  const markers = [];
  let peak = entry;
  for (const e of events) {
    const at = new Date(e.type === "PositionOpened" && e.data.opened_at ? e.data.opened_at : e.occurred_at).getTime();
    if (e.type === "PositionOpened") {
      points.push([at, Number(e.data.entry_price)]);
      markers.push({ x: at, y: Number(e.data.entry_price), label: "entry", kind: "buy" });
    } else if (e.type === "PositionPeakRaised") {
      peak = Math.max(peak, Number(e.data.peak_price));
      points.push([at, Number(e.data.peak_price)]);
    } else if (e.type in EXIT_LABELS && Number(e.data.price) > 0) {
      points.push([at, Number(e.data.price)]);
      markers.push({ x: at, y: Number(e.data.price), label: EXIT_LABELS[e.type], kind: "sell" });
    }
  }
  if (!events.length) { // no timeline at hand: the fills alone
    for (const t of state.trades.filter((t) => t.position_id === position.position_id)) {
      const at = new Date(t.occurred_at).getTime();
      points.push([at, Number(t.price)]);
      markers.push({ x: at, y: Number(t.price), label: t.side === "buy" ? "entry" : EXIT_LABELS[t.event_type] || t.event_type, kind: t.side });
    }
  }
  const opened = points.length ? Math.min(...points.map(([x]) => x)) : -Infinity;
  const skew = skewOf(position);
  for (const [received, value] of state.samples.get(position.position_id) || []) {
    const at = received - skew;
    if (at < opened) continue;
    points.push([at, value]);
    peak = Math.max(peak, value);
  }
  points.sort((a, b) => a[0] - b[0]);
  const hlines = [{ label: "entry", y: entry, kind: "entry", text: price(position.entry_price) }];
  const plan = planOf(position);
  if (plan) {
    for (const [i, level] of (plan.take_profits || []).entries()) hlines.push({ label: `TP${i + 1}`, y: entry * (1 + Number(level.gain_percent) / 100), kind: "tp" });
    hlines.push({ label: "SL", y: entry * (1 - Number(plan.stop_loss_percent) / 100), kind: "sl" });
    if (plan.trailing_stop_percent) hlines.push({ label: "trail", y: peak * (1 - Number(plan.trailing_stop_percent) / 100), kind: "trail" });
  }
  return lineChart({
    title: `${position.symbol}: price since launch`,
    description: `Entry ${price(position.entry_price)}, recorded peaks and exits, and current prices of ${position.symbol}; ` +
      `dashed lines: entry${plan ? `, take-profit and stop-loss of plan ${plan.name}` : ""}.`,
    series: [{ name: "price", kind: "price", points }],
    hlines, markers,
  });
}

function positionCard(p) {
  return h("article", { class: "card position", dataset: { position: p.position_id, symbol: p.symbol, status: p.status } },
    h("h4", { text: `${p.symbol} · ${p.status}` }),
    h("dl", { class: "figures" },
      h("dt", { text: "Entry price" }), h("dd", { text: price(p.entry_price) }),
      h("dt", { text: "Held" }), h("dd", { text: `${quantity(p.remaining)} of ${quantity(p.quantity)}` }),
      h("dt", { text: "Cost" }), h("dd", { text: `${quote(p.cost)} ${p.quote_asset}` }),
      h("dt", { text: "Current price" }), h("dd", { text: price(p.current_price) }),
      h("dt", { text: "Unrealised" }), h("dd", {}, signed(p.unrealised_pnl ?? null)),
      h("dt", { text: "Realised" }), h("dd", {}, signed(p.realised_pnl)),
      h("dt", { text: "Exits made" }), h("dd", { text: p.exits.length ? p.exits.join(", ") : "none" })),
    positionChart(p),
    h("button", { type: "button", class: "danger close-now", text: `Close ${p.symbol} now`, onclick: async () => {
      const answer = await confirmAction(`Sell all ${quantity(p.remaining)} ${p.symbol} held at the market now?`, { yes: "Close now" });
      if (!answer) return;
      await attempt(async () => {
        const result = await api(`/api/v1/positions/${encodeURIComponent(p.position_id)}/close`, { method: "POST" });
        notify(result && result.note ? result.note : `Close of ${p.symbol} sent.`);
        scheduleRefresh();
      });
    } }));
}

async function loadPositions() {
  state.trades = await apiAll("/api/v1/trades", { maxPages: 5 });
  const positions = state.portfolio ? state.portfolio.positions : [];
  const open = positions.filter((p) => p.status !== "closed");
  await Promise.all(open.map(async (p) => {
    try {
      state.histories.set(p.target_id, await api(`/api/v1/targets/${encodeURIComponent(p.target_id)}/history`));
    } catch {
      state.histories.delete(p.target_id); // a position of no target of ours (e.g. reconciled): fills only
    }
  }));
  const closed = positions.filter((p) => p.status === "closed");
  fill("open-positions", open.length ? open.map(positionCard) : h("p", { text: "Nothing open." }));
  fill("closed-positions", closed.length
    ? table("Closed positions", ["Symbol", "Entry", "Cost", "Proceeds", "Fees", "Result", "Exits", "Closed"], closed.map((p) =>
        h("tr", { dataset: { position: p.position_id, symbol: p.symbol } },
          h("td", { text: p.symbol }), h("td", { class: "num", text: price(p.entry_price) }), h("td", { class: "num", text: quote(p.cost) }),
          h("td", { class: "num", text: quote(p.proceeds) }), h("td", { class: "num", text: quote(p.fees) }),
          h("td", { class: "num" }, signed(p.realised_pnl)), h("td", { text: p.exits.join(", ") }), h("td", { text: when(p.closed_at) }))),
      { id: "closed-table" })
    : h("p", { text: "No closed position." }));
}

// --- history -----------------------------------------------------------------------------

function summary(event) {
  const skip = new Set(["exit_plan"]);
  return Object.entries(event.data || {})
    .filter(([key, value]) => !skip.has(key) && value !== null && typeof value !== "object")
    .slice(0, 6).map(([key, value]) => `${key}=${shownValue(value)}`).join(" ");
}

function eventRows(events) {
  return events.map((e) => h("tr", {}, h("td", { class: "num", text: e.position }), h("td", { text: when(e.occurred_at) }),
    h("td", { text: e.type }), h("td", { text: e.stream_id }), h("td", { class: "wrap", text: summary(e) })));
}

function renderTimelineChoices() {
  const select = $("timeline-target");
  const chosen = select.value;
  fill(select, state.targets.map((t) => h("option", { value: t.target_id, selected: t.target_id === chosen, text: `${t.symbol} · ${t.status} · ${t.target_id}` })));
}

async function showTimeline(event) {
  event.preventDefault();
  const id = $("timeline-target").value;
  if (!id) return;
  await attempt(async () => {
    const events = await api(`/api/v1/targets/${encodeURIComponent(id)}/history`);
    fill("timeline", table(`Events of target ${id}`, ["#", "When", "Event", "Stream", "Data"], eventRows(events)));
  });
}

async function loadAudit() {
  const cursor = state.auditCursors[state.auditCursors.length - 1];
  const answer = await api(`/api/v1/audit?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
  const page = answer.items;
  state.auditPage = answer;
  $("audit-page").textContent = `page ${state.auditCursors.length}${answer.next ? "" : " (last)"}`;
  $("audit-prev").disabled = state.auditCursors.length < 2;
  $("audit-next").disabled = !answer.next;
  fill("audit", page.length ? table("Your audit trail", ["#", "When", "Event", "Stream", "Data"], eventRows(page)) : h("p", { text: "Nothing recorded yet." }));
}

// --- settings, exit plans, credentials ---------------------------------------------------

const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

function renderSettings() {
  const s = state.settings;
  if (!s) return;
  setChecked("set-auto", s.auto_snipe);
  setValue("set-quote", amount(s.quote_amount));
  setValue("set-asset", s.quote_asset);
  const chosen = $("set-strategy").dataset.dirty ? $("set-strategy").value : s.exit_strategy;
  fill("set-strategy", strategyOptions(chosen));
  setValue("set-confidence", amount(s.min_confidence));
  setValue("set-only", (s.only_tickers || []).join(", "));
  setValue("set-skip", (s.skip_tickers || []).join(", "));
  setValue("set-max-entry", s.max_entry_price ? amount(s.max_entry_price) : "");
  setValue("risk-max-quote", amount(s.risk.max_quote_per_snipe));
  setValue("risk-max-positions", s.risk.max_concurrent_positions);
  setValue("risk-daily-loss", amount(s.risk.max_daily_loss));
  setValue("risk-exposure", amount(s.risk.max_total_exposure));
  setValue("risk-assets", s.risk.allowed_quote_assets.join(", "));
  setChecked("risk-live", Boolean(s.risk.live));
}

async function saveSettings(event) {
  event.preventDefault();
  // What the form does not show is sent back as it was: PUT replaces the settings as a whole.
  const before = state.settings || {};
  const body = {
    ...before,
    auto_snipe: $("set-auto").checked, quote_amount: $("set-quote").value.trim(), quote_asset: $("set-asset").value.trim(),
    exit_strategy: $("set-strategy").value, min_confidence: $("set-confidence").value.trim(),
    only_tickers: list($("set-only").value), skip_tickers: list($("set-skip").value),
    risk: {
      ...(before.risk || {}),
      max_quote_per_snipe: $("risk-max-quote").value.trim(), max_concurrent_positions: Number($("risk-max-positions").value),
      max_daily_loss: $("risk-daily-loss").value.trim(), max_total_exposure: $("risk-exposure").value.trim(),
      allowed_quote_assets: list($("risk-assets").value), live: $("risk-live").checked,
    },
  };
  if ("max_entry_price" in before || $("set-max-entry").value.trim()) body.max_entry_price = $("set-max-entry").value.trim() || null;
  await attempt(async () => {
    state.settings = await api("/api/v1/settings", { method: "PUT", body });
    clean($("settings-form"));
    renderSettings();
    notify("Settings saved.");
  }, "settings-error");
}

function renderStrategies() {
  fill("strategies", table("Exit strategies", ["Name", "Take-profits", "Stop-loss", "Trailing", "Longest hold", ""],
    state.strategies.map((s) => h("tr", {},
      h("td", { text: `${s.name}${s.preset ? " (preset)" : ""}${s.default ? " (default)" : ""}` }),
      h("td", { text: s.take_profits.map((l) => `+${l.gain_percent}%: sell ${l.sell_percent}%`).join("; ") || "none" }),
      h("td", { text: `-${s.stop_loss_percent}%` }),
      h("td", { text: s.trailing_stop_percent ? `${s.trailing_stop_percent}%` : "–" }),
      h("td", { text: s.max_hold_seconds ? `${s.max_hold_seconds} s` : "–" }),
      h("td", {}, h("button", { type: "button", text: s.preset ? `Copy ${s.name} into the editor` : `Edit ${s.name}`, onclick: () => editPlan(s) }),
        s.preset ? null : h("button", { type: "button", class: "danger", text: `Delete ${s.name}`, onclick: () => deletePlan(s.name) }))))));
}

function levelRow(level = { gain_percent: "", sell_percent: "" }) {
  const n = document.querySelectorAll("#plan-levels .level").length + 1;
  const row = h("div", { class: "level row compact" },
    h("label", { for: `level-gain-${n}`, text: `Level ${n}: gain %` }),
    h("input", { id: `level-gain-${n}`, class: "gain", value: level.gain_percent, inputmode: "decimal", size: 6, oninput: renderLadder }),
    h("label", { for: `level-sell-${n}`, text: "sell %" }),
    h("input", { id: `level-sell-${n}`, class: "sell", value: level.sell_percent, inputmode: "decimal", size: 6, oninput: renderLadder }),
    h("button", { type: "button", text: `Remove level ${n}`, onclick: () => { row.remove(); renderLadder(); } }));
  return row;
}

function planLevels() {
  return [...document.querySelectorAll("#plan-levels .level")].map((row) => ({
    gain_percent: row.querySelector(".gain").value.trim(), sell_percent: row.querySelector(".sell").value.trim() }));
}

function renderLadder() {
  let sold = 0;
  const rows = planLevels().map((level, i) => {
    sold += Number(level.sell_percent) || 0;
    return h("tr", {}, h("td", { text: `TP${i + 1}` }), h("td", { text: `entry +${level.gain_percent || "?"}%` }),
      h("td", { text: `sell ${level.sell_percent || "?"}%` }), h("td", { text: `${sold}% sold` }));
  });
  const stop = $("plan-stop").value.trim();
  const trailing = $("plan-trailing").value.trim();
  rows.push(h("tr", {}, h("td", { text: "SL" }), h("td", { text: `entry -${stop || "?"}%` }), h("td", { text: "sell the rest" }), h("td", { text: "" })));
  if (trailing) rows.push(h("tr", {}, h("td", { text: "Trail" }), h("td", { text: `peak -${trailing}%` }), h("td", { text: "sell the rest" }), h("td", { text: "" })));
  fill("plan-ladder", table("The exit ladder", ["Step", "Price", "Action", "Sold so far"], rows));
}

function editPlan(strategy) {
  $("plan-name").value = strategy.preset ? `my-${strategy.name}` : strategy.name;
  fill("plan-levels");
  for (const level of strategy.take_profits) $("plan-levels").append(levelRow(level));
  $("plan-stop").value = strategy.stop_loss_percent;
  $("plan-trailing").value = strategy.trailing_stop_percent || "";
  $("plan-hold").value = strategy.max_hold_seconds || "";
  renderLadder();
  $("plan-name").focus();
}

async function savePlan(event) {
  event.preventDefault();
  const name = $("plan-name").value.trim();
  const hold = $("plan-hold").value.trim();
  const body = {
    take_profits: planLevels(), stop_loss_percent: $("plan-stop").value.trim(),
    trailing_stop_percent: $("plan-trailing").value.trim() || null,
    max_hold_seconds: hold ? Number(hold) : null,
  };
  await attempt(async () => {
    if (!/^[a-z0-9][a-z0-9_-]{0,39}$/.test(name)) throw new ApiError(400, "name: lower case letters, digits, - and _ (at most 40)");
    await api(`/api/v1/exit-strategies/${name}`, { method: "PUT", body });
    notify(`Exit plan ${name} saved.`);
    await loadStrategies();
  }, "plan-error");
}

async function deletePlan(name) {
  const answer = await confirmAction(`Delete the exit plan ${name}?`, { yes: "Delete" });
  if (!answer) return;
  await attempt(async () => {
    await api(`/api/v1/exit-strategies/${name}`, { method: "DELETE" });
    notify(`Exit plan ${name} deleted.`);
    await loadStrategies();
  }, "plan-error");
}

async function loadStrategies() {
  state.strategies = await api("/api/v1/exit-strategies");
  renderStrategies();
  renderSettings();
}

async function loadCredentials() {
  try {
    const c = await api("/api/v1/credentials");
    $("cred-summary").textContent = `Stored: key ${c.api_key_hint} (stored ${when(c.stored_at)}, updated ${when(c.updated_at)}).`;
  } catch (error) {
    $("cred-summary").textContent = error instanceof ApiError && error.status === 404 ? "No MEXC keys stored." : problem(error);
  }
}

async function storeCredentials(event) {
  event.preventDefault();
  const body = { api_key: $("cred-key").value.trim(), secret_key: $("cred-secret").value };
  await attempt(async () => {
    const c = await api("/api/v1/credentials", { method: "PUT", body });
    $("cred-key").value = "";
    $("cred-secret").value = "";
    notify(`Keys stored: ${c.api_key_hint}.`);
    await loadCredentials();
  }, "cred-error");
}

async function testCredentials() {
  await attempt(async () => {
    const result = await api("/api/v1/credentials/test", { method: "POST" });
    notify(`${result.ok ? "Keys work" : "Keys refused"}${result.can_trade ? " and may trade" : ""}: ${result.detail}`, !result.ok);
  }, "cred-error");
}

async function deleteCredentials() {
  const answer = await confirmAction("Delete the stored MEXC keys?", { yes: "Delete the keys" });
  if (!answer) return;
  await attempt(async () => {
    await api("/api/v1/credentials", { method: "DELETE" });
    notify("Keys deleted.");
    await loadCredentials();
  }, "cred-error");
}

// --- notifications and Telegram ----------------------------------------------------------

// Each channel: what its address is, and what its write-only secret is (null: it takes none).
const CHANNELS = [
  { kind: "telegram", name: "Telegram", address: "Chat id (digits, may start with -) or @channel", secret: null },
  { kind: "discord", name: "Discord", address: null, secret: "Discord webhook URL (https://…)" },
  { kind: "slack", name: "Slack", address: null, secret: "Slack webhook URL (https://…)" },
  { kind: "email", name: "E-mail", address: "E-mail address",
    secret: "Your own SMTP URL (optional; smtp://user:password@host:port)" },
  { kind: "webhook", name: "Webhook", address: "Webhook URL (http:// or https://)",
    secret: "HMAC secret the webhook's messages are signed with" },
];
const KIND_LABELS = {
  target_created: "Target created", snipe_scheduled: "Snipe scheduled",
  snipe_filled: "Snipe filled", snipe_failed: "Snipe failed or refused", exit: "Each exit",
  position_closed: "Position closed", emergency_stop: "Emergency stop on and off", daily_summary: "Daily summary",
};
const MODES = [["on", "on"], ["silent", "silent"], ["off", "off"]];

function channelFieldset(spec, stored) {
  const id = (what) => `notify-${spec.kind}-${what}`;
  const secretState = stored && stored.secret_set ? "set" : "not set";
  return h("fieldset", { class: "channel", dataset: { channel: spec.kind } },
    h("legend", { text: spec.name }),
    h("label", { class: "check" },
      h("input", { type: "checkbox", id: id("enabled"), checked: Boolean(stored && stored.enabled) }),
      ` Send to ${spec.name}`),
    spec.address ? [
      h("label", { for: id("address"), text: `${spec.name}: ${spec.address}` }),
      h("input", { id: id("address"), value: stored ? stored.address : "", autocomplete: "off", spellcheck: "false" }),
    ] : null,
    spec.secret ? [
      h("label", { for: id("secret"), text: `${spec.name}: ${spec.secret}` }),
      h("input", { id: id("secret"), type: "password", autocomplete: "new-password", spellcheck: "false",
                   placeholder: stored && stored.secret_set ? "set (empty: keep it)" : "" }),
      h("p", { class: "small secret-state", id: id("secret-state"), text: `Stored secret: ${secretState}` }),
    ] : null,
    stored ? h("label", { class: "check" },
      h("input", { type: "checkbox", id: id("remove") }), ` Remove the ${spec.name} channel${spec.secret ? " and its secret" : ""}`) : null);
}

// Drawn afresh from what the API answered (after a load or a save: nothing typed is kept, so a
// secret typed in never stays in its field).
function renderNotifications(settings) {
  state.notifications = settings;
  clean($("notify-form"));
  const byKind = new Map(settings.channels.map((c) => [c.kind, c]));
  fill("notify-channels", CHANNELS.map((spec) => channelFieldset(spec, byKind.get(spec.kind))));
  const kinds = Object.keys(settings.kinds).length ? Object.keys(settings.kinds) : Object.keys(KIND_LABELS);
  const legend = $("notify-kinds").querySelector("legend");
  // Without a time there is no daily summary whatever its switch says: it shows what it will be once one is set.
  const modeOf = (kind) => (kind === "daily_summary" && !settings.daily_summary_at && settings.kinds[kind] === "off" ? "on" : settings.kinds[kind]);
  fill("notify-kinds", legend, kinds.map((kind) => h("div", { class: "row compact kind" },
    h("label", { for: `notify-kind-${kind}`, text: KIND_LABELS[kind] || kind }),
    h("select", { id: `notify-kind-${kind}`, dataset: { kind } },
      MODES.map(([value, text]) => h("option", { value, text, selected: modeOf(kind) === value }))))));
  $("notify-daily-at").value = settings.daily_summary_at || "";
}

async function loadNotifications() {
  renderNotifications(await api("/api/v1/notifications"));
  await loadUndelivered();
}

async function saveNotifications(event) {
  event.preventDefault();
  const stored = new Map(((state.notifications && state.notifications.channels) || []).map((c) => [c.kind, c]));
  const channels = [];
  for (const spec of CHANNELS) {
    const value = (what) => ($(`notify-${spec.kind}-${what}`) ? $(`notify-${spec.kind}-${what}`).value.trim() : "");
    const removed = $(`notify-${spec.kind}-remove`) && $(`notify-${spec.kind}-remove`).checked;
    const enabled = $(`notify-${spec.kind}-enabled`).checked;
    const address = value("address");
    const secret = value("secret");
    // PUT replaces the whole: a channel stored or filled in is sent, unless asked to be removed.
    if (removed || !(stored.has(spec.kind) || enabled || address || secret)) continue;
    const channel = { kind: spec.kind, enabled, address };
    if (secret) channel.secret = secret; // left out: the stored secret is kept
    channels.push(channel);
  }
  const at = $("notify-daily-at").value.trim();
  const kinds = {};
  for (const select of $("notify-kinds").querySelectorAll("select[data-kind]")) {
    if (select.dataset.kind === "daily_summary" && !at) continue; // no time: no summary
    kinds[select.dataset.kind] = select.value;
  }
  await attempt(async () => {
    renderNotifications(await api("/api/v1/notifications", { method: "PUT", body: { kinds, channels, daily_summary_at: at || null } }));
    notify("Notification settings saved.");
  }, "notify-error");
}

async function loadUndelivered() {
  const messages = await api("/api/v1/notifications/undelivered?limit=50");
  fill("undelivered", messages.length
    ? table("Messages that could not be delivered after their retries, newest first",
        ["Queued", "Channel", "Kind", "Message", "Attempts", "Last error"],
        messages.map((m) => h("tr", { dataset: { undelivered: m.id } },
          h("td", { text: when(m.queued_at) }), h("td", { text: m.channel }), h("td", { text: KIND_LABELS[m.kind] || m.kind }),
          h("td", { class: "wrap" }, h("strong", { text: m.title }), h("br"), m.text),
          h("td", { class: "num", text: m.attempts }), h("td", { class: "wrap", text: m.error || "–" }))),
        { id: "undelivered-table" })
    : h("p", { text: "Every message was delivered." }));
}

async function linkTelegram() {
  await attempt(async () => {
    const link = await api("/api/v1/telegram/link", { method: "POST" });
    const bot = link.bot || "the deployment's bot";
    fill("telegram-code",
      h("p", {}, "Send ", h("code", { id: "telegram-command", text: `/link ${link.code}` }), ` to ${bot} in Telegram.`),
      h("dl", { class: "figures" },
        h("dt", { text: "Code" }), h("dd", { id: "telegram-link-code", class: "code", text: link.code }),
        h("dt", { text: "Bot" }), h("dd", { id: "telegram-bot", text: bot }),
        h("dt", { text: "Expires" }), h("dd", { id: "telegram-expires", text: `${when(link.expires_at)} (single use)` })));
  }, "telegram-error");
}

async function unlinkTelegram() {
  const answer = await confirmAction("Unlink your Telegram chats? The bot will obey them no more.", { yes: "Unlink" });
  if (!answer) return;
  await attempt(async () => {
    await api("/api/v1/telegram/link", { method: "DELETE" });
    fill("telegram-code");
    notify("Telegram unlinked: the bot obeys your chats no more.");
    await loadNotifications();
  }, "telegram-error");
}

// --- backtests ---------------------------------------------------------------------------

async function runBacktest(event) {
  event.preventDefault();
  $("backtest-error").textContent = "";
  fill("backtest-table", h("p", { text: "Running…" }));
  const report = await attempt(() => api("/api/v1/backtests", { method: "POST", body: { fee_rate: $("backtest-fee").value.trim() } }), "backtest-error");
  if (!report) {
    fill("backtest-table");
    return;
  }
  fill("backtest-table", table(`Per strategy, over ${report.listings} listings`,
    ["Strategy", "Trades", "Win rate", "Total P&L", "Average", "Max drawdown", "Average hold"],
    report.strategies.map((s) => h("tr", {}, h("td", { text: s.name }), h("td", { class: "num", text: s.trades }),
      h("td", { class: "num", text: s.win_rate ?? "–" }), h("td", { class: "num" }, signed(s.total_pnl)),
      h("td", { class: "num", text: quote(s.average_pnl) }), h("td", { class: "num", text: quote(s.max_drawdown) }),
      h("td", { class: "num", text: s.average_hold ?? "–" })))));
  fill("backtest-chart", lineChart({
    title: "Equity by strategy", description: "Cumulative P&L after each listing, one line per strategy.",
    series: report.strategies.map((s, i) => ({ name: s.name, kind: `s${i % 6}`, points: s.equity.map((y, x) => [x + 1, Number(y)]) })),
    xTime: false,
  }), h("ul", { class: "legend" }, report.strategies.map((s, i) => h("li", { class: `s${i % 6}`, text: s.name }))));
}

// --- loading and live updates ------------------------------------------------------------

// One refresh at a time (a slower, older one must not overwrite a newer one's answers); asked
// again while one runs, another follows it.
async function refreshAll() {
  if (state.refreshing) {
    state.refreshAgain = true;
    return;
  }
  state.refreshing = true;
  state.lastRefresh = Date.now();
  try {
    await attempt(async () => {
      await loadStop();
      if (!state.settings) state.settings = await api("/api/v1/settings");
      if (!state.strategies.length) await loadStrategies();
      await loadOverview();
      await loadTargets();
      await loadPositions();
      if (!$("history").hidden) await loadAudit();
    });
  } finally {
    state.refreshing = false;
  }
  // The read models follow the event log a little behind the live stream: until they have caught
  // up with the last event the stream brought, ask again.
  const seen = state.stream ? state.stream.after : null;
  const behind = seen !== null && state.portfolio && state.portfolio.as_of_position < seen && (state.behindTries = (state.behindTries || 0) + 1) < 100;
  if (!behind) state.behindTries = 0;
  if (state.refreshAgain || behind) {
    state.refreshAgain = false;
    scheduleRefresh(behind ? 300 : 150);
  }
}

// At most one refresh a second (a refresh is about a dozen requests; the API allows each user
// SNIPER_RATE_LIMIT_PER_MINUTE, 600 by default), however fast the events come.
function scheduleRefresh(delay = 150) {
  clearTimeout(state.refreshTimer);
  const wait = Math.max(delay, 1000 - (Date.now() - (state.lastRefresh || 0)));
  state.refreshTimer = setTimeout(refreshAll, wait);
}

function noteSkew(key, skew) {
  state.skews.set(key, Math.min(state.skews.get(key) ?? Infinity, skew));
}

// How far behind this browser's clock the position's events are stamped (0 until one came live).
function skewOf(position) {
  return state.skews.get(position.position_id) ?? state.skews.get(`target:${position.target_id}`) ?? 0;
}

function onEvent(event) {
  const occurred = event ? Date.parse(event.occurred_at) : NaN;
  if (Number.isFinite(occurred) && event.data) {
    if (event.data.position_id) noteSkew(event.data.position_id, Date.now() - occurred);
    if (event.data.target_id) noteSkew(`target:${event.data.target_id}`, Date.now() - occurred);
  }
  if (event && event.type === "EmergencyStopActivated") state.stopInfo = { since: event.occurred_at, by: event.data.activated_by };
  if (event && (event.type === "TraderSettingsChanged")) state.settings = null;
  if (event && (event.type === "ExitStrategySaved" || event.type === "ExitStrategyDeleted")) state.strategies = [];
  if (event && event.type.startsWith("Credentials")) loadCredentials();
  if (event && event.type === "NotificationSettingsChanged" && !$("notify-form").querySelector("[data-dirty]")) {
    attempt(loadNotifications, "notify-error");
  }
  scheduleRefresh();
}

function onStreamState(text) {
  const node = $("live-state");
  node.textContent = { live: "live", reconnecting: "reconnecting…", refused: "stream refused: sign in again" }[text] || text;
  node.className = `live ${text}`;
}

async function signIn(token) {
  saveToken(token);
  let me;
  try {
    me = await api("/api/v1/me");
  } catch (error) {
    forgetToken();
    $("sign-in-error").textContent = error instanceof ApiError && error.status === 401 ? "That token was refused." : problem(error);
    return false;
  }
  state.me = me;
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = `Signed in as ${me.user_id}${me.email ? ` (${me.email})` : ""}`;
  $("dev-banner").hidden = !me.development;
  $("dev-user").textContent = me.user_id;
  document.body.classList.toggle("development", me.development);
  show(currentSection());
  state.stream = new LiveStream(onEvent, onStreamState);
  state.stream.open();
  await Promise.all([refreshAll(), loadCredentials(), attempt(loadNotifications, "notify-error")]);
  return true;
}

function signOut() {
  if (state.stream) state.stream.close();
  forgetToken();
  location.hash = "";
  location.reload();
}

function wire() {
  for (const kind of ["input", "change"]) {
    document.addEventListener(kind, (event) => {
      if (event.target.matches("input, select")) event.target.dataset.dirty = "1";
    });
  }
  $("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    await signIn($("token-input").value.trim());
  });
  $("sign-out").addEventListener("click", signOut);
  // A sign-in started here: only its return may bring a token in the address (see start()).
  $("kinde-sign-in").addEventListener("click", () => sessionStorage.setItem(SIGN_IN_STARTED, "1"));
  $("stop-press").addEventListener("click", pressStop);
  $("stop-clear").addEventListener("click", clearStop);
  $("timeline-form").addEventListener("submit", showTimeline);
  $("audit-first").addEventListener("click", () => { state.auditCursors = [null]; attempt(loadAudit); });
  $("audit-next").addEventListener("click", () => {
    const next = state.auditPage && state.auditPage.next;
    if (next) { state.auditCursors.push(next); attempt(loadAudit); }
  });
  $("audit-prev").addEventListener("click", () => {
    if (state.auditCursors.length > 1) { state.auditCursors.pop(); attempt(loadAudit); }
  });
  $("settings-form").addEventListener("submit", saveSettings);
  $("plan-form").addEventListener("submit", savePlan);
  $("plan-add-level").addEventListener("click", () => { $("plan-levels").append(levelRow()); renderLadder(); });
  for (const id of ["plan-stop", "plan-trailing"]) $(id).addEventListener("input", renderLadder);
  $("cred-form").addEventListener("submit", storeCredentials);
  $("cred-test").addEventListener("click", testCredentials);
  $("cred-delete").addEventListener("click", deleteCredentials);
  $("notify-form").addEventListener("submit", saveNotifications);
  $("undelivered-reload").addEventListener("click", () => attempt(loadUndelivered, "notify-error"));
  $("telegram-link").addEventListener("click", linkTelegram);
  $("telegram-unlink").addEventListener("click", unlinkTelegram);
  $("backtest-form").addEventListener("submit", runBacktest);
  window.addEventListener("hashchange", () => {
    if (!state.me) return;
    show(currentSection(), true);
    if (currentSection() === "history") attempt(loadAudit);
  });
  setInterval(tickCountdowns, 1000);
  // Prices move without events: the open positions' current price is asked again every 15 s.
  setInterval(() => {
    if (state.me && state.portfolio && state.portfolio.open_positions > 0) scheduleRefresh();
  }, 15000);
  $("plan-levels").append(levelRow({ gain_percent: "20", sell_percent: "50" }));
  $("plan-stop").value = "10";
  renderLadder();
}

const SIGN_IN_STARTED = "sniper.sign-in-started";

async function start() {
  wire();
  // Back from the browser sign-in: the token arrives in the fragment, which no server sees; it is
  // moved to this tab's storage and the address cleaned.
  // Only a sign-in started in this tab is taken: a link carrying someone else's token would sign
  // this tab in as them (their account then receiving what is typed here, such as MEXC keys).
  const fragment = new URLSearchParams(location.hash.slice(1));
  let arrived = fragment.get("access_token");
  if (arrived) history.replaceState(null, "", location.pathname);
  const started = sessionStorage.getItem(SIGN_IN_STARTED) === "1";
  sessionStorage.removeItem(SIGN_IN_STARTED);
  if (arrived && !started) {
    arrived = null;
    $("sign-in-error").textContent = "A sign-in this tab did not start was ignored: sign in again.";
  }
  const token = arrived || savedToken();
  if (token) await signIn(token);
}

start();
