// Small SVG charts drawn in the page: grouped bars, a histogram with quantile marks,
// horizontal bars. Colours come from classes in style.css; text goes in as textContent.

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function short(value) {
  if (value >= 1e9) return (value / 1e9).toFixed(1) + "G";
  if (value >= 1e6) return (value / 1e6).toFixed(1) + "M";
  if (value >= 1e4) return (value / 1e3).toFixed(0) + "k";
  return String(Math.round(value));
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function frame(width, height, title) {
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  root.append(svg("title", {}, title));
  return root;
}

function legend(root, series, x, y) {
  series.forEach((s, i) => {
    root.append(svg("rect", { x: x + i * 130, y, width: 10, height: 10, class: `bar ${s.cls}` }));
    root.append(svg("text", { x: x + i * 130 + 14, y: y + 9, class: "label" }, s.name));
  });
}

// labels: x categories; series: [{name, cls, values}] drawn side by side per category.
export function bars(title, labels, series, { height = 220 } = {}) {
  const width = 720, left = 48, right = 8, top = 24, bottom = 42;
  const root = frame(width, height, title);
  const peak = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const plotH = height - top - bottom, plotW = width - left - right;
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    root.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: "grid" }));
    root.append(svg("text", { x: left - 6, y: y + 4, class: "axis end" }, short((peak * i) / 4)));
  }
  const slot = plotW / Math.max(1, labels.length);
  const barW = Math.max(2, Math.min(28, (slot * 0.8) / series.length));
  labels.forEach((label, i) => {
    const start = left + i * slot + (slot - barW * series.length) / 2;
    series.forEach((s, j) => {
      const value = s.values[i] || 0;
      const h = (plotH * value) / peak;
      const bar = svg("rect", { x: start + j * barW, y: top + plotH - h, width: barW - 1,
                                height: Math.max(0, h), class: `bar ${s.cls}` });
      bar.append(svg("title", {}, `${label} · ${s.name}: ${value.toLocaleString("en")}`));
      root.append(bar);
    });
    if (labels.length <= 16 || i % Math.ceil(labels.length / 16) === 0) {
      root.append(svg("text", { x: left + i * slot + slot / 2, y: height - bottom + 14,
                                class: "axis middle" }, label));
    }
  });
  legend(root, series, left, height - 16);
  return root;
}

// buckets: [{label, low, high, count}]; marks: {p50, p95, p99} in seconds.
export function histogram(title, buckets, marks) {
  const width = 720, height = 240, left = 48, right = 8, top = 30, bottom = 40;
  const root = frame(width, height, title);
  const peak = niceMax(Math.max(0, ...buckets.map((b) => b.count)));
  const plotH = height - top - bottom, plotW = width - left - right;
  const slot = plotW / Math.max(1, buckets.length);
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    root.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: "grid" }));
    root.append(svg("text", { x: left - 6, y: y + 4, class: "axis end" }, short((peak * i) / 4)));
  }
  buckets.forEach((b, i) => {
    const h = (plotH * b.count) / peak;
    const bar = svg("rect", { x: left + i * slot + 2, y: top + plotH - h, width: slot - 4,
                              height: h, class: "bar time" });
    bar.append(svg("title", {}, `${b.label}: ${b.count.toLocaleString("en")}`));
    root.append(bar);
    root.append(svg("text", { x: left + i * slot + slot / 2, y: height - bottom + 14,
                              class: "axis middle" }, b.label));
  });
  // A quantile sits in the bucket that holds it, placed on a log scale inside the bucket.
  const place = (seconds) => {
    const i = buckets.findIndex((b) => b.high === null || seconds < b.high);
    if (i < 0) return left + plotW;
    const b = buckets[i];
    const low = Math.max(b.low, b.high === null ? b.low : b.high / 10, 1e-6);
    const high = b.high === null ? low * 10 : b.high;
    const within = Math.min(1, Math.max(0, Math.log(seconds / low) / Math.log(high / low)));
    return left + (i + within) * slot;
  };
  let row = 0;
  for (const [name, value] of Object.entries(marks)) {
    if (value === null || value === undefined) continue;
    const x = place(value);
    root.append(svg("line", { x1: x, x2: x, y1: top - 4, y2: top + plotH, class: `mark ${name}` }));
    const flip = x > width - right - 110; // near the right edge: the label goes left of its line
    root.append(svg("text", { x: flip ? x - 3 : x + 3, y: top + 8 + row * 12,
                              class: `label ${name}${flip ? " end" : ""}` },
                    `${name} ${(value * 1000).toPrecision(3)} ms`));
    row += 1;
  }
  return root;
}

// rows: [{label, value, note}] as horizontal bars, largest first as given.
export function hbars(title, rows, cls = "tokens-in") {
  const width = 720, rowH = 22, left = 150, right = 170;
  const height = Math.max(1, rows.length) * rowH + 8;
  const root = frame(width, height, title);
  const peak = Math.max(1, ...rows.map((r) => r.value));
  rows.forEach((r, i) => {
    const y = 4 + i * rowH;
    root.append(svg("text", { x: left - 8, y: y + 14, class: "label end" }, r.label));
    const w = ((width - left - right) * r.value) / peak;
    const bar = svg("rect", { x: left, y: y + 3, width: Math.max(1, w), height: rowH - 8,
                              class: `bar ${cls}` });
    bar.append(svg("title", {}, `${r.label}: ${r.note || r.value}`));
    root.append(bar);
    root.append(svg("text", { x: left + w + 6, y: y + 14, class: "label" },
                    r.note || r.value.toLocaleString("en")));
  });
  return root;
}
