"use strict";
// The explainer page's script: reads the numbers minicnn.explain put in the page and draws them.
// Plain JavaScript, no library. Arrays are channels-last, as in minicnn: a (H, W, C) map keeps
// x[i, j, c] at data[(i * W + j) * C + c]. Sums are taken in float64 (JavaScript's numbers).

const DATA = JSON.parse(document.getElementById("explain-data").textContent);

async function decode(a) {
  // {shape, gz} -> {shape, data: Float32Array}: the float32 bytes minicnn wrote, gzipped, in base64
  if (!a) return null;
  const bytes = Uint8Array.from(atob(a.gz), ch => ch.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return { shape: a.shape, data: new Float32Array(await new Response(stream).arrayBuffer()) };
}

async function decodeLayer(l) {
  const grads = await Promise.all(Object.entries(l.grad_in).map(async ([c, g]) => [c, await decode(g)]));
  return { ...l, output: await decode(l.output), W: await decode(l.W), b: await decode(l.b),
           grad_in: Object.fromEntries(grads) };
}

let INPUT, LAYERS, LOSS_GRAD;  // the decoded arrays, once main() has run
const state = { layer: 0, cls: String(DATA.classes.includes(DATA.predicted) ? DATA.predicted : DATA.classes[0]),
                unit: null };

// ---- small helpers ----
const fmt = v => (v === null || v === undefined) ? "–" : Number(v).toPrecision(4);
const el = (tag, attrs = {}, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};
const numCell = (v, name) => el("td", { "data-name": name, "data-value": String(v) }, fmt(v));
const shapeText = s => "(" + s.join(", ") + ")";

function layerInput(L) { return L === 0 ? INPUT : LAYERS[L - 1].output; }

function gradAtOutput(L) {
  // dL/d(layer L's output) for the chosen class: the next layer's gradient at its input; for the
  // last layer the loss's gradient, or none where softmax and cross-entropy meet at the logits.
  return L + 1 < LAYERS.length ? LAYERS[L + 1].grad_in[state.cls] : LOSS_GRAD[state.cls] || null;
}

// A tensor as 2-D pictures: (H, W, C) gives C maps of H x W; a vector of n values one map of
// about sqrt(n) x sqrt(n) cells, laid row by row.
function planes(t) {
  if (t.shape.length === 3) return { H: t.shape[0], W: t.shape[1], C: t.shape[2] };
  const n = t.data.length, cols = n > 16 ? Math.ceil(Math.sqrt(n)) : n;
  return { H: Math.ceil(n / cols), W: cols, C: 1, flat: n };
}

function valueAt(t, p, i, j, c) {
  if (p.flat !== undefined) { const k = i * p.W + j; return k < p.flat ? t.data[k] : null; }
  return t.data[(i * p.W + j) * p.C + c];
}

function zoomFor(p) {
  // about 112 screen pixels a map when there are few, 64 when there are many
  return Math.max(2, Math.floor((p.C > 16 ? 64 : 112) / Math.max(p.H, p.W)));
}

function paint(canvas, t, p, c, colour, scale) {
  // One map on a canvas of H x W pixels; CSS makes each pixel zoom x zoom screen pixels.
  canvas.width = p.W; canvas.height = p.H;
  const img = canvas.getContext("2d").createImageData(p.W, p.H);
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < p.H; i++) for (let j = 0; j < p.W; j++) {
    const v = valueAt(t, p, i, j, c);
    if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  }
  for (let i = 0; i < p.H; i++) for (let j = 0; j < p.W; j++) {
    const v = valueAt(t, p, i, j, c), o = 4 * (i * p.W + j);
    let rgb = [238, 238, 238];
    if (v !== null) rgb = colour === "grey" ? grey(v, lo, hi) : diverging(v, scale);
    img.data.set([...rgb, 255], o);
  }
  canvas.getContext("2d").putImageData(img, 0, 0);
}

function grey(v, lo, hi) { const g = hi > lo ? Math.round(255 * (v - lo) / (hi - lo)) : 0; return [g, g, g]; }

function diverging(v, scale) {
  const s = scale > 0 ? Math.min(1, Math.abs(v) / scale) : 0, fade = Math.round(255 * (1 - s));
  return v >= 0 ? [255, fade, fade] : [fade, fade, 255];
}

function maxAbs(t) { let m = 0; for (const v of t.data) m = Math.max(m, Math.abs(v)); return m; }

function clickedCell(canvas, ev, zoom) {
  const r = canvas.getBoundingClientRect();
  return [Math.floor((ev.clientY - r.top - canvas.clientTop) / zoom),
          Math.floor((ev.clientX - r.left - canvas.clientLeft) / zoom)];
}

// ---- the header and the network column ----
function drawHeader() {
  const top = DATA.probabilities.map((p, k) => [p, k]).sort((a, b) => b[0] - a[0]).slice(0, 3);
  const shown = ([p, k]) => `${DATA.class_names[k]} ` + (DATA.are_probabilities ? `${(100 * p).toFixed(1)}%` : fmt(p));
  document.getElementById("prediction").textContent = "prediction: " + top.map(shown).join(", ");
  const select = document.getElementById("class-select");
  for (const k of DATA.classes) {
    const o = el("option", { value: String(k) }, DATA.class_names[k] + (k === DATA.predicted ? " (predicted)" : ""));
    select.appendChild(o);
  }
  select.value = state.cls;
  select.addEventListener("change", () => { state.cls = select.value; drawAll(); });
  document.getElementById("note").textContent = DATA.note;
}

function drawNetwork() {
  const nav = document.getElementById("network");
  nav.replaceChildren(el("p", {}, "input " + shapeText(INPUT.shape)));
  LAYERS.forEach((l, L) => {
    const b = el("button", { "data-layer": String(L) }, `${l.name} (${l.type})`);
    b.appendChild(el("small", {}, "→ " + shapeText(l.output_shape)));
    if (L === state.layer) b.classList.add("selected");
    b.addEventListener("click", () => { state.layer = L; state.unit = null; drawAll(); });
    nav.appendChild(b);
  });
}

// ---- the chosen layer: formulas, feature maps, gradient maps ----
function drawLayer() {
  const l = LAYERS[state.layer];
  document.getElementById("layer-title").textContent =
    `${l.name} (${l.type}${l.activation ? ", " + l.activation : ""}): ${shapeText(l.input_shape)} → ${shapeText(l.output_shape)}`;
  const f = document.getElementById("formulas");
  f.replaceChildren(el("p", {}, "forward: " + l.formula.forward), el("p", {}, "backward: " + l.formula.backward));
  const code = el("p", {}, "code: ");
  l.source.forEach((s, k) => {
    if (k) code.append(", ");
    code.appendChild(el("a", { href: s.href, title: s.where, target: "_blank" }, s.label));
  });
  f.appendChild(code);
  drawMaps(document.getElementById("maps"), l.output, "grey", null);
  const g = gradAtOutput(state.layer);
  const grads = document.getElementById("grads");
  if (g) drawMaps(grads, g, "diverging", maxAbs(g));
  else grads.replaceChildren(el("p", {}, "The loss's gradient starts at the logits (the input of this softmax, " +
                                        "the previous layer's output): p − y, softmax and cross-entropy together."));
}

function drawMaps(box, t, colour, scale) {
  const p = planes(t), zoom = zoomFor(p);
  box.replaceChildren();
  for (let c = 0; c < p.C; c++) {
    const fig = el("figure"), canvas = el("canvas", { "data-channel": String(c) });
    paint(canvas, t, p, c, colour, scale);
    canvas.style.width = p.W * zoom + "px"; canvas.style.height = p.H * zoom + "px";
    canvas.addEventListener("click", ev => {
      const [i, j] = clickedCell(canvas, ev, zoom);
      if (p.flat !== undefined && i * p.W + j >= p.flat) return;
      state.unit = p.flat !== undefined ? { k: i * p.W + j } : { i, j, c };
      drawUnit(); drawInput();
    });
    fig.appendChild(canvas);
    if (p.C > 1) fig.appendChild(el("figcaption", {}, String(c)));
    box.appendChild(fig);
  }
}

// ---- the input, the receptive field and the saliency map ----
function receptiveField(L, unit) {
  // Rows and columns of the input that reach unit (i, j) of layer L: each window layer widens
  // the range by its kernel and multiplies it by its strides, on the way back to the input.
  let [r0, r1, c0, c1] = [unit.i, unit.i, unit.j, unit.j];
  for (let k = L; k >= 0; k--) {
    const g = LAYERS[k].geometry;
    if (!g) { if (LAYERS[k].output.shape.length !== 3) return null; continue; }
    const [KH, KW] = g.kernel, [SH, SW] = g.strides, [DH, DW] = g.dilation, [top, left] = g.pads;
    [r0, r1] = [r0 * SH - top, r1 * SH - top + DH * (KH - 1)];
    [c0, c1] = [c0 * SW - left, c1 * SW - left + DW * (KW - 1)];
  }
  return [r0, r1, c0, c1];
}

function drawInput() {
  const p = planes(INPUT), zoom = Math.max(2, Math.floor(192 / Math.max(p.H, p.W)));
  const canvas = document.getElementById("input-canvas");
  canvas.width = p.W * zoom; canvas.height = p.H * zoom;
  const ctx = canvas.getContext("2d");
  const channels = p.C === 3 ? [0, 1, 2] : [0, 0, 0];  // colour, or the first channel in grey; values in [0, 1]
  for (let i = 0; i < p.H; i++) for (let j = 0; j < p.W; j++) {
    const rgb = channels.map(c => Math.round(255 * Math.min(1, Math.max(0, valueAt(INPUT, p, i, j, c)))));
    ctx.fillStyle = `rgb(${rgb.join(",")})`;
    ctx.fillRect(j * zoom, i * zoom, zoom, zoom);
  }
  const u = state.unit;
  if (u && u.i !== undefined) {
    const rf = receptiveField(state.layer, u);
    if (rf) {
      const [r0, r1, c0, c1] = [Math.max(0, rf[0]), Math.min(p.H - 1, rf[1]), Math.max(0, rf[2]), Math.min(p.W - 1, rf[3])];
      ctx.strokeStyle = "#ff1744"; ctx.lineWidth = 2;
      ctx.strokeRect(c0 * zoom + 1, r0 * zoom + 1, (c1 - c0 + 1) * zoom - 2, (r1 - r0 + 1) * zoom - 2);
      canvas.dataset.field = [r0, r1, c0, c1].join(",");
    }
  } else delete canvas.dataset.field;
  // saliency: |dL/dx|, the largest over the channels, on one scale from 0 to its maximum
  const sal = LAYERS[0].grad_in[state.cls], s = document.getElementById("saliency-canvas");
  s.width = p.W * zoom; s.height = p.H * zoom;
  const m = maxAbs(sal), sctx = s.getContext("2d");
  for (let i = 0; i < p.H; i++) for (let j = 0; j < p.W; j++) {
    let v = 0;
    for (let c = 0; c < p.C; c++) v = Math.max(v, Math.abs(valueAt(sal, p, i, j, c)));
    const fade = Math.round(255 * (1 - (m > 0 ? v / m : 0)));
    sctx.fillStyle = `rgb(255,${fade},${fade})`;
    sctx.fillRect(j * zoom, i * zoom, zoom, zoom);
  }
}

// ---- the clicked unit ----
function drawUnit() {
  const box = document.getElementById("unit-detail"), u = state.unit, L = state.layer, l = LAYERS[L];
  box.replaceChildren();
  if (!u) { box.appendChild(el("p", {}, "Click a unit of a feature map.")); return; }
  const p = planes(l.output);
  const value = u.k !== undefined ? l.output.data[u.k] : valueAt(l.output, p, u.i, u.j, u.c);
  const where = u.k !== undefined ? `[${u.k}]` : `[${u.i}, ${u.j}, ${u.c}]`;
  const head = el("p", {}, `${l.name}${where} = `);
  head.appendChild(el("span", { id: "unit-value", class: "num", "data-value": String(value) }, fmt(value)));
  const g = gradAtOutput(L);
  if (g) {
    const gv = u.k !== undefined ? g.data[u.k] : valueAt(g, planes(g), u.i, u.j, u.c);
    head.append(`;  dL/dy for ${DATA.class_names[state.cls]} = `);
    head.appendChild(el("span", { id: "unit-grad", class: "num", "data-value": String(gv) }, fmt(gv)));
  }
  box.appendChild(head);
  if (l.type === "Conv2D") convDetail(box, L, u);
  else if (l.type === "MaxPooling2D" || l.type === "AveragePooling2D") poolDetail(box, L, u);
  else if (l.type === "Dense") denseDetail(box, L, u);
  else if (l.type === "Flatten") {
    const s = LAYERS[L].input_shape, k = u.k, c = k % s[2], j = Math.floor(k / s[2]) % s[1], i = Math.floor(k / (s[1] * s[2]));
    box.appendChild(el("p", {}, `= the input's [${i}, ${j}, ${c}]: Flatten reads (H, W, C) row by row.`));
  } else if (l.type === "Activation") {
    const x = layerInput(L), xv = u.k !== undefined ? x.data[u.k] : valueAt(x, planes(x), u.i, u.j, u.c);
    box.appendChild(el("p", {}, `= ${l.activation}(${fmt(xv)}), the input at the same place.`));
  }
}

function convDetail(box, L, u) {
  // The multiply-adds of one output: y[i, j, f] = b[f] + Σ x[i·SH + kh·DH − top, j·SW + kw·DW − left, c] · W[kh, kw, c, f],
  // beside the weight gradient of the clicked filter f for the chosen class.
  const l = LAYERS[L], x = layerInput(L), [H, Wd, C] = x.shape, F = l.W.shape[3];
  const [KH, KW] = l.geometry.kernel, [SH, SW] = l.geometry.strides, [DH, DW] = l.geometry.dilation;
  const [top, left] = l.geometry.pads, f = u.c;
  let dy = gradAtOutput(L);
  if (dy && l.activation) dy = preActivation(l, dy);
  const [OH, OW] = [l.output.shape[0], l.output.shape[1]];
  const table = el("table", { id: "macs" });
  const heads = ["kh, kw, c", "x", "W", "x·W", "dL/dW"];
  table.appendChild(el("tr")).append(...heads.map(h => el("th", {}, h)));
  let sum = 0;
  for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) for (let c = 0; c < C; c++) {
    const r = u.i * SH + kh * DH - top, q = u.j * SW + kw * DW - left;
    const xv = (r >= 0 && r < H && q >= 0 && q < Wd) ? x.data[(r * Wd + q) * C + c] : 0;  // padding reads 0
    const w = l.W.data[((kh * KW + kw) * C + c) * F + f];
    sum += xv * w;
    let dw = null;
    if (dy) {  // dW[kh, kw, c, f] = Σ_{i, j} x[i·SH + kh·DH − top, j·SW + kw·DW − left, c] · dy[i, j, f]
      dw = 0;
      for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
        const rr = i * SH + kh * DH - top, qq = j * SW + kw * DW - left;
        if (rr >= 0 && rr < H && qq >= 0 && qq < Wd) dw += x.data[(rr * Wd + qq) * C + c] * dy.data[(i * OW + j) * F + f];
      }
    }
    const tr = el("tr", { "data-kh": String(kh), "data-kw": String(kw), "data-c": String(c) });
    tr.append(el("td", {}, `${kh}, ${kw}, ${c}`), numCell(xv, "x"), numCell(w, "w"), numCell(xv * w, "xw"), numCell(dw, "dw"));
    table.appendChild(tr);
  }
  const bias = l.b ? l.b.data[f] : 0;
  box.appendChild(el("p", {}, `The window of the layer's input (rows from ${u.i * SH - top}, columns from ${u.j * SW - left}), ` +
                             `times the kernel slice W[:, :, :, ${f}], summed (${KH * KW * C} multiply-adds):`));
  const wrap = el("div", { class: "scroll" }); wrap.appendChild(table); box.appendChild(wrap);
  const total = el("p", {}, "Σ x·W = ");
  total.appendChild(el("span", { id: "unit-sum", class: "num", "data-value": String(sum) }, fmt(sum)));
  total.append(`;  + b[${f}] = ${fmt(bias)} gives `);
  total.appendChild(el("span", { id: "unit-z", class: "num", "data-value": String(sum + bias) }, fmt(sum + bias)));
  box.appendChild(total);
  if (l.activation) box.appendChild(el("p", {}, `then ${l.activation}: the value above.`));
  const next = LAYERS[L + 1];
  if (next && next.type === "Activation") {
    const a = valueAt(next.output, planes(next.output), u.i, u.j, u.c);
    box.appendChild(el("p", {}, `Its activation, ${next.name} (${next.activation}), makes it ${fmt(a)}.`));
  }
  if (dy) {
    let db = 0;
    for (let i = 0; i < OH * OW; i++) db += dy.data[i * F + f];
    box.appendChild(el("p", {}, `dL/db[${f}] = Σ dy[:, :, ${f}] = ${fmt(db)} for ${DATA.class_names[state.cls]}.`));
  }
}

function preActivation(l, dy) {
  // A Conv2D with its own activation: dW needs the gradient before it. Only ReLU's is drawn here.
  if (l.activation !== "relu") return null;
  const d = new Float32Array(dy.data.length);
  for (let k = 0; k < d.length; k++) d[k] = l.output.data[k] > 0 ? dy.data[k] : 0;
  return { shape: dy.shape, data: d };
}

function poolDetail(box, L, u) {
  const l = LAYERS[L], x = layerInput(L), [H, Wd, C] = x.shape;
  const [KH, KW] = l.geometry.kernel, [SH, SW] = l.geometry.strides, [top, left] = l.geometry.pads;
  const table = el("table", { id: "pool" });
  table.appendChild(el("tr")).append(...["kh", "kw", "x"].map(h => el("th", {}, h)));
  let best = -Infinity, bestRow = null;
  for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
    const r = u.i * SH + kh - top, q = u.j * SW + kw - left;
    if (r < 0 || r >= H || q < 0 || q >= Wd) continue;  // padding never wins, nor counts in a mean
    const xv = x.data[(r * Wd + q) * C + u.c];
    const tr = el("tr", { "data-kh": String(kh), "data-kw": String(kw) });
    tr.append(el("td", {}, String(kh)), el("td", {}, String(kw)), numCell(xv, "x"));
    table.appendChild(tr);
    if (xv > best) { best = xv; bestRow = tr; }  // strictly greater: the first maximum wins, as in minicnn
  }
  if (l.type === "MaxPooling2D" && bestRow) {
    bestRow.classList.add("winner");
    box.appendChild(el("p", {}, "The window; the highlighted cell won, and in the backward pass it alone gets dy:"));
  } else box.appendChild(el("p", {}, "The window; its mean is the output, each cell gets dy / count back:"));
  box.appendChild(table);
}

function denseDetail(box, L, u) {
  const l = LAYERS[L];
  box.appendChild(el("p", {}, `y[${u.k}] = b[${u.k}] + Σ_k x[k] · W[k, ${u.k}]; the inputs that contribute most:`));
  const table = el("table", { id: "dense" });
  table.appendChild(el("tr")).append(...["k", "x[k]", "W[k, u]", "x·W"].map(h => el("th", {}, h)));
  for (const [k, xv, w] of l.top[u.k]) {
    const tr = el("tr"); tr.append(el("td", {}, String(k)), numCell(xv, "x"), numCell(w, "w"), numCell(xv * w, "xw"));
    table.appendChild(tr);
  }
  box.appendChild(table);
  if (l.b) box.appendChild(el("p", {}, `b[${u.k}] = ${fmt(l.b.data[u.k])}`));
}

function drawAll() {
  drawNetwork(); drawLayer(); drawUnit(); drawInput();
  const loss = DATA.loss[state.cls];
  document.getElementById("loss").textContent = `loss for it: ${fmt(loss)}`;
}

async function main() {
  INPUT = await decode(DATA.input);
  LAYERS = await Promise.all(DATA.layers.map(decodeLayer));
  LOSS_GRAD = Object.fromEntries(await Promise.all(Object.entries(DATA.loss_grad).map(async ([c, g]) => [c, await decode(g)])));
  drawHeader();
  drawAll();
  window.explainer = { DATA, LAYERS, state, drawAll };  // for a look from the browser's console
  document.body.dataset.ready = "yes";  // drawn: what a test waits for
}

main().catch(e => { console.error(e); document.getElementById("note").textContent = "The page failed: " + e; });
