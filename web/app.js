// The Neural Face page: the z palette (mouse and keyboard), face strip, walks and sliders, start-up.
'use strict';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const state = {
  gen: null, cfg: null, zRange: [-1, 1], z: null, brush: 1, backend: null, cursor: 0,
  timings: {load_ms: null, draw_ms: null, first_draw_ms: null}, zA: null, zB: null,
  drawing: false, pendingDraw: null, statusKey: 'loading', statusArgs: {}, error: null,
};

// ------------------------------------------------------------------ language and status

function setLanguage(lang) {
  i18n.lang = TEXT[lang] ? lang : 'en';
  document.documentElement.lang = i18n.lang;
  applyText();
  showStatus(state.statusKey, state.statusArgs, true);
  if (state.cfg) describePalette();
  try { localStorage.setItem('neuralface-lang', i18n.lang); } catch (e) { /* private mode: not kept */ }
}

// The status line is a polite live region: it changes (and is announced) only when the page's state does
// (loading, loaded, failed) or the language changes; each face's drawing time goes to the quiet #timing line.
function showStatus(key, args = {}, force = false) {
  const same = key === state.statusKey && JSON.stringify(args) === JSON.stringify(state.statusArgs);
  state.statusKey = key; state.statusArgs = args;
  if (same && !force) return;
  const el = $('status');
  el.textContent = t(key, args);
  el.dataset.state = key === 'loaded' ? 'ready' : key === 'failed' ? 'error' : 'loading';
  el.className = 'status ' + el.dataset.state;
}

// ------------------------------------------------------------------ z and its palette picture

function paletteShape(zDim) {  // 10x10 for z_dim 100; otherwise the squarest grid that holds z_dim cells
  const cols = Math.ceil(Math.sqrt(zDim));
  return {cols, rows: Math.ceil(zDim / cols)};
}

function valueColor(v) {  // blue (low) - white (middle) - red (high) over the model's z range
  const [lo, hi] = state.zRange;
  const u = Math.min(1, Math.max(0, (v - lo) / (hi - lo)));
  const s = Math.abs(u - 0.5) * 2, c = Math.round(255 * (1 - s));
  return u < 0.5 ? `rgb(${c},${c},255)` : `rgb(255,${c},${c})`;
}

function drawPalette(canvas, z, cursor = -1) {  // cursor: the keyboard's cell, outlined
  const ctx = canvas.getContext('2d');
  const {cols, rows} = paletteShape(z.length);
  const cw = canvas.width / cols, ch = canvas.height / rows;
  ctx.fillStyle = '#ccc';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < z.length; i++) {
    const r = Math.floor(i / cols), c = i % cols;
    ctx.fillStyle = valueColor(z[i]);
    ctx.fillRect(c * cw + 0.5, r * ch + 0.5, cw - 1, ch - 1);
  }
  if (cursor >= 0) {
    ctx.lineWidth = 3;
    ctx.strokeStyle = '#000';
    ctx.strokeRect((cursor % cols) * cw + 2, Math.floor(cursor / cols) * ch + 2, cw - 4, ch - 4);
  }
}

function drawMainPalette() {
  const canvas = $('palette');
  drawPalette(canvas, state.z, canvas.matches(':focus-visible') ? state.cursor : -1);  // keyboard focus only
}

function describePalette() {  // the palette's accessible name: the keyboard's cell and its value
  localize($('palette'), {label: 'palette_label'},
           {i: state.cursor + 1, n: state.cfg.z_dim, v: state.z ? state.z[state.cursor].toFixed(2) : ''});
}

function sampleZ() {  // the model's prior (model.sample_z)
  const n = state.cfg.z_dim, z = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (state.cfg.z_dist === 'uniform_unsigned') z[i] = Math.random();
    else if (state.cfg.z_dist === 'normal01') {
      z[i] = Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
    } else z[i] = 2 * Math.random() - 1;
  }
  return z;
}

function setZ(z) {
  state.z = Float32Array.from(z);
  drawMainPalette();
  describePalette();
  syncSliders();
}

// ------------------------------------------------------------------ drawing faces

function paint(canvas, data) {  // [-1, 1] floats (H, W, c) -> canvas pixels, as utils.to_uint8
  const {output_height: h, output_width: w, c_dim: c} = state.cfg;
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(w, h);
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) {
      const v = data[p * c + (c === 1 ? 0 : k)];
      img.data[p * 4 + k] = Math.min(255, Math.max(0, Math.round((v + 1) / 2 * 255)));
    }
    img.data[p * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

async function render(z) {  // run the generator on one z; returns the float output
  const t0 = performance.now();
  const out = state.gen.run(z);
  const data = await out.data();
  out.dispose();
  state.timings.draw_ms = performance.now() - t0;
  return data;
}

// Draw z on the main canvas. Requests made while a draw runs collapse into one (the latest), so dragging a
// slider never queues up stale faces.
async function drawFace(z, {keep = false} = {}) {
  if (state.drawing) {
    state.pendingDraw = {z: Float32Array.from(z), keep: keep || (state.pendingDraw && state.pendingDraw.keep)};
    return state.pendingPromise;
  }
  state.drawing = true;
  let resolveAll;
  state.pendingPromise = new Promise((r) => { resolveAll = r; });
  try {
    let job = {z: Float32Array.from(z), keep};
    while (job) {
      const data = await render(job.z);
      paint($('face'), data);
      state.lastZ = job.z;
      state.lastOutput = data;
      if (job.keep) addToStrip(job.z, data);
      showTimings();
      job = state.pendingDraw;
      state.pendingDraw = null;
    }
  } catch (e) {
    showError(e);
  } finally {
    state.drawing = false;
    resolveAll();
  }
}

function showTimings() {
  showStatus('loaded', {load: Math.round(state.timings.load_ms), backend: state.backend});
  localize($('timing'), {text: 'timing'}, {h: state.cfg.output_height, w: state.cfg.output_width,
                                           draw: state.timings.draw_ms.toFixed(1)});
}

function addToStrip(z, data) {
  const canvas = document.createElement('canvas');
  canvas.className = 'strip-face';
  paint(canvas, data);
  const index = $('strip').childElementCount;
  canvas.dataset.z = JSON.stringify(Array.from(z));
  canvas.tabIndex = 0;
  canvas.setAttribute('role', 'button');
  localize(canvas, {label: 'strip_face'}, {n: index + 1});
  const use = () => { setZ(z); drawFace(state.z); };
  canvas.addEventListener('mouseenter', () => showPeek(canvas, z));
  canvas.addEventListener('mouseleave', hidePeek);
  canvas.addEventListener('focus', () => showPeek(canvas, z));
  canvas.addEventListener('blur', hidePeek);
  canvas.addEventListener('click', use);
  canvas.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); use(); }
  });
  $('strip').prepend(canvas);
}

function showPeek(anchor, z) {
  const peek = $('zpeek');
  drawPalette($('zpeek-canvas'), z);
  peek.dataset.z = JSON.stringify(Array.from(z));
  const r = anchor.getBoundingClientRect();
  peek.style.left = `${window.scrollX + r.left}px`;
  peek.style.top = `${window.scrollY + r.bottom + 4}px`;
  peek.hidden = false;
}

function hidePeek() { $('zpeek').hidden = true; }

// ------------------------------------------------------------------ palette painting, walk, sliders

function paletteCell(ev) {
  const canvas = $('palette'), r = canvas.getBoundingClientRect();
  const {cols, rows} = paletteShape(state.cfg.z_dim);
  const c = Math.floor((ev.clientX - r.left) / r.width * cols), row = Math.floor((ev.clientY - r.top) / r.height * rows);
  const i = row * cols + c;
  return c >= 0 && c < cols && row >= 0 && i < state.cfg.z_dim ? i : -1;
}

function setupPalette() {
  const canvas = $('palette');
  let painting = false;
  const paintCell = (i) => {
    if (i < 0 || state.z[i] === state.brush) return;
    state.z[i] = state.brush;
    setZ(state.z);
    drawFace(state.z);
  };
  const paintAt = (ev) => {
    const i = paletteCell(ev);
    if (i >= 0) state.cursor = i;  // the keyboard carries on from the last cell the pointer painted
    paintCell(i);
  };
  canvas.addEventListener('pointerdown', (ev) => {
    if (!state.gen) return;
    painting = true;
    canvas.setPointerCapture(ev.pointerId);
    paintAt(ev);
  });
  canvas.addEventListener('pointermove', (ev) => { if (painting) paintAt(ev); });
  // The keyboard: arrows move the outlined cell, Enter or Space paints it with the brush value.
  canvas.addEventListener('keydown', (ev) => {
    if (!state.gen) return;
    const {cols} = paletteShape(state.cfg.z_dim), n = state.cfg.z_dim;
    const moves = {ArrowLeft: -1, ArrowRight: 1, ArrowUp: -cols, ArrowDown: cols, Home: -n, End: n};
    if (ev.key in moves) {
      state.cursor = Math.min(n - 1, Math.max(0, state.cursor + moves[ev.key]));
      drawMainPalette();
      describePalette();
    } else if (ev.key === 'Enter' || ev.key === ' ') {
      paintCell(state.cursor);
    } else return;
    ev.preventDefault();
  });
  canvas.addEventListener('focus', drawMainPalette);
  canvas.addEventListener('blur', drawMainPalette);
  const stop = () => { painting = false; };
  canvas.addEventListener('pointerup', stop);
  canvas.addEventListener('pointercancel', stop);
  const brush = $('brush');
  brush.addEventListener('input', () => {
    state.brush = parseFloat(brush.value);
    $('brush-value').style.background = valueColor(state.brush);
    $('brush-value').textContent = state.brush.toFixed(2);
  });
}

function setupWalk() {
  const pick = (which) => {
    const z = Float32Array.from(state.z);
    if (which === 'a') state.zA = z; else state.zB = z;
    render(z).then((data) => paint($(which === 'a' ? 'face-a' : 'face-b'), data)).catch(showError);
    $('walk').disabled = !(state.zA && state.zB);
    $('walk').value = which === 'a' ? 0 : 100;
  };
  $('set-a').addEventListener('click', () => pick('a'));
  $('set-b').addEventListener('click', () => pick('b'));
  $('walk').addEventListener('input', () => {
    if (!(state.zA && state.zB)) return;
    const s = parseInt($('walk').value, 10) / 100;
    const z = state.zA.map((a, i) => a + s * (state.zB[i] - a));  // straight line in z, as the original's walks
    setZ(z);
    drawFace(z);
  });
}

function setupSliders() {
  const box = $('dims');
  box.textContent = '';
  const [lo, hi] = state.zRange;
  for (let i = 0; i < state.cfg.z_dim; i++) {
    const label = document.createElement('label');
    label.className = 'dim';
    const name = document.createElement('span');
    name.textContent = `z${i}`;
    const input = document.createElement('input');
    Object.assign(input, {type: 'range', min: String(lo), max: String(hi), step: String((hi - lo) / 200)});
    input.dataset.dim = String(i);
    input.addEventListener('input', () => {
      state.z[i] = parseFloat(input.value);
      drawMainPalette();
      describePalette();
      drawFace(state.z);
    });
    label.append(name, input);
    box.append(label);
  }
}

function syncSliders() {
  for (const input of $('dims').querySelectorAll('input')) input.value = String(state.z[parseInt(input.dataset.dim, 10)]);
}

// ------------------------------------------------------------------ start-up

async function chooseBackend(wanted) {
  if (tf.wasm) tf.wasm.setWasmPaths(new URL('tfjs/', location.href).href);
  const order = wanted && wanted !== 'auto' ? [wanted] : ['wasm', 'webgl', 'cpu'];
  for (const name of order) {
    try {
      if (await tf.setBackend(name)) { await tf.ready(); return tf.getBackend(); }
    } catch (e) { console.warn(`backend ${name} is unavailable:`, e); }
  }
  throw new Error(`no TensorFlow.js backend of ${order.join(', ')} works in this browser`);
}

function showError(e) {
  state.error = String(e && e.message ? e.message : e);
  console.error(e);
  showStatus('failed', {error: state.error});
}

async function start() {
  if (location.protocol === 'file:') {
    throw new Error('open this page over HTTP, not as a file (browsers block fetch and WebAssembly there): ' +
                    '`python main.py --serve --serve_dir <this folder>` or any static web server');
  }
  const t0 = performance.now();
  state.backend = await chooseBackend(params.get('backend') || 'auto');
  $('backend').value = params.get('backend') || 'auto';
  state.gen = await NFGenerator.load('', {
    // The phase-decomposed convolution is ~5x faster on wasm and webgl; the cpu backend's conv2dTranspose wins there.
    impl: params.get('impl') || (state.backend === 'cpu' ? 'transpose' : 'phase'),
    onProgress: (m) => showStatus('loading_bytes', {mb: (m.bytes / 1e6).toFixed(1)}),
  });
  state.cfg = state.gen.cfg;
  state.zRange = state.gen.manifest.z_range;
  // One warm-up run compiles the kernels (webgl shaders), so the first face the user asks for is fast.
  const warm = state.gen.run(new Float32Array(state.cfg.z_dim));
  await warm.data();  // wait for it: webgl queues work, which would otherwise land on the first face's time
  warm.dispose();
  state.timings.load_ms = performance.now() - t0;
  const brush = $('brush');
  Object.assign(brush, {min: String(state.zRange[0]), max: String(state.zRange[1]),
                        step: String((state.zRange[1] - state.zRange[0]) / 100), value: String(state.zRange[1])});
  brush.dispatchEvent(new Event('input'));
  setupSliders();
  setZ(sampleZ());
  const t1 = performance.now();
  await drawFace(state.z, {keep: true});
  state.timings.first_draw_ms = performance.now() - t1;
  // Start the walk from this face towards another random one, so the slider works at once.
  state.zA = Float32Array.from(state.z);
  state.zB = sampleZ();
  paint($('face-a'), state.lastOutput);
  paint($('face-b'), await render(state.zB));
  $('walk').disabled = false;
  for (const id of ['generate', 'random', 'set-a', 'set-b']) $(id).disabled = false;
}

function main() {
  let saved = null;
  try { saved = localStorage.getItem('neuralface-lang'); } catch (e) { /* storage blocked */ }
  setLanguage(params.get('lang') || saved || 'en');
  $('lang').addEventListener('click', () => setLanguage(i18n.lang === 'en' ? 'ko' : 'en'));
  $('generate').addEventListener('click', () => drawFace(state.z, {keep: true}));
  $('random').addEventListener('click', () => { setZ(sampleZ()); drawFace(state.z, {keep: true}); });
  $('backend').addEventListener('change', () => {
    params.set('backend', $('backend').value);
    location.search = params.toString();
  });
  setupPalette();
  setupWalk();
  loadFigures();
  window.nf = {state, setZ, drawFace, sampleZ, setLanguage, paletteShape, ready: null,
               idle: () => (state.drawing ? state.pendingPromise : Promise.resolve())};
  window.nf.ready = start().then(() => true, (e) => { showError(e); return false; });
}

main();
