// Line charts drawn as SVG: no chart library, nothing loaded.

const NS = "http://www.w3.org/2000/svg";
const W = 640;
const H = 260;
const PAD = { left: 70, right: 90, top: 14, bottom: 28 };
let counter = 0;

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function short(value) {
  if (!Number.isFinite(value)) return "";
  const abs = Math.abs(value);
  if (abs !== 0 && abs < 0.001) return value.toPrecision(4);
  if (abs < 10) return value.toFixed(4).replace(/0+$/, "").replace(/\.$/, "");
  return value.toFixed(2);
}

// A time on the x axis, UTC: the time of day, with the date when the chart spans days.
function clock(ms, span) {
  const iso = new Date(ms).toISOString();
  return span >= 86_400_000 ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 19);
}

// series: [{name, kind, points: [[x ms | number, y]]}]; hlines: [{label, y, kind, text?}] (text: the
// value as shown, else y rounded);
// markers: [{x, y, label, kind}]. `xTime`: x values are epoch milliseconds.
export function lineChart({ title, description, series, hlines = [], markers = [], xTime = true }) {
  const id = `chart-${++counter}`;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}-t ${id}-d`, class: "chart" });
  svg.append(el("title", { id: `${id}-t` }, title), el("desc", { id: `${id}-d` }, description));
  const xs = [];
  const ys = [];
  for (const s of series) for (const [x, y] of s.points) { xs.push(x); ys.push(y); }
  for (const m of markers) { xs.push(m.x); ys.push(m.y); }
  for (const h of hlines) ys.push(h.y);
  if (!xs.length) {
    svg.append(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis" }, "no data yet"));
    return svg;
  }
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1000; x1 += 1000; }
  if (y0 === y1) { y0 -= Math.abs(y0) * 0.05 || 1; y1 += Math.abs(y1) * 0.05 || 1; }
  const margin = (y1 - y0) * 0.06;
  y0 -= margin;
  y1 += margin;
  const px = (x) => PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const py = (y) => H - PAD.bottom - ((y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);

  const axes = el("g", { class: "axis" });
  axes.append(el("line", { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom }));
  axes.append(el("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom }));
  for (const y of [y0 + margin, (y0 + y1) / 2, y1 - margin]) {
    axes.append(el("text", { x: PAD.left - 6, y: py(y) + 4, "text-anchor": "end" }, short(y)));
  }
  const fmtX = xTime ? (x) => clock(x, x1 - x0) : (x) => String(x);
  axes.append(el("text", { x: PAD.left, y: H - 8, "text-anchor": "start" }, fmtX(x0)));
  if (xTime) axes.append(el("text", { x: (PAD.left + W - PAD.right) / 2, y: H - 8, "text-anchor": "middle" }, "time (UTC)"));
  axes.append(el("text", { x: W - PAD.right, y: H - 8, "text-anchor": "end" }, fmtX(x1)));
  svg.append(axes);

  for (const h of hlines) {
    const g = el("g", { class: `hline ${h.kind || ""}` });
    g.append(el("line", { x1: PAD.left, y1: py(h.y), x2: W - PAD.right, y2: py(h.y) }));
    g.append(el("text", { x: W - PAD.right + 4, y: py(h.y) + 4 }, `${h.label} ${h.text ?? short(h.y)}`));
    svg.append(g);
  }
  for (const s of series) {
    if (!s.points.length) continue;
    const d = s.points.map(([x, y], i) => `${i ? "L" : "M"}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ");
    svg.append(el("path", { d, class: `series ${s.kind || ""}`, fill: "none" }));
  }
  for (const m of markers) {
    const g = el("g", { class: `marker ${m.kind || ""}` });
    g.append(el("circle", { cx: px(m.x), cy: py(m.y), r: 5 }));
    g.append(el("text", { x: px(m.x) + 7, y: py(m.y) - 7 }, m.label));
    svg.append(g);
  }
  return svg;
}
