// cnnlab serve: the drawing pad / photo upload, the prediction with its Grad-CAM overlay, and the glue
// between the overview (overview.js), the detail views (detail.js) and the convolution panel (conv.js).
// Plain JS, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const t = (key, vars) => window.cnnlabI18n.t(key, vars);
const state = {
  model: null, seq: 0, abort: null, hasInk: false, maxBytes: 5 * 1024 * 1024,
  blob: null, result: null, gradcam: null, photo: false,
};

// ---- model info ------------------------------------------------------------------------------------

async function loadModel() {
  try {
    const res = await fetch("/api/model");
    const info = await res.json();
    if (!res.ok) throw new Error(info.error || res.statusText);
    state.model = info;
    state.maxBytes = info.max_body_bytes || state.maxBytes;
    state.photo = info.preprocess === "photo";
    $("draw-mode").hidden = state.photo;
    $("photo-mode").hidden = !state.photo;
    showModelInfo();
    showBars(new Array(info.classes.length).fill(0), -1);
  } catch (err) {
    $("model-info").textContent = t("model_error", { error: err.message });
  }
}

function showModelInfo() {
  const info = state.model;
  if (!info) return;
  const size = info.input_shape.slice(1).join("×");
  $("draw-title").textContent = t(state.photo ? "photo_title" : "draw_title");
  $("photo-hint").textContent = t("photo_hint", { size });
  $("model-info").textContent = t("model_info", {
    model: info.model, dataset: info.dataset, shape: info.input_shape.join("×"),
    params: info.params.toLocaleString(), convs: info.conv_layers.length,
  });
  $("input-caption").textContent = t("model_input_size", { size });
  $("overview-note").textContent = t("overview_note", { model: info.model });
}

// ---- drawing pad -------------------------------------------------------------------------------------

const pad = $("pad");
const ctx = pad.getContext("2d");

function clearPad() {
  // white ink on black, like MNIST itself (the server would invert dark-on-light anyway)
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  state.hasInk = false;
}

function padPoint(ev) {
  const r = pad.getBoundingClientRect();
  return [((ev.clientX - r.left) * pad.width) / r.width, ((ev.clientY - r.top) * pad.height) / r.height];
}

function setupPad() {
  clearPad();
  ctx.strokeStyle = "#fff";
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = 20; // a 20 px pen on 280 px is MNIST's ~2 px stroke on 28 px
  let last = null;
  pad.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    pad.setPointerCapture(ev.pointerId);
    last = padPoint(ev);
    ctx.beginPath();
    ctx.arc(last[0], last[1], ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fillStyle = "#fff";
    ctx.fill();
    state.hasInk = true;
  });
  pad.addEventListener("pointermove", (ev) => {
    if (!last) return;
    // coalesced events: every sample the pointer reported since the last frame, so fast strokes stay smooth
    const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
    ctx.beginPath();
    ctx.moveTo(last[0], last[1]);
    for (const e of events.length ? events : [ev]) {
      last = padPoint(e);
      ctx.lineTo(last[0], last[1]);
    }
    ctx.stroke();
  });
  const end = () => {
    if (!last) return;
    last = null;
    pad.toBlob((blob) => sendImage(blob, "canvas.png"), "image/png");
  };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);

  $("clear").addEventListener("click", () => {
    clearPad();
    resetResult();
  });
  $("upload").addEventListener("change", (ev) => {
    const file = ev.target.files[0];
    if (file) uploadFile(file);
    ev.target.value = ""; // choosing the same file again must fire "change" again
  });
  pad.addEventListener("dragover", (ev) => ev.preventDefault());
  pad.addEventListener("drop", (ev) => {
    ev.preventDefault();
    const file = ev.dataTransfer.files[0];
    if (file) uploadFile(file);
  });
}

// ---- photo upload (models trained on photos: no pad) ---------------------------------------------------

function setupPhoto() {
  const drop = $("drop");
  $("photo").addEventListener("change", (ev) => {
    const file = ev.target.files[0];
    if (file) uploadFile(file);
    ev.target.value = "";
  });
  drop.addEventListener("click", () => $("photo").click());
  drop.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      $("photo").click();
    }
  });
  drop.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    const file = ev.dataTransfer.files[0];
    if (file) uploadFile(file);
  });
  document.addEventListener("paste", (ev) => {
    const item = [...(ev.clipboardData?.items || [])].find((i) => i.type.startsWith("image/"));
    if (item) uploadFile(item.getAsFile());
  });
}

async function uploadFile(file) {
  if (file.size > state.maxBytes) {
    const mb = (n) => (n / 2 ** 20).toFixed(1);
    showError(t("too_big", { name: file.name, size: mb(file.size), limit: mb(state.maxBytes) }));
    return;
  }
  if (state.photo) {
    const preview = $("photo-preview");
    if (preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    $("drop-text").hidden = true;
  } else {
    try {
      // show the upload on the pad (scaled to fit) so later strokes can add to it
      const bitmap = await createImageBitmap(file);
      clearPad();
      const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
      const w = bitmap.width * scale, h = bitmap.height * scale;
      ctx.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
      state.hasInk = true;
    } catch {
      // the browser cannot decode it either; send it anyway so the server's message explains why
    }
  }
  sendImage(file, file.name || "pasted.png");
}

// ---- prediction ----------------------------------------------------------------------------------------

async function post(path, blob, name, signal) {
  const body = new FormData();
  body.append("file", blob, name);
  const res = await fetch(path, { method: "POST", body, signal });
  const data = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) throw Object.assign(new Error(data.error || `HTTP ${res.status}`), { server: true });
  return data;
}

async function sendImage(blob, name) {
  // only the newest request matters: abort the previous one and ignore late answers
  if (state.abort) state.abort.abort();
  const abort = new AbortController();
  const seq = ++state.seq;
  state.abort = abort;
  setStatus(t("thinking"));
  try {
    const data = await post("/api/predict?features=1&overview=1&gradcam=1", blob, name, abort.signal);
    if (seq !== state.seq) return;
    state.blob = { blob, name };
    showResult(data);
  } catch (err) {
    if (err.name === "AbortError" || seq !== state.seq) return;
    showError(err.server ? err.message : t("request_failed", { error: err.message }));
  }
}

async function showGradcam(cls) {
  if (!state.blob) return;
  const seq = state.seq;
  try {
    const data = await post(`/api/predict?gradcam_class=${cls}`, state.blob.blob, state.blob.name);
    if (seq === state.seq) setGradcam(data.gradcam);
  } catch (err) {
    if (seq === state.seq) setStatus(err.message, true);
  }
}

function setGradcam(g) {
  state.gradcam = g;
  const overlay = $("gradcam-overlay");
  if (!g || !g.maps.length) {
    overlay.hidden = true;
    $("gradcam-note").textContent = "";
    return;
  }
  overlay.src = g.maps[0].png;
  overlay.dataset.class = String(g.maps[0].class);
  overlay.hidden = !$("gradcam-on").checked;
  $("gradcam-note").textContent = t("gradcam_note", { label: g.maps[0].label, layer: g.layer });
  for (const row of document.querySelectorAll("#bars .bar-row")) {
    row.classList.toggle("cam", Number(row.dataset.index) === g.maps[0].class);
  }
}

function setLabel(text) {
  $("label").textContent = text;
  $("label").classList.toggle("long", [...text].length > 3); // "7" stays big; "T-shirt/top" is smaller
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function showError(message) {
  setStatus(message, true);
  setLabel("–");
  $("confidence").textContent = t("no_prediction");
}

function resetResult() {
  state.seq++;
  if (state.abort) state.abort.abort();
  state.result = null;
  state.blob = null;
  setLabel("–");
  $("confidence").textContent = t(state.photo ? "upload_something" : "draw_something");
  $("input-preview").hidden = true;
  $("input-placeholder").hidden = false;
  setGradcam(null);
  $("layers").replaceChildren(note(t("features_empty")));
  window.cnnlabOverview.clear();
  window.cnnlabDetail.clear();
  if (state.model) showBars(new Array(state.model.classes.length).fill(0), -1);
  setStatus("");
}

function showResult(r) {
  state.result = r;
  const p = r.probabilities[r.prediction];
  setLabel(r.label);
  $("confidence").textContent = t("sure", { p: (p * 100).toFixed(1) });
  $("input-preview").src = r.input;
  $("input-preview").hidden = false;
  $("input-placeholder").hidden = true;
  showBars(r.probabilities, r.prediction, r.classes);
  setGradcam(r.gradcam);
  showFeatures(r.features || []);
  window.cnnlabOverview.show(r.overview || [], r.classes);
  window.cnnlabDetail.refresh();
  setStatus(t("answered", { ms: r.elapsed_ms.toFixed(1) }));
}

function note(text) {
  const p = document.createElement("p");
  p.className = "muted";
  p.textContent = text;
  return p;
}

function showBars(probs, best, classes = state.model ? state.model.classes : []) {
  const rows = probs.map((p, i) => {
    const row = document.createElement("div");
    row.className = "bar-row" + (i === best ? " best" : "");
    row.dataset.p = String(p);
    row.dataset.index = String(i);
    const label = document.createElement("button");
    label.type = "button";
    label.className = "bar-label";
    label.textContent = classes[i] ?? String(i);
    label.addEventListener("click", () => showGradcam(i));
    const track = document.createElement("div");
    track.className = "bar-track";
    const fill = document.createElement("div");
    fill.className = "bar-fill";
    fill.style.width = `${(p * 100).toFixed(2)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = `${(p * 100).toFixed(1)}%`;
    row.append(label, track, value);
    return row;
  });
  $("bars").replaceChildren(...rows);
}

function showFeatures(layers) {
  if (!layers.length) return $("layers").replaceChildren(note(t("no_conv")));
  const cards = layers.map((layer) => {
    const card = document.createElement("button");
    card.type = "button";
    card.className = "layer";
    card.dataset.name = layer.name;
    const title = document.createElement("span");
    title.className = "layer-name";
    title.textContent = layer.name;
    const shape = document.createElement("span");
    shape.className = "muted small";
    const first = layer.shown < layer.shape[0] ? ` ${t("first_n", { n: layer.shown })}` : "";
    shape.textContent = `${layer.shape.join("×")}${first}`;
    const img = document.createElement("img");
    img.className = "fmap";
    img.alt = layer.name;
    img.src = layer.png;
    card.addEventListener("click", () => zoom(layer));
    card.append(img, title, shape);
    return card;
  });
  $("layers").replaceChildren(...cards);
}

function zoom(layer) {
  $("zoom-title").textContent = `${layer.name} · ${layer.shape.join("×")}`;
  $("zoom-img").src = layer.png;
  $("zoom-note").textContent = t("zoom_note", {
    shown: layer.shown, count: layer.shape[0], h: layer.shape[1], w: layer.shape[2], cols: layer.cols, rows: layer.rows,
  });
  $("zoom").showModal();
}

function setupZoom() {
  const dialog = $("zoom");
  $("zoom-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (ev) => {
    if (ev.target === dialog) dialog.close(); // a click on the backdrop
  });
}

function relabel() {
  // the language changed: everything written by code is written again
  showModelInfo();
  if (state.result) showResult(state.result);
  else resetResult();
  if (state.gradcam) setGradcam(state.gradcam);
  window.cnnlabConv.render();
}

document.addEventListener("DOMContentLoaded", async () => {
  const i18n = window.cnnlabI18n;
  await i18n.use(i18n.pick());
  $("lang").value = i18n.lang;
  $("lang").addEventListener("change", (ev) => i18n.use(ev.target.value, true));
  document.addEventListener("cnnlab:lang", relabel);
  $("gradcam-on").addEventListener("change", () => setGradcam(state.gradcam));
  setupPad();
  setupPhoto();
  setupZoom();
  window.cnnlabOverview.setup((column, unit) => window.cnnlabDetail.open(column, unit));
  window.cnnlabDetail.setup(() => state.blob, post);
  window.cnnlabConv.setup(); // the "try it" convolution panel, static/conv.js
  await loadModel();
});
