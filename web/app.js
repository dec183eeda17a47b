// The Neural Face page: z palette, face strip, walks and sliders, figures, Korean/English text.
'use strict';

const TEXT = {
  en: {
    subtitle: 'Faces that do not exist, drawn by a neural network in your browser',
    demo_title: 'Draw a face', brush: 'Brush value',
    palette_hint: 'Each cell is one number of z. Click or drag to paint the brush value.',
    generate: 'Generate', random: 'Random face',
    strip_title: 'Faces drawn so far', strip_hint: 'Hover a face to see its z; click it to copy its z into the palette.',
    walk_title: 'Walk between two faces', set_a: 'A ← palette', set_b: 'B ← palette',
    dims_title: 'Every dimension of z', backend: 'Backend',
    about_title: 'How it works',
    about_1: 'A deep convolutional generative adversarial network (DCGAN) learns from tens of thousands of aligned face ' +
      'photos. Two networks train against each other: the discriminator tells real photos from generated ones, and the ' +
      'generator learns to fool it.',
    about_2: 'The generator turns z, a short list of random numbers (the palette above), into an image: a linear layer ' +
      'makes a small 4×4 map of features, and four transposed convolutions, each with batch normalisation and ReLU, ' +
      'double its size up to the final face. Nearby z give similar faces, so faces change smoothly as you walk through z.',
    about_3: 'This page runs that generator in your browser with TensorFlow.js, with the weights it learned (batch ' +
      'normalisation uses the statistics gathered during training). Nothing is sent to a server.',
    progress_title: 'Training, step by step', average_title: 'The average face (z = 0)',
    walk_fig_title: 'Walking through z', change_title: 'Changing one number of z',
    turing_title: 'Turing test: real or generated?',
    turing_hint: 'Real photos and generated faces are mixed below. Click the picture to reveal which is which.',
    reveal: 'Reveal the answer', hide: 'Hide the answer', other_title: 'More figures',
    footer: "A TensorFlow 2 / Keras 3 re-implementation of carpedm20's Neural Face.",
    loading: 'Loading the model…', loading_bytes: 'Loading the model ({mb} MB)…',
    loaded: 'Model loaded in {load} ms ({backend}); last face drawn in {draw} ms.',
    failed: 'The model could not be loaded: {error}', lang_button: 'KO',
  },
  ko: {
    subtitle: '존재하지 않는 얼굴을 신경망이 브라우저에서 그립니다',
    demo_title: '얼굴 그리기', brush: '붓 값',
    palette_hint: '칸 하나가 z의 숫자 하나입니다. 클릭하거나 드래그해서 붓 값을 칠하세요.',
    generate: '생성', random: '무작위 얼굴',
    strip_title: '지금까지 그린 얼굴', strip_hint: '얼굴 위에 마우스를 올리면 z가 보이고, 클릭하면 그 z가 팔레트로 복사됩니다.',
    walk_title: '두 얼굴 사이 걷기', set_a: 'A ← 팔레트', set_b: 'B ← 팔레트',
    dims_title: 'z의 모든 차원', backend: '백엔드',
    about_title: '작동 원리',
    about_1: 'DCGAN(심층 합성곱 생성적 적대 신경망)이 정렬된 얼굴 사진 수만 장으로 학습합니다. 두 신경망이 서로 경쟁합니다: ' +
      '판별자는 진짜 사진과 생성된 사진을 구별하고, 생성자는 판별자를 속이도록 배웁니다.',
    about_2: '생성자는 z(위 팔레트의 짧은 난수 목록)를 이미지로 바꿉니다: 선형 층이 작은 4×4 특징 맵을 만들고, 배치 정규화와 ' +
      'ReLU가 붙은 네 개의 전치 합성곱이 크기를 두 배씩 키워 얼굴을 완성합니다. 가까운 z는 비슷한 얼굴을 만들기 때문에 z를 따라 ' +
      '걸으면 얼굴이 부드럽게 바뀝니다.',
    about_3: '이 페이지는 학습된 가중치로 그 생성자를 TensorFlow.js로 브라우저에서 직접 실행합니다(배치 정규화는 학습 중 모은 ' +
      '통계를 씁니다). 서버로 아무것도 보내지 않습니다.',
    progress_title: '학습 과정', average_title: '평균 얼굴 (z = 0)',
    walk_fig_title: 'z 공간 걷기', change_title: 'z의 숫자 하나 바꾸기',
    turing_title: '튜링 테스트: 진짜일까, 생성된 것일까?',
    turing_hint: '아래에 진짜 사진과 생성된 얼굴이 섞여 있습니다. 그림을 클릭하면 정답이 보입니다.',
    reveal: '정답 보기', hide: '정답 숨기기', other_title: '다른 그림',
    footer: 'carpedm20의 Neural Face를 TensorFlow 2 / Keras 3로 다시 구현했습니다.',
    loading: '모델을 불러오는 중…', loading_bytes: '모델을 불러오는 중 ({mb} MB)…',
    loaded: '모델 로딩 {load} ms ({backend}), 마지막 얼굴 그리기 {draw} ms.',
    failed: '모델을 불러올 수 없습니다: {error}', lang_button: 'EN',
  },
};

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const state = {
  lang: 'en', gen: null, cfg: null, zRange: [-1, 1], z: null, brush: 1, backend: null,
  timings: {load_ms: null, draw_ms: null, first_draw_ms: null}, zA: null, zB: null,
  drawing: false, pendingDraw: null, statusKey: 'loading', statusArgs: {}, error: null,
};

// ------------------------------------------------------------------ language

function t(key, args = {}) {
  const s = (TEXT[state.lang] && TEXT[state.lang][key]) || TEXT.en[key] || key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in args ? args[k] : `{${k}}`));
}

function setLanguage(lang) {
  state.lang = TEXT[lang] ? lang : 'en';
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  $('lang').textContent = t('lang_button');
  for (const b of document.querySelectorAll('.reveal')) b.textContent = t(b.dataset.revealed === '1' ? 'hide' : 'reveal');
  showStatus(state.statusKey, state.statusArgs);
  try { localStorage.setItem('neuralface-lang', state.lang); } catch (e) { /* private mode: not kept */ }
}

function showStatus(key, args = {}) {
  state.statusKey = key; state.statusArgs = args;
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

function drawPalette(canvas, z) {
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
  drawPalette($('palette'), state.z);
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
  showStatus('loaded', {load: Math.round(state.timings.load_ms), backend: state.backend,
                        draw: state.timings.draw_ms.toFixed(1)});
  $('timing').textContent = `${state.cfg.output_height}×${state.cfg.output_width} · ${state.timings.draw_ms.toFixed(1)} ms`;
}

function addToStrip(z, data) {
  const canvas = document.createElement('canvas');
  canvas.className = 'strip-face';
  paint(canvas, data);
  const index = $('strip').childElementCount;
  canvas.dataset.z = JSON.stringify(Array.from(z));
  canvas.title = `#${index + 1}`;
  canvas.addEventListener('mouseenter', () => showPeek(canvas, z));
  canvas.addEventListener('mouseleave', hidePeek);
  canvas.addEventListener('click', () => {
    setZ(z);
    drawFace(state.z);
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
  const paintAt = (ev) => {
    const i = paletteCell(ev);
    if (i < 0 || state.z[i] === state.brush) return;
    state.z[i] = state.brush;
    setZ(state.z);
    drawFace(state.z);
  };
  canvas.addEventListener('pointerdown', (ev) => {
    if (!state.gen) return;
    painting = true;
    canvas.setPointerCapture(ev.pointerId);
    paintAt(ev);
  });
  canvas.addEventListener('pointermove', (ev) => { if (painting) paintAt(ev); });
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
      drawPalette($('palette'), state.z);
      drawFace(state.z);
    });
    label.append(name, input);
    box.append(label);
  }
}

function syncSliders() {
  for (const input of $('dims').querySelectorAll('input')) input.value = String(state.z[parseInt(input.dataset.dim, 10)]);
}

// ------------------------------------------------------------------ figures (from --visualize, via figures.json)

// Which section a figure belongs to, from its figure name (visualize.py's "figure") and its file name.
function figureSection(entry) {
  const name = entry.file.split('/').pop().toLowerCase();
  const about = `${entry.figure || ''} ${entry.kind || ''}`.toLowerCase();
  const has = (s) => about.includes(s) || name.includes(s);
  if (has('turing')) return name.includes('key') || name.includes('answer') ? 'turing-key' : 'turing';
  if (has('progress') || has('training')) return 'progress';
  if (has('average')) return 'average';
  if (has('walk')) return 'walk';
  if (has('change')) return 'change';
  return 'other';
}

// An <img>, or a <video> that falls back to the GIF of the same movie when the browser cannot play it.
function mediaElement(file, caption, fallback = null) {
  const isVideo = /\.(mp4|webm)$/i.test(file);
  const el = document.createElement(isVideo ? 'video' : 'img');
  if (isVideo) {
    Object.assign(el, {controls: true, loop: true, muted: true, autoplay: true, playsInline: true});
    if (fallback) el.addEventListener('error', () => el.replaceWith(mediaElement(fallback, caption)));
  } else {
    el.alt = caption || file;
    // A single 64-px face (the average face) is shown 3x, so it is not a speck beside the grids.
    el.addEventListener('load', () => { if (el.naturalWidth <= 128) el.style.width = `${3 * el.naturalWidth}px`; });
  }
  el.src = file;
  return el;
}

async function loadFigures() {
  let entries = [];
  try {
    const r = await fetch('figures.json');
    if (r.ok) entries = await r.json();
  } catch (e) { entries = []; }
  if (!Array.isArray(entries) || !entries.length) return;
  // One figure per stem: an .mp4 wins over the .gif of the same movie (which stays its fallback).
  const byStem = new Map();
  for (const e of entries) {
    if (!e || typeof e.file !== 'string') continue;
    const stem = e.file.replace(/\.[^.]+$/, '');
    const prev = byStem.get(stem);
    if (!prev) byStem.set(stem, e);
    else if (/\.(mp4|webm)$/i.test(e.file)) byStem.set(stem, {...e, fallback: prev.file});
    else if (/\.(mp4|webm)$/i.test(prev.file)) prev.fallback = e.file;
  }
  let turing = null, turingKey = null;
  for (const e of byStem.values()) {
    const section = figureSection(e);
    if (section === 'turing') { turing = e; continue; }
    if (section === 'turing-key') { turingKey = e; continue; }
    const box = $(`fig-${section}`);
    const fig = document.createElement('figure');
    fig.append(mediaElement(e.file, e.caption, e.fallback));
    if (e.caption) { const cap = document.createElement('figcaption'); cap.textContent = e.caption; fig.append(cap); }
    box.querySelector('.fig-items').append(fig);
    box.hidden = false;
  }
  if (turing) {
    const box = $('fig-turing'), fig = document.createElement('figure');
    const img = mediaElement(turing.file, turing.caption);
    img.id = 'turing-image';
    img.dataset.revealed = '0';
    fig.append(img);
    if (turingKey) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'reveal';
      button.id = 'turing-reveal';
      button.dataset.revealed = '0';
      const toggle = () => {
        const shown = img.dataset.revealed === '1' ? '0' : '1';
        img.dataset.revealed = button.dataset.revealed = shown;
        img.src = shown === '1' ? turingKey.file : turing.file;
        button.textContent = t(shown === '1' ? 'hide' : 'reveal');
      };
      img.addEventListener('click', toggle);
      button.addEventListener('click', toggle);
      button.textContent = t('reveal');
      fig.append(button);
    }
    if (turing.caption) {
      const cap = document.createElement('figcaption');
      cap.textContent = turing.caption;
      fig.append(cap);
    }
    box.querySelector('.fig-items').append(fig);
    box.hidden = false;
  }
  $('figures').hidden = false;
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
  $('lang').addEventListener('click', () => setLanguage(state.lang === 'en' ? 'ko' : 'en'));
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
