// The convolution panel: a kernel slides over a small (padded) input, one output cell per step,
// each cell the sum of products of the kernel and the input window under it.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const t = (key, vars) => window.cnnlabI18n.t(key, vars);
  const conv = { i: 5, k: 3, s: 1, p: 0, seed: 0, input: [], kernel: [], step: 0, timer: null };

  // floor((I - K + 2P) / S) + 1, or null when the kernel does not fit in the padded input: the same rule
  // as cnnlab.sizes.output_size (dilation 1, floor mode). The browser test checks that they agree.
  function outputSize(i, k, s, p) {
    if (i < 1 || k < 1 || s < 1 || p < 0) return null;
    const num = i - k + 2 * p;
    return num < 0 ? null : Math.floor(num / s) + 1;
  }

  function random(seed) {
    // mulberry32: a tiny seeded generator, so "New numbers" is repeatable and the first view is fixed
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  const grid = (n, f) => Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => f(r, c)));

  function makeNumbers() {
    const rand = random(conv.seed + 1);
    conv.input = grid(conv.i, () => Math.floor(rand() * 4)); // small values keep the sums readable
    const mid = (conv.k - 1) / 2;
    // first view: a vertical-edge detector (+1 left, -1 right); "New numbers" draws -1, 0 or 1
    conv.kernel =
      conv.seed === 0
        ? grid(conv.k, (r, c) => (conv.k === 1 ? 1 : c < mid ? 1 : c > mid ? -1 : 0))
        : grid(conv.k, () => Math.floor(rand() * 3) - 1);
  }

  const padded = (r, c) => {
    const y = r - conv.p, x = c - conv.p;
    return y >= 0 && y < conv.i && x >= 0 && x < conv.i ? conv.input[y][x] : 0;
  };

  function cellValue(orow, ocol) {
    const terms = [];
    let sum = 0;
    for (let r = 0; r < conv.k; r++) {
      for (let c = 0; c < conv.k; c++) {
        const v = padded(orow * conv.s + r, ocol * conv.s + c);
        const w = conv.kernel[r][c];
        sum += v * w;
        terms.push(`${v}×${w < 0 ? `(${w})` : w}`);
      }
    }
    return { sum, terms };
  }

  function cell(text, ...classes) {
    const d = document.createElement("div");
    d.className = ["cell", ...classes].join(" ");
    d.textContent = text;
    return d;
  }

  function setColumns(el, n) {
    el.style.gridTemplateColumns = `repeat(${n}, var(--cell))`;
  }

  function render() {
    const { i, k, s, p } = conv;
    const o = outputSize(i, k, s, p);
    const size = $("conv-size");
    size.dataset.size = o === null ? "" : String(o);
    size.classList.toggle("error", o === null);
    size.textContent = o === null ? t("conv_no_output", { k, n: i + 2 * p }) : t("conv_size", { i, k, s, p, o });

    const n = i + 2 * p;
    const step = o === null ? -1 : conv.step;
    const orow = Math.floor(step / (o || 1)), ocol = step % (o || 1);
    const input = $("conv-input");
    setColumns(input, n);
    const cells = [];
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) {
        const inPad = r < p || c < p || r >= p + i || c >= p + i;
        const inWin = step >= 0 && r >= orow * s && r < orow * s + k && c >= ocol * s && c < ocol * s + k;
        cells.push(cell(String(padded(r, c)), inPad ? "pad" : "", inWin ? "win" : ""));
      }
    }
    input.replaceChildren(...cells);

    const kernel = $("conv-kernel");
    setColumns(kernel, k);
    kernel.replaceChildren(...conv.kernel.flat().map((w) => cell(String(w), w > 0 ? "pos" : w < 0 ? "neg" : "")));

    const output = $("conv-output");
    setColumns(output, o || 1);
    const outCells = [];
    for (let idx = 0; idx < (o || 0) ** 2; idx++) {
      const done = idx <= step;
      const v = done ? cellValue(Math.floor(idx / o), idx % o).sum : "";
      outCells.push(cell(String(v), done ? "done" : "todo", idx === step ? "cur" : ""));
    }
    output.replaceChildren(...outCells);

    if (o === null) {
      $("conv-sum").textContent = "";
      return;
    }
    const { sum, terms } = cellValue(orow, ocol);
    $("conv-sum").textContent = `output[${orow}][${ocol}] = ${terms.join(" + ")} = ${sum}`;
  }

  function readControls() {
    const read = (id) => {
      const el = $(id);
      const v = Math.round(Number(el.value));
      const lo = Number(el.min), hi = Number(el.max);
      return Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : lo;
    };
    Object.assign(conv, { i: read("conv-i"), k: read("conv-k"), s: read("conv-s"), p: read("conv-p") });
    conv.step = 0;
    stop();
    makeNumbers();
    render();
  }

  function advance() {
    const o = outputSize(conv.i, conv.k, conv.s, conv.p);
    if (o === null) return false;
    if (conv.step >= o * o - 1) {
      conv.step = 0; // wrap around: Step after the last cell starts over
      render();
      return false;
    }
    conv.step++;
    render();
    return conv.step < o * o - 1;
  }

  function stop() {
    clearInterval(conv.timer);
    conv.timer = null;
    $("conv-play").textContent = t("play");
  }

  function play() {
    if (conv.timer) return stop();
    const o = outputSize(conv.i, conv.k, conv.s, conv.p);
    if (o === null) return;
    if (conv.step >= o * o - 1) {
      conv.step = 0; // Play at the end replays from the first cell
      render();
    }
    $("conv-play").textContent = t("pause");
    conv.timer = setInterval(() => advance() || stop(), 700);
  }

  function setup() {
    for (const id of ["conv-i", "conv-k", "conv-s", "conv-p"]) $(id).addEventListener("input", readControls);
    $("conv-step").addEventListener("click", () => {
      stop();
      advance();
    });
    $("conv-play").addEventListener("click", play);
    $("conv-shuffle").addEventListener("click", () => {
      conv.seed++;
      makeNumbers();
      render();
    });
    readControls();
  }

  window.cnnlabConv = { setup, outputSize, render };
})();
