// The figures (figures.json from the export): sections, plain captions in both languages, media fetched only
// when scrolled near, the training movie over the first epochs, and no motion for readers who asked for none.
'use strict';

const REDUCED_MOTION = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
const FRAME_MS = 900;  // one epoch of the training movie

// Which section a figure belongs to, from its figure name (the figures stage's "figure") and its file name.
function figureSection(entry) {
  const name = entry.file.split('/').pop().toLowerCase();
  const about = `${entry.figure || ''} ${entry.kind || ''}`.toLowerCase();
  const has = (s) => about.includes(s) || name.includes(s);
  if (has('turing')) return name.includes('key') || name.includes('answer') ? 'turing-key' : 'turing';
  if (has('progress') || has('training') || has('epoch')) return 'progress';
  if (has('average')) return 'average';
  if (has('walk')) return 'walk';
  if (has('change') || has('direction')) return 'change';
  return 'other';
}

// The plain caption of a figure: [TEXT key, args], or null when the page has no words of its own for it.
function captionKey(entry) {
  const figure = entry.figure || '', name = entry.file.split('/').pop();
  const epochs = entry.frames ? entry.frames.map((f) => f.epoch) : entry.epochs;
  if (epochs && epochs.length) return ['fig_training_epochs', {first: epochs[0], last: epochs[epochs.length - 1]}];
  if (figure === 'interpolation') return [name.includes('slerp') ? 'fig_interpolation_slerp' : 'fig_interpolation_linear', {}];
  if (figure === 'turing_test') return [/key|answer/.test(name) ? 'fig_turing_key' : 'fig_turing_test', {}];
  if (TEXT.en[`fig_${figure}`]) return [`fig_${figure}`, {}];
  if (figure.startsWith('change_')) return ['fig_change', {measure: figure.slice(7).replace(/_/g, ' ')}];
  if (figure.startsWith('direction_')) return ['fig_direction', {measure: figure.slice(10).replace(/_/g, ' ')}];
  return null;
}

function caption(entry, withSource) {
  const cap = document.createElement('figcaption');
  const key = captionKey(entry);
  const plain = document.createElement('span');
  if (key) localize(plain, {text: key[0]}, key[1]);
  else plain.textContent = entry.caption || '';
  cap.append(plain);
  if (withSource && key && entry.caption) {  // the figures stage's own words, as a small note under the plain one
    const note = document.createElement('small');
    note.className = 'source';
    note.append(localize(document.createElement('span'), {text: 'details'}), ' ', entry.caption);
    cap.append(note);
  }
  return cap;
}

function setAlt(img, entry) {
  const key = captionKey(entry);
  if (key) localize(img, {alt: key[0]}, key[1]);
  else img.alt = entry.caption || '';
}

// Media get their src only when they come near the viewport, so the page's first face is not kept waiting.
const lazy = new IntersectionObserver((seen) => {
  for (const s of seen) {
    if (!s.isIntersecting) continue;
    lazy.unobserve(s.target);
    s.target.nfLoad();
  }
}, {rootMargin: '200px 0px'});

function whenNear(el, load) {
  el.nfLoad = () => { if (!el.dataset.loaded) { el.dataset.loaded = '1'; load(); } };
  lazy.observe(el);
  return el;
}

// An <img>, or a muted <video> (autoplaying unless the reader prefers reduced motion) that falls back to the GIF of
// the same movie; a GIF waits behind a button when motion is to be reduced.
function mediaElement(entry, file = entry.file, fallback = entry.fallback) {
  if (/\.(mp4|webm)$/i.test(file)) {
    const video = document.createElement('video');
    Object.assign(video, {controls: true, loop: true, muted: true, playsInline: true, preload: 'none'});
    const key = captionKey(entry);
    if (key) localize(video, {label: key[0]}, key[1]);
    else video.setAttribute('aria-label', entry.caption || '');
    if (fallback) video.addEventListener('error', () => video.replaceWith(mediaElement(entry, fallback, null)));
    return whenNear(video, () => {
      video.src = file;
      if (!REDUCED_MOTION) { video.autoplay = true; video.play().catch(() => {}); }
    });
  }
  const img = document.createElement('img');
  img.loading = 'lazy';
  img.decoding = 'async';
  setAlt(img, entry);
  // A single 64-px face (the average face) is shown 3x, so it is not a speck beside the grids.
  img.addEventListener('load', () => { if (img.naturalWidth <= 128) img.style.width = `${3 * img.naturalWidth}px`; });
  if (REDUCED_MOTION && /\.gif$/i.test(file)) {
    const button = localize(document.createElement('button'), {text: 'show_animation'});
    button.type = 'button';
    button.className = 'show-animation';
    button.addEventListener('click', () => { img.src = file; img.dataset.loaded = '1'; button.replaceWith(img); });
    return button;
  }
  return whenNear(img, () => { img.src = file; });
}

// The training movie from per-epoch grids: one frame per epoch, the epoch written on it, play/pause and a slider.
function flipbook(entry) {
  const frames = entry.frames;
  const fig = document.createElement('figure');
  fig.className = 'flipbook';
  fig.id = 'training-movie';
  const box = document.createElement('div');
  box.className = 'frame-box';
  const img = document.createElement('img');
  img.id = 'movie-frame';
  const label = document.createElement('span');
  label.className = 'epoch-label';
  label.setAttribute('aria-hidden', 'true');  // the frame's alt says the same
  box.append(img, label);
  const controls = document.createElement('div');
  controls.className = 'movie-controls';
  const button = document.createElement('button');
  button.type = 'button';
  button.id = 'movie-play';
  const slider = document.createElement('input');
  Object.assign(slider, {type: 'range', min: '0', max: String(frames.length - 1), step: '1', value: '0'});
  slider.id = 'movie-epoch';
  localize(slider, {label: 'epoch_slider'});
  controls.append(button, slider);
  fig.append(box, controls, caption(entry, false));
  let index = 0, timer = null, loaded = false;
  const show = (i) => {
    index = i;
    const frame = frames[i];
    if (loaded) img.src = frame.file;
    localize(label, {text: 'epoch_label'}, {epoch: frame.epoch});
    localize(img, {alt: 'epoch_label'}, {epoch: frame.epoch});
    slider.value = String(i);
    slider.setAttribute('aria-valuetext', t('epoch_label', {epoch: frame.epoch}));
  };
  const setPlaying = (on) => {
    clearInterval(timer);
    timer = on ? setInterval(() => show((index + 1) % frames.length), FRAME_MS) : null;
    localize(button, {text: on ? 'pause' : 'play'});
    fig.dataset.playing = on ? '1' : '0';
  };
  button.addEventListener('click', () => setPlaying(!timer));
  slider.addEventListener('input', () => { setPlaying(false); show(parseInt(slider.value, 10)); });
  show(0);
  setPlaying(false);
  whenNear(fig, () => {
    loaded = true;
    for (const f of frames) new Image().src = f.file;  // fetch every frame now, so playing never waits
    show(index);
    if (!REDUCED_MOTION) setPlaying(true);
  });
  return fig;
}

function turingFigure(test, key) {
  const fig = document.createElement('figure');
  const img = mediaElement(test);
  img.id = 'turing-image';
  img.dataset.revealed = '0';
  const cap = caption(test, false);
  fig.append(img);
  if (key) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'reveal';
    button.id = 'turing-reveal';
    const set = (shown) => {
      img.dataset.loaded = '1';  // a click before the image scrolled into view decides what it shows
      img.dataset.revealed = button.dataset.revealed = shown ? '1' : '0';
      img.src = (shown ? key : test).file;
      setAlt(img, shown ? key : test);
      localize(button, {text: shown ? 'hide' : 'reveal'});
      localize(cap.firstChild, {text: shown ? 'fig_turing_key' : 'fig_turing_test'});
    };
    img.addEventListener('click', () => set(img.dataset.revealed !== '1'));
    button.addEventListener('click', () => set(img.dataset.revealed !== '1'));
    localize(button, {text: 'reveal'});
    fig.append(button);
  }
  fig.append(cap);
  return fig;
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
    const stem = e.kind === 'frames' ? 'frames:' + e.file : e.file.replace(/\.[^.]+$/, '');
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
    let fig;
    if (e.kind === 'frames' && Array.isArray(e.frames) && e.frames.length) fig = flipbook(e);
    else {
      fig = document.createElement('figure');
      fig.append(mediaElement(e), caption(e, section === 'other'));
    }
    const box = $(`fig-${section}`);
    box.querySelector('.fig-items').append(fig);
    box.hidden = false;
  }
  if (turing) {
    const box = $('fig-turing');
    box.querySelector('.fig-items').append(turingFigure(turing, turingKey));
    box.hidden = false;
  }
  $('figures').hidden = false;
}
