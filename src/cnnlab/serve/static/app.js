// cnnlab serve: the drawing pad, the prediction view and the convolution panel. Plain JS, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { model: null, seq: 0, abort: null, hasInk: false, maxBytes: 5 * 1024 * 1024 };

// ---- model info ------------------------------------------------------------------------------------

async function loadModel() {
  try {
    const res = await fetch("/api/model");
    const info = await res.json();
    if (!res.ok) throw new Error(info.error || res.statusText);
    state.model = info;
    state.maxBytes = info.max_body_bytes || state.maxBytes;
    const shape = info.input_shape.join("×");
    // the pad suits digits; for other datasets it is mostly the upload that makes sense
    if (!["mnist", "mnist-sample"].includes(info.dataset)) $("draw-title").textContent = "Upload or draw an image";
    $("model-info").textContent =
      `${info.model} trained on ${info.dataset} · input ${shape} · ${info.params.toLocaleString()} parameters · ` +
      `${info.conv_layers.length} conv layers`;
    $("input-caption").textContent = `model input (${info.input_shape.slice(1).join("×")})`;
    showBars(new Array(info.classes.length).fill(0), -1);
  } catch (err) {
    $("model-info").textContent = `cannot reach the model: ${err.message}`;
  }
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
  ctx.fillStyle = "#fff";
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

async function uploadFile(file) {
  if (file.size > state.maxBytes) {
    showError(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MB; the server accepts up to ${(state.maxBytes / 2 ** 20).toFixed(1)} MB`);
    return;
  }
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
  sendImage(file, file.name);
}

// ---- prediction ----------------------------------------------------------------------------------------

async function sendImage(blob, name) {
  // only the newest request matters: abort the previous one and ignore late answers
  if (state.abort) state.abort.abort();
  const abort = new AbortController();
  const seq = ++state.seq;
  state.abort = abort;
  setStatus("thinking…");
  const body = new FormData();
  body.append("file", blob, name);
  try {
    const res = await fetch("/api/predict?features=1", { method: "POST", body, signal: abort.signal });
    const data = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
    if (seq !== state.seq) return;
    if (!res.ok) return showError(data.error || `HTTP ${res.status}`);
    showResult(data);
  } catch (err) {
    if (err.name !== "AbortError" && seq === state.seq) showError(`request failed: ${err.message}`);
  }
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function showError(message) {
  setStatus(message, true);
  $("label").textContent = "–";
  $("confidence").textContent = "no prediction";
}

function resetResult() {
  state.seq++;
  if (state.abort) state.abort.abort();
  $("label").textContent = "–";
  $("confidence").textContent = "draw something";
  $("input-preview").hidden = true;
  $("input-placeholder").hidden = false;
  $("layers").replaceChildren(note("The feature maps appear after the first stroke."));
  if (state.model) showBars(new Array(state.model.classes.length).fill(0), -1);
  setStatus("");
}

function showResult(r) {
  const p = r.probabilities[r.prediction];
  $("label").textContent = r.label;
  $("confidence").textContent = `${(p * 100).toFixed(1)}% sure`;
  $("input-preview").src = r.input;
  $("input-preview").hidden = false;
  $("input-placeholder").hidden = true;
  showBars(r.probabilities, r.prediction, r.classes);
  showFeatures(r.features || []);
  setStatus(`answered in ${r.elapsed_ms.toFixed(1)} ms on the server`);
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
    const label = document.createElement("span");
    label.className = "bar-label";
    label.textContent = classes[i] ?? String(i);
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
  if (!layers.length) return $("layers").replaceChildren(note("This model has no conv layers."));
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
    shape.textContent = `${layer.shape.join("×")}${layer.shown < layer.shape[0] ? ` (first ${layer.shown})` : ""}`;
    const img = document.createElement("img");
    img.className = "fmap";
    img.alt = `feature maps of ${layer.name}`;
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
  $("zoom-note").textContent =
    `${layer.shown} of ${layer.shape[0]} filters, each a ${layer.shape[1]}×${layer.shape[2]} map, ` +
    `in a ${layer.cols}×${layer.rows} grid.`;
  $("zoom").showModal();
}

function setupZoom() {
  const dialog = $("zoom");
  $("zoom-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (ev) => {
    if (ev.target === dialog) dialog.close(); // a click on the backdrop
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setupPad();
  setupZoom();
  loadModel();
  window.cnnlabConv.setup(); // the convolution panel, static/conv.js
});
