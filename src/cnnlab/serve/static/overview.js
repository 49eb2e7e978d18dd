// The overview: one column per layer (the server decides what a column is: serve/explore.py), each with its
// kind, output shape and its maps as small tiles cut from one PNG sprite. Hovering or focusing a tile draws
// lines from the maps of the previous column that feed it: all of them for a convolution or a fully
// connected layer, the same-numbered map for ReLU, pooling and batch norm. Clicking a tile opens its detail.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const t = (key, vars) => window.cnnlabI18n.t(key, vars);
  const SVG = "http://www.w3.org/2000/svg";
  const ov = { columns: [], classes: [], onUnit: null };
  const MAX_BUTTONS = 64; // vector columns: one button per value up to this many

  function unitButton(col, unit, title) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "unit";
    b.dataset.col = String(col.index);
    b.dataset.unit = String(unit);
    b.setAttribute("aria-label", t("unit_label", { name: col.name, unit }));
    if (title) b.title = title;
    b.addEventListener("click", () => ov.onUnit(col.index, unit));
    b.addEventListener("mouseenter", () => drawLinks(b));
    b.addEventListener("focus", () => drawLinks(b));
    b.addEventListener("mouseleave", clearLinks);
    b.addEventListener("blur", clearLinks);
    return b;
  }

  function mapTiles(col, holder) {
    // cut each tile out of the sprite: tiles sit in a cols x rows grid with 1-px gaps
    const img = new Image();
    const [h, w] = col.tile;
    const canvases = [];
    for (let i = 0; i < col.shown; i++) {
      const c = document.createElement("canvas");
      c.width = w;
      c.height = h;
      c.className = "tile";
      const b = unitButton(col, i, `${col.name} #${i}`);
      b.append(c);
      holder.append(b);
      canvases.push(c);
    }
    img.onload = () => {
      canvases.forEach((c, i) => {
        const x = (i % col.cols) * (w + 1), y = Math.floor(i / col.cols) * (h + 1);
        c.getContext("2d").drawImage(img, x, y, w, h, 0, 0, w, h);
      });
      holder.dataset.ready = "1";
    };
    img.src = col.png;
  }

  function colour(v, peak) {
    // the feature maps' colours: orange positive, blue negative, dark zero
    const a = peak > 0 ? Math.min(1, Math.abs(v) / peak) : 0;
    const [r, g, b] = v >= 0 ? [255, 176, 40] : [70, 150, 255];
    const mix = (z, c) => Math.round(z + a * (c - z));
    return `rgb(${mix(24, r)},${mix(26, g)},${mix(33, b)})`;
  }

  function vectorTiles(col, holder) {
    const values = col.values;
    const peak = Math.max(...values.map(Math.abs), 0);
    if (col.kind === "softmax" || (values.length <= 16 && col.index === ov.columns.length - 2)) {
      // class scores: one labelled row per class
      values.forEach((v, i) => {
        const b = unitButton(col, i, `${ov.classes[i] ?? i}: ${v.toFixed(4)}`);
        b.classList.add("vec-row");
        // the whole class name (style.css widens the column for it), then the bar in a fixed-width track
        const name = document.createElement("span");
        name.className = "vec-name";
        name.textContent = ov.classes[i] ?? String(i);
        const track = document.createElement("span");
        track.className = "vec-track";
        const bar = document.createElement("span");
        bar.className = "vec-bar";
        bar.style.width = col.kind === "softmax" ? `${(v * 100).toFixed(1)}%` : `${peak ? (Math.abs(v) / peak) * 100 : 0}%`;
        bar.style.background = colour(v, peak);
        track.append(bar);
        b.append(name, track);
        holder.append(b);
      });
      return;
    }
    if (col.kind === "flatten" || values.length > MAX_BUTTONS) {
      // one strip, 8 values a row, opening the whole column's detail
      const per = 8, c = document.createElement("canvas");
      c.width = per;
      c.height = Math.ceil(values.length / per);
      c.className = "strip";
      const g = c.getContext("2d");
      values.forEach((v, i) => {
        g.fillStyle = colour(v, peak);
        g.fillRect(i % per, Math.floor(i / per), 1, 1);
      });
      const b = unitButton(col, 0, `${col.name}: ${col.shape.join("×")}`);
      b.append(c);
      if (col.kind !== "flatten") {
        // a pointer picks the value under it; the keyboard opens value 0
        c.addEventListener("click", (ev) => {
          ev.stopPropagation();
          const r = c.getBoundingClientRect();
          const unit = Math.floor(((ev.clientY - r.top) / r.height) * c.height) * per + Math.floor(((ev.clientX - r.left) / r.width) * per);
          ov.onUnit(col.index, Math.min(unit, values.length - 1));
        });
      }
      holder.append(b);
      return;
    }
    values.forEach((v, i) => {
      const b = unitButton(col, i, `${col.name} #${i}: ${v.toFixed(4)}`);
      b.classList.add("dot");
      b.style.background = colour(v, peak);
      holder.append(b);
    });
  }

  function show(columns, classes) {
    ov.columns = columns;
    ov.classes = classes || [];
    const nodes = columns.map((col) => {
      const el = document.createElement("div");
      el.className = `col kind-${col.kind}`;
      el.dataset.index = String(col.index);
      el.dataset.shape = col.shape.join("×");
      const head = document.createElement("div");
      head.className = "col-head";
      const kind = document.createElement("span");
      kind.className = "col-kind";
      kind.textContent = t(`kind_${col.kind}`);
      const name = document.createElement("span");
      name.className = "col-name";
      name.textContent = col.name;
      const shape = document.createElement("span");
      shape.className = "col-shape";
      shape.textContent = col.shape.join("×");
      head.append(kind, name, shape);
      const tiles = document.createElement("div");
      tiles.className = "tiles";
      if (col.png) mapTiles(col, tiles);
      else vectorTiles(col, tiles);
      // few maps: one big tile a row; class rows; dots three a row; otherwise two small tiles a row
      if (col.png && col.shown <= 8) tiles.classList.add("one");
      else if (tiles.querySelector(".vec-row")) tiles.classList.add("rows");
      else if (tiles.querySelector(".dot")) tiles.classList.add("dots");
      else if (!col.png) tiles.classList.add("one");
      el.append(head, tiles);
      const more = col.shape[0] - col.shown;
      if (col.png && more > 0) {
        const m = document.createElement("span");
        m.className = "muted small";
        m.textContent = t("more_maps", { n: more });
        el.append(m);
      }
      return el;
    });
    $("columns").replaceChildren(...nodes);
    clearLinks();
  }

  function clear() {
    ov.columns = [];
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = t("overview_empty");
    $("columns").replaceChildren(p);
    clearLinks();
  }

  function clearLinks() {
    $("links").replaceChildren();
  }

  function drawLinks(target) {
    clearLinks();
    const index = Number(target.dataset.col);
    const col = ov.columns[index];
    if (!col || index === 0) return;
    const prev = [...document.querySelectorAll(`#columns .unit[data-col="${index - 1}"]`)];
    const sources = col.links === "same" ? prev.filter((b) => b.dataset.unit === target.dataset.unit) : prev;
    const box = $("overview");
    const origin = box.getBoundingClientRect();
    const svg = $("links");
    svg.setAttribute("width", box.scrollWidth);
    svg.setAttribute("height", box.scrollHeight);
    const at = (el, side) => {
      const r = el.getBoundingClientRect();
      return [(side ? r.right : r.left) - origin.left + box.scrollLeft, r.top + r.height / 2 - origin.top + box.scrollTop];
    };
    const [x2, y2] = at(target, 0);
    for (const s of sources) {
      const [x1, y1] = at(s, 1);
      const line = document.createElementNS(SVG, "line");
      Object.entries({ x1, y1, x2, y2 }).forEach(([k, v]) => line.setAttribute(k, String(v)));
      svg.append(line);
    }
  }

  window.cnnlabOverview = {
    setup: (onUnit) => (ov.onUnit = onUnit),
    show,
    clear,
    columns: () => ov.columns,
    classes: () => ov.classes,
  };
})();
