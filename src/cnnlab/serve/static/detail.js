// Detail views with this image's real numbers (POST /api/detail): convolution (patch x kernel per channel,
// the sums, the bias, stepping across the map), ReLU (on a map or on a vector), max/average pooling, batch
// norm, flatten, fully connected, softmax, and a block's output map.
// The page does the arithmetic itself from the numbers it gets, and shows the network's own activation
// next to it: the two agree (tests/test_browser_explore.py checks it).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const t = (key, vars) => window.cnnlabI18n.t(key, vars);
  const d = { open: null, data: null, pos: 0, timer: null, getBlob: null, post: null, seq: 0 };
  const MAX_CHANNELS_SHOWN = 3; // channels drawn cell by cell; the rest are summed in one line each

  const fmt = (v, digits = 3) => (Number.isInteger(v) ? String(v) : v.toFixed(digits));
  // exp and probabilities span many orders of magnitude: tiny ones in scientific notation, not "0.0000"
  const fmtWide = (v) => (v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential(2) : fmt(v, 4));
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  function grid(rows, classOf = () => "") {
    const g = el("div", "grid num");
    g.style.gridTemplateColumns = `repeat(${rows[0].length}, auto)`;
    rows.forEach((row, r) => row.forEach((v, c) => g.append(el("div", `cell ${classOf(r, c)}`, v === null ? "0" : fmt(v, 2)))));
    return g;
  }

  function figure(caption, child) {
    const f = el("figure");
    f.append(child, el("figcaption", "", caption));
    return f;
  }

  function heat(map, mark, onPick) {
    // a map as a canvas, one cell per value (scaled up by CSS), `mark` = [top, left, h, w] outlined
    const h = map.length, w = map[0].length, scale = Math.max(4, Math.floor(168 / Math.max(h, w)));
    const c = el("canvas", "heat");
    c.width = w * scale;
    c.height = h * scale;
    const g = c.getContext("2d");
    const peak = Math.max(...map.flat().map(Math.abs), 0);
    map.forEach((row, r) => row.forEach((v, col) => {
      const a = peak > 0 ? Math.min(1, Math.abs(v) / peak) : 0;
      const [R, G, B] = v >= 0 ? [255, 176, 40] : [70, 150, 255];
      g.fillStyle = `rgb(${24 + a * (R - 24)},${26 + a * (G - 26)},${33 + a * (B - 33)})`;
      g.fillRect(col * scale, r * scale, scale, scale);
    }));
    if (mark) {
      g.strokeStyle = "#2f6fde";
      g.lineWidth = 2;
      g.strokeRect(mark[1] * scale + 1, mark[0] * scale + 1, mark[3] * scale - 2, mark[2] * scale - 2);
    }
    if (onPick) {
      c.addEventListener("click", (ev) => {
        const r = c.getBoundingClientRect();
        onPick(Math.floor(((ev.clientY - r.top) / r.height) * h), Math.floor(((ev.clientX - r.left) / r.width) * w));
      });
    }
    return c;
  }

  function controls(count) {
    const row = el("div", "row");
    const step = el("button", "", t("step"));
    step.type = "button";
    step.id = "detail-step";
    step.addEventListener("click", () => {
      stop();
      move(1);
    });
    const play = el("button", "", t(d.timer ? "pause" : "play"));
    play.type = "button";
    play.id = "detail-play";
    play.addEventListener("click", () => {
      if (d.timer) return stop();
      d.timer = setInterval(() => (d.pos + 1 < count ? move(1) : stop()), 600);
      play.textContent = t("pause");
    });
    row.append(step, play);
    return row;
  }

  // a map (rows of values) has rows x columns positions, a vector (after a fully connected layer) its length
  const isMap = (o) => Array.isArray(o) && Array.isArray(o[0]);
  const positions = (o) => (isMap(o) ? o.length * o[0].length : o.length);

  function move(delta) {
    const count = positions(d.data.output);
    d.pos = (d.pos + delta + count) % count;
    render();
  }

  function stop() {
    clearInterval(d.timer);
    d.timer = null;
    const play = $("detail-play");
    if (play) play.textContent = t("play");
  }

  function pick(r, c) {
    stop();
    d.pos = r * d.data.output[0].length + c;
    render();
  }

  function sumLine(id, label, value) {
    const p = el("p", "formula", `${label} = ${fmt(value, 4)}`);
    p.id = id;
    p.dataset.value = String(value);
    return p;
  }

  function renderConv(x, box) {
    const [sh, sw] = x.stride, [ph, pw] = x.padding;
    const C = x.kernel.length, K = x.kernel[0].length, KW = x.kernel[0][0].length;
    const W = x.output[0].length, r = Math.floor(d.pos / W), c = d.pos % W;
    const top = r * sh - ph, left = c * sw - pw;
    box.append(el("p", "", t("conv_explain", { unit: x.unit, name: x.name, c: C, k: K, s: sh, p: ph })));
    box.append(controls(x.output.length * W), el("p", "formula", t("position", { row: r, col: c })));
    const at = (ch, i, j) => {
      const y = top + i, xx = left + j;
      return y >= 0 && y < x.input[ch].length && xx >= 0 && xx < x.input[ch][0].length ? x.input[ch][y][xx] : null;
    };
    let total = 0;
    const sums = [];
    for (let ch = 0; ch < C; ch++) {
      let s = 0;
      for (let i = 0; i < K; i++) for (let j = 0; j < KW; j++) s += (at(ch, i, j) ?? 0) * x.kernel[ch][i][j];
      sums.push(s);
      total += s;
    }
    const grids = el("div", "conv-grids");
    for (let ch = 0; ch < Math.min(C, MAX_CHANNELS_SHOWN); ch++) {
      const patch = x.kernel[ch].map((row, i) => row.map((_, j) => at(ch, i, j)));
      const prods = x.kernel[ch].map((row, i) => row.map((w, j) => (patch[i][j] ?? 0) * w));
      const group = el("div", "channel");
      const g = el("div", "conv-grids");
      g.append(
        figure(t("patch", { c: ch }), grid(patch, (i, j) => (patch[i][j] === null ? "pad" : "win"))),
        el("span", "op", "×"),
        figure(t("kernel", { c: ch }), grid(x.kernel[ch], (i, j) => (x.kernel[ch][i][j] > 0 ? "pos" : "neg"))),
        el("span", "op", "="),
        figure(t("products"), grid(prods)),
      );
      group.append(g, el("p", "formula small", t("channel_sum", { c: ch, v: fmt(sums[ch], 4) })));
      grids.append(group);
    }
    box.append(grids);
    if (C > MAX_CHANNELS_SHOWN) box.append(el("p", "muted small", t("more_channels", { n: C - MAX_CHANNELS_SHOWN })));
    const list = sums.map((s) => fmt(s, 3)).join(" + ");
    box.append(el("p", "formula small sums", `${t("all_channels", { n: C })}: ${list} = ${fmt(total, 4)}`));
    box.append(sumLine("detail-sum", `${t("total")}: ${fmt(total, 4)} + ${fmt(x.bias, 4)}`, total + x.bias));
    box.append(sumLine("detail-activation", t("server_value"), x.output[r][c]));
    box.append(figure(t("output_map"), heat(x.output, [r, c, 1, 1], pick)));
  }

  function renderPool(x, box) {
    const [k, kw] = x.kernel, [s, sw] = x.stride, [p, pw] = x.padding;
    const W = x.output[0].length, r = Math.floor(d.pos / W), c = d.pos % W;
    const isMax = x.kind === "maxpool";
    box.append(el("p", "", t("pool_explain", {
      kind: t(`kind_${x.kind}`), unit: x.unit, name: x.name, k, s, reduce: t(isMax ? "reduce_max" : "reduce_avg"),
    })));
    box.append(controls(x.output.length * W), el("p", "formula", t("position", { row: r, col: c })));
    const top = r * s - p, left = c * sw - pw;
    const win = [];
    for (let i = 0; i < k; i++) {
      const row = [];
      for (let j = 0; j < kw; j++) {
        const y = top + i, xx = left + j;
        row.push(y >= 0 && y < x.input.length && xx >= 0 && xx < x.input[0].length ? x.input[y][xx] : null);
      }
      win.push(row);
    }
    const vals = win.flat().filter((v) => v !== null);
    const value = isMax ? Math.max(...vals) : vals.reduce((a, b) => a + b, 0) / (k * kw);
    const g = el("div", "conv-grids");
    g.append(
      figure(t("input_map"), heat(x.input, [top, left, k, kw])),
      figure(t("window"), grid(win, (i, j) => (isMax && win[i][j] === value ? "cur" : "win"))),
      figure(t("output_map"), heat(x.output, [r, c, 1, 1], pick)),
    );
    box.append(g, sumLine("detail-sum", t(isMax ? "reduce_max" : "reduce_avg"), value));
    box.append(sumLine("detail-activation", t("server_value"), x.output[r][c]));
  }

  function renderBeforeAfter(x, box) {
    if (!isMap(x.output)) return renderVector(x, box);
    const W = x.output[0].length, r = Math.floor(d.pos / W), c = d.pos % W;
    if (x.kind === "relu") box.append(el("p", "", t("relu_explain")));
    if (x.kind === "batchnorm") {
      box.append(el("p", "", t("batchnorm_explain", {
        unit: x.unit, name: x.name, mean: fmt(x.mean, 4), var: fmt(x.var, 4), eps: x.eps, weight: fmt(x.weight, 4), bias: fmt(x.bias, 4),
      })));
    }
    box.append(controls(x.output.length * W), el("p", "formula", t("position", { row: r, col: c })));
    const g = el("div", "conv-grids");
    g.append(figure(t("before"), heat(x.input, [r, c, 1, 1], pick)), figure(t("after"), heat(x.output, [r, c, 1, 1], pick)));
    box.append(g);
    const v = x.input[r][c];
    if (x.kind === "relu") box.append(sumLine("detail-sum", `max(0, ${fmt(v, 4)})`, Math.max(0, v)));
    if (x.kind === "batchnorm") {
      const y = ((v - x.mean) / Math.sqrt(x.var + x.eps)) * x.weight + x.bias;
      const text = `(${fmt(v, 4)} − ${fmt(x.mean, 4)}) / √(${fmt(x.var, 4)} + ${x.eps}) × ${fmt(x.weight, 4)} + ${fmt(x.bias, 4)}`;
      box.append(sumLine("detail-sum", text, y));
    }
    box.append(sumLine("detail-activation", t("server_value"), x.output[r][c]));
  }

  function renderVector(x, box) {
    // an element-wise layer on a vector (the ReLU between two fully connected layers): value i before and
    // after, with its neighbours for context; Step walks along the vector
    const n = x.output.length, i = d.pos, SHOW = 12;
    const from = Math.max(0, Math.min(i - SHOW / 2, n - SHOW)), to = Math.min(n, from + SHOW);
    if (x.kind === "relu") box.append(el("p", "", t("relu_explain")));
    box.append(controls(n), el("p", "formula", t("vector_position", { i, n })));
    const cells = (values) => {
      // a wrapping row of cells (a grid of 12 would be wider than a phone), the current value marked
      const row = el("div", "vector num");
      values.slice(from, to).forEach((v, k) => {
        const cell = el("div", from + k === i ? "cell cur" : "cell", fmt(v, 2));
        cell.title = `[${from + k}]`;
        row.append(cell);
      });
      return row;
    };
    const g = el("div", "conv-grids");
    const span = `[${from} … ${to - 1}]`;
    g.append(figure(`${t("before")} ${span}`, cells(x.input)), figure(`${t("after")} ${span}`, cells(x.output)));
    box.append(g);
    const v = x.input[i];
    if (x.kind === "relu") box.append(sumLine("detail-sum", `max(0, ${fmt(v, 4)})`, Math.max(0, v)));
    box.append(sumLine("detail-activation", t("server_value"), x.output[i]));
  }

  function renderFlatten(x, box) {
    const [C, H, W] = x.input_shape;
    box.append(el("p", "", t("flatten_explain", { c: C, h: H, w: W, n: C * H * W, hw: H * W })));
    const g = el("div", "conv-grids");
    for (let ch = 0; ch < Math.min(C, 2); ch++) {
      const from = ch * H * W;
      g.append(figure(t("flatten_channel", { c: ch, from, to: from + H * W - 1 }), grid(x.input[ch])));
    }
    box.append(g);
    const show = Math.min(x.output.length, 2 * H * W);
    const vec = el("div", "vector num");
    x.output.slice(0, show).forEach((v, i) => {
      const cell = el("div", "cell", fmt(v, 2));
      cell.title = `[${i}]`;
      vec.append(cell);
    });
    box.append(figure(`[0 … ${show - 1}] / ${x.output.length}`, vec));
  }

  function renderSoftmax(x, box) {
    box.append(el("p", "", t("softmax_explain")));
    const classes = (window.cnnlabOverview.classes && window.cnnlabOverview.classes()) || [];
    const z = x.logits, max = Math.max(...z), e = z.map((v) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0), p = e.map((v) => v / sum);
    const table = el("table", "softmax");
    const head = el("tr");
    for (const k of ["class", "logit", "shifted", "exp", "prob"]) head.append(el("th", "", t(k)));
    table.append(head);
    z.forEach((v, i) => {
      const row = el("tr");
      row.tabIndex = 0;
      row.dataset.p = String(p[i]);
      for (const text of [classes[i] ?? String(i), fmt(v, 4), fmt(v - max, 4), fmtWide(e[i]), fmtWide(p[i])]) row.append(el("td", "", text));
      table.append(row);
    });
    const foot = el("tr", "sum");
    for (const text of [t("sum"), "", "", fmt(sum, 4), fmt(p.reduce((a, b) => a + b, 0), 4)]) foot.append(el("td", "", text));
    table.append(foot);
    const wrap = el("div", "table-wrap");
    wrap.append(table);
    box.append(wrap, sumLine("detail-sum", `${t("sum")} (${t("prob")})`, p.reduce((a, b) => a + b, 0)));
  }

  function renderLinear(x, box) {
    box.append(el("p", "", t("linear_explain", { unit: x.unit, name: x.name, n: x.input.length })));
    const terms = x.input.map((v, i) => [i, v * x.weights[i], v, x.weights[i]]);
    const total = terms.reduce((a, term) => a + term[1], 0);
    const top = [...terms].sort((a, b) => Math.abs(b[1]) - Math.abs(a[1])).slice(0, 8);
    const list = el("ul", "formula small");
    for (const [i, prod, v, w] of top) list.append(el("li", "", `x[${i}] × w[${i}] = ${fmt(v, 3)} × ${fmt(w, 3)} = ${fmt(prod, 4)}`));
    box.append(el("p", "small", t("largest_terms", { n: top.length })), list);
    box.append(sumLine("detail-sum", `Σ x·w + ${t("bias")} = ${fmt(total, 4)} + ${fmt(x.bias, 4)}`, total + x.bias));
    box.append(sumLine("detail-activation", t("server_value"), x.output));
  }

  function renderMap(x, box) {
    // a block (residual, Inception), or a layer with no step-by-step view: the map it produced
    box.append(el("p", "", x.note ?? t("map_explain", { name: x.name, type: x.type })));
    if (isMap(x.output)) box.append(heat(x.output));
  }

  // The views, by the `kind` of the answer of /api/detail (cnnlab/inside/detail.py makes one per kind):
  // a new view is a render function and one line here (docs/extending.md, "Adding a page view").
  const VIEWS = {
    conv: renderConv,
    maxpool: renderPool,
    avgpool: renderPool,
    relu: renderBeforeAfter,
    batchnorm: renderBeforeAfter,
    "before-after": renderBeforeAfter,
    flatten: renderFlatten,
    softmax: renderSoftmax,
    linear: renderLinear,
    map: renderMap,
  };

  function render() {
    const x = d.data, box = $("detail");
    const head = el("h3", "", `${x.name} · ${t(`kind_${x.kind}`) === `kind_${x.kind}` ? x.type : t(`kind_${x.kind}`)}`);
    const body = el("div");
    body.dataset.kind = x.kind;
    body.dataset.at = `${x.column}-${x.unit ?? 0}`;
    (VIEWS[x.kind] ?? renderMap)(x, body);
    box.replaceChildren(head, body);
  }

  async function open(column, unit, scroll = true) {
    const blob = d.getBlob();
    if (!blob) return;
    stop();
    const seq = ++d.seq;
    d.open = [column, unit];
    $("detail").replaceChildren(el("p", "muted", t("detail_loading")));
    try {
      const data = await d.post(`/api/detail?column=${column}&unit=${unit}`, blob.blob, blob.name);
      if (seq !== d.seq) return;
      d.data = data;
      // a vector view starts at the value that was clicked; a map view at its top-left cell
      d.pos = Array.isArray(data.output) && !isMap(data.output) ? (data.unit ?? 0) : 0;
      render();
      if (scroll) $("detail-card").scrollIntoView({ block: "nearest" });
    } catch (err) {
      // the server's answer to a bad request is shown; a fault of this page's own code is also logged,
      // so it is not mistaken for one (the browser tests fail on console errors)
      if (!err.server) console.error(err);
      if (seq === d.seq) $("detail").replaceChildren(el("p", "status error", err.message));
    }
  }

  function clear() {
    stop();
    d.open = d.data = null;
    d.seq++;
    $("detail").replaceChildren(el("p", "muted", t("detail_empty")));
  }

  window.cnnlabDetail = {
    setup: (getBlob, post) => Object.assign(d, { getBlob, post }),
    open,
    clear,
    refresh: () => (d.open ? open(...d.open, false) : clear()),
  };
})();
