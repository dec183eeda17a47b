"""Visualize mode: the original's options 0-4, the Neural Face page's figures and the DCGAN paper's, from one generator."""
import dataclasses
import glob
import os
import re
import time
import zlib

import cv2
import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np
from absl import logging

import dataset
import face_measures
import model
import utils

OPTIONS = (0, 1, 2, 3, 4)
INDEX_FILE = "figures.json"
GIF_FPS, VIDEO_FPS, TRAINING_FPS = 20, 25, 10  # GIF delays are whole centiseconds: 50, 40, 100 ms
MAX_TRAINING_FRAMES = 400  # longer runs are subsampled evenly (the last grid is always kept)
GIF_PREVIEW_FRAMES, GIF_PREVIEW_SIDE = 24, 384  # the training GIF is a preview of the MP4, a few MB at most
MIN_VIDEO_SIDE = 256  # small frames are enlarged (nearest neighbour) so players show them at a usable size
LABEL_MIN_CELL = 48  # labelled figures enlarge cells smaller than this so their text stays readable
CHANGE_ROWS, CHANGE_COLS, CHANGE_BASES = 10, 10, 3
WALK_CELLS = 16
INTERP_ROWS, INTERP_COLS = 8, 10
TURN_ROWS, TURN_COLS = 6, 10
NN_SHOWN = 5  # nearest training crops shown per face in the memorisation figure


# ---------------------------------------------------------------- drawing

def pixels(images):
    """Generator output in [-1, 1] -> uint8 (N, H, W, 3), grayscale repeated, so figures can draw in colour."""
    u8 = utils.to_uint8(np.asarray(images))
    return np.stack([face_measures.as_rgb(x) for x in u8]) if len(u8) else np.zeros((0, 1, 1, 3), np.uint8)


def enlarge(image, factor):
    return image if factor == 1 else cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


def cell_factor(images, min_side):
    return max(1, -(-min_side // min(images.shape[1:3])))


def text_scale(texts, width, height):
    """The largest font scale at which every text fits a width x height band (one size for a whole figure)."""
    scale = min(height / 30.0, 1.0)
    for text in texts:
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        if tw > width - 4:
            scale *= (width - 4) / tw
        if th + baseline > height - 4:  # descenders too, or a low band clips the letters
            scale *= (height - 4) / (th + baseline)
    return scale


def text_band(text, width, height, color=(255, 255, 255), background=(0, 0, 0), align="left", scale=None):
    """A (height, width, 3) strip with one line of text, scaled to fit."""
    band = np.full((height, width, 3), background, np.uint8)
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1
    scale = scale or text_scale([text], width, height)
    (tw, th), baseline = cv2.getTextSize(text, font, scale, thickness)
    x = 2 if align == "left" else max(2, (width - tw) // 2)
    cv2.putText(band, text, (x, (height + th - baseline) // 2), font, scale, color, thickness, cv2.LINE_AA)
    return band


def labelled_rows(rows, labels, label_width=None, header=None):
    """Stack rows of images (each (k, H, W, 3) uint8) into one figure with a text label left of each row."""
    factor = cell_factor(rows[0], LABEL_MIN_CELL)
    strips = [np.concatenate([enlarge(x, factor) for x in row], axis=1) for row in rows]
    row_h = strips[0].shape[0]
    label_width = label_width or max(120, 9 * max(len(s) for s in labels))
    scale = text_scale(labels, label_width, min(row_h, 40))
    body = np.concatenate([np.concatenate([text_band(lab, label_width, row_h, scale=scale), s], axis=1)
                           for lab, s in zip(labels, strips)], axis=0)
    if header:
        body = np.concatenate([text_band(header, body.shape[1], max(18, row_h // 3), align="center"), body], axis=0)
    return body


def framed(image, color, width):
    out = image.copy()
    out[:width], out[-width:], out[:, :width], out[:, -width:] = color, color, color, color
    return out


def pad(image, height, width, value=0):
    out = np.full((height, width) + image.shape[2:], value, image.dtype)
    out[:image.shape[0], :image.shape[1]] = image
    return out


def hstack(images, gap=8):
    h = max(x.shape[0] for x in images)
    parts = []
    for x in images:
        parts += [pad(x, h, x.shape[1]), np.zeros((h, gap, 3), np.uint8)]
    return np.concatenate(parts[:-1], axis=1)


def grid(images_u8, rows_cols=None):
    return utils.merge(images_u8, rows_cols or utils.image_manifold_size(len(images_u8)))


# ---------------------------------------------------------------- writing

def write_gif(path, frames, fps=GIF_FPS):
    """An endlessly looping GIF. GIF writers merge identical consecutive frames (adding their durations), so a
    reader may see fewer frames; the total duration is always len(frames) / fps."""
    with utils.atomic_path(path) as tmp:
        iio.imwrite(tmp, np.asarray(frames), extension=".gif", duration=1000.0 / fps, loop=0)


def video_frames(frames):
    """Enlarge small frames (nearest neighbour) and pad to multiples of 16, as H.264 in yuv420p needs."""
    frames = np.asarray(frames)
    factor = cell_factor(frames, MIN_VIDEO_SIDE)
    h, w = frames.shape[1] * factor, frames.shape[2] * factor
    hp, wp = -(-h // 16) * 16, -(-w // 16) * 16
    return [pad(enlarge(f, factor), hp, wp) for f in frames]


def write_mp4(path, frames, fps=VIDEO_FPS):
    """An H.264 MP4 (libx264, yuv420p) that browsers and players open, one video frame per input frame."""
    with utils.atomic_path(path) as tmp:
        with imageio_v2.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=8,
                                   pixelformat="yuv420p", macro_block_size=16, ffmpeg_log_level="error") as w:
            for frame in video_frames(frames):
                w.append_data(frame)


class Figures:
    """The files one visualize run writes (and the figures it skipped, with why), indexed in figures.json."""

    def __init__(self, out_dir):
        self.out_dir = out_dir
        os.makedirs(out_dir, exist_ok=True)
        self.written, self.skipped = [], []

    def _add(self, name, kind, caption, info):
        self.written.append({"file": name, "kind": kind, "caption": caption, **info})
        logging.info("wrote %s", os.path.join(self.out_dir, name))
        return os.path.join(self.out_dir, name)

    def png(self, name, image, caption, **info):
        utils.imwrite(os.path.join(self.out_dir, name), image)
        return self._add(name, "png", caption, {"size": list(image.shape[:2][::-1]), **info})

    def gif(self, name, frames, caption, fps=GIF_FPS, **info):
        write_gif(os.path.join(self.out_dir, name), frames, fps)
        return self._add(name, "gif", caption, {"frames": len(frames), "fps": fps, **info})

    def mp4(self, name, frames, caption, fps=VIDEO_FPS, **info):
        write_mp4(os.path.join(self.out_dir, name), frames, fps)
        return self._add(name, "mp4", caption, {"frames": len(frames), "fps": fps, **info})

    def json(self, name, obj, caption):
        utils.write_json(os.path.join(self.out_dir, name), obj)
        return self._add(name, "json", caption, {})

    def skip(self, figure, reason):
        self.skipped.append({"figure": figure, "reason": reason})
        logging.warning("skipped %s: %s", figure, reason)

    def write_index(self, meta):
        """figures.json; entries of earlier runs into the same folder are kept unless this run rewrote the file."""
        path = os.path.join(self.out_dir, INDEX_FILE)
        old = utils.read_json(path) if os.path.isfile(path) else {}
        mine = {e["file"] for e in self.written}
        kept = [e for e in old.get("figures", []) if e["file"] not in mine and
                os.path.exists(os.path.join(self.out_dir, e["file"]))]
        redone = {s["figure"] for s in self.skipped} | {e.get("figure") for e in self.written}
        skipped = [s for s in old.get("skipped", []) if s["figure"] not in redone] + self.skipped
        utils.write_json(path, {**meta, "figures": kept + self.written, "skipped": skipped})
        return path

    def table(self):
        lines = [f"{'file':<34} {'kind':<5} caption"]
        lines += [f"{e['file']:<34} {e['kind']:<5} {e['caption']}" for e in self.written]
        lines += [f"{'(skipped) ' + s['figure']:<40} {s['reason']}" for s in self.skipped]
        return "\n".join(lines)


# ---------------------------------------------------------------- z

@dataclasses.dataclass
class Context:
    """What every figure needs: the generator, its prior, the flags and the seed."""
    src: object
    f: dict
    seed: int
    out: Figures
    pool: dict = None  # measured samples shared by the vector arithmetic and turn figures
    sweeps: list = None  # option 3's sweeps, merged again by option 4

    @property
    def cfg(self):
        return self.src.cfg

    @property
    def z_lo(self):
        return model.z_range(self.cfg.z_dist)[0]

    @property
    def z_hi(self):
        return model.z_range(self.cfg.z_dist)[1]

    @property
    def face_shape(self):
        """The shape of one face as pixels() returns it (always 3 channels)."""
        return (self.cfg.output_height, self.cfg.output_width, 3)

    @property
    def center(self):
        """The 'z = 0' of the figures: the prior's mean (0, or 0.5 for uniform_unsigned) or literal zero."""
        return z_center(self.cfg.z_dist, self.f["z_center"])

    def rng(self, figure):
        """An independent random stream per figure, so each one is the same whichever others are made."""
        return np.random.default_rng([self.seed, zlib.crc32(figure.encode())])

    def prior(self, figure, n):
        return model.sample_z(self.cfg.z_dist, n, self.cfg.z_dim, self.rng(figure))

    def generate(self, z):
        return model.generate_images(self.src.generator, np.asarray(z, np.float32), self.f["batch_size"])


def z_center(z_dist, mode="mean"):
    """The centre of a prior ('mean': 0, or 0.5 for uniform_unsigned whose z = 0 is an edge) or 0 ('zero')."""
    if mode == "zero":
        return 0.0
    if mode != "mean":
        raise ValueError(f"--z_center must be mean or zero, got {mode!r}")
    lo, hi = model.z_range(z_dist)
    return (lo + hi) / 2.0


def lerp(z0, z1, t):
    """Straight-line interpolation; t is a 1-D array of fractions, the result has one row per t."""
    t = np.asarray(t, np.float64)[:, None]
    return ((1 - t) * z0 + t * z1).astype(np.float32)


def slerp(z0, z1, t, center=0.0):
    """Spherical interpolation about `center` (White 2016): keeps the norm a sample from the prior has, where
    the straight line passes through the low-norm middle. Falls back to lerp for (anti)parallel vectors."""
    a, b = np.asarray(z0, np.float64) - center, np.asarray(z1, np.float64) - center
    t = np.asarray(t, np.float64)[:, None]
    cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return lerp(z0, z1, t[:, 0])
    out = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega) + center
    return out.astype(np.float32)


def sweep(base, dim, values):
    """len(values) copies of base with z[dim] set to each value in turn."""
    z = np.tile(np.asarray(base, np.float32), (len(values), 1))
    z[:, dim] = values
    return z


# ---------------------------------------------------------------- the original's options 0-4

def option_dims(ctx):
    n = ctx.f["vis_dims"] or ctx.cfg.z_dim
    return list(range(min(n, ctx.cfg.z_dim)))


def option0(ctx):
    n = ctx.f["batch_size"]
    images = ctx.generate(ctx.prior("option0", n))
    ctx.out.png("option0_samples.png", grid(pixels(images)),
                f"option 0: {n} random samples, z ~ {ctx.cfg.z_dist}", figure="option0")


def option1(ctx):
    n = ctx.f["batch_size"]
    values = np.linspace(ctx.z_lo, ctx.z_hi, n, dtype=np.float32)
    rng = ctx.rng("option1")
    for d in option_dims(ctx):
        z = model.sample_z(ctx.cfg.z_dist, n, ctx.cfg.z_dim, rng)
        z[:, d] = values
        ctx.out.png(f"option1_dim{d:03d}.png", grid(pixels(ctx.generate(z))),
                    f"option 1: random z, z[{d}] swept {ctx.z_lo:g}..{ctx.z_hi:g} across the grid", figure="option1")


def option2(ctx):
    n = ctx.f["batch_size"]
    values = np.linspace(ctx.z_lo, ctx.z_hi, n, dtype=np.float32)
    rng = ctx.rng("option2")
    count = len(option_dims(ctx))
    dims = sorted(rng.choice(ctx.cfg.z_dim, count, replace=False).tolist())
    small = 0.2 * (ctx.z_hi - ctx.z_lo) / 2  # the original's U(-0.2, 0.2) base, scaled to this prior's range
    for d in dims:
        base = ctx.center + rng.uniform(-small, small, ctx.cfg.z_dim)
        frames = pixels(ctx.generate(sweep(base, d, values)))
        ctx.out.gif(f"option2_dim{d:03d}.gif", frames,
                    f"option 2: a small random z, z[{d}] swept {ctx.z_lo:g}..{ctx.z_hi:g}", figure="option2")


def option3_sweeps(ctx):
    """[(dim, frames)]: each dimension swept from the centre; made once for options 3 and 4."""
    if ctx.sweeps is None:
        n = ctx.f["batch_size"]
        values = np.linspace(ctx.z_lo, ctx.z_hi, n, dtype=np.float32)
        base = np.full(ctx.cfg.z_dim, ctx.center, np.float32)
        ctx.sweeps = [(d, pixels(ctx.generate(sweep(base, d, values)))) for d in option_dims(ctx)]
    return ctx.sweeps


def option3(ctx):
    for d, frames in option3_sweeps(ctx):
        ctx.out.gif(f"option3_dim{d:03d}.gif", frames,
                    f"option 3: z = {ctx.center:g}, z[{d}] swept {ctx.z_lo:g}..{ctx.z_hi:g}", figure="option3")


def option4(ctx):
    """Option 3's sweeps of up to 100 dimensions merged into one grid, played forwards then backwards."""
    sweeps = [frames for d, frames in option3_sweeps(ctx)][:100]
    n = len(sweeps[0])
    order = list(range(n)) + list(range(n - 1, -1, -1))  # range + reversed range: the Python 3 fix
    frames = [grid(np.stack([s[k] for s in sweeps])) for k in order]
    caption = f"option 4: {len(sweeps)} dimensions swept from z = {ctx.center:g} at once, ping-pong"
    fps = n * 2 / 8.0  # the original's 8-second loop
    ctx.out.gif("option4_merged.gif", frames, caption, fps=fps, figure="option4")
    ctx.out.mp4("option4_merged.mp4", frames, caption, fps=fps, figure="option4")  # a fraction of the GIF's size


OPTION_FUNCTIONS = {0: option0, 1: option1, 2: option2, 3: option3, 4: option4}


# ---------------------------------------------------------------- the page's figures

def training_frames_source(src):
    """(folder of train_*.png grids, the run's flags or None): a run's sample folder, else training_frames/
    beside generator weights (the shipped generator may carry its training grids there)."""
    if src.run_dir:
        run_flags = src.run_flags() or {}
        return src.output_dir(run_flags.get("sample_dir", "samples")), run_flags
    return os.path.join(src.weights_dir or ".", "training_frames"), None


def step_label(step, run_flags):
    label = f"step {step:,}"
    if run_flags and run_flags.get("num_images") and run_flags.get("batch_size"):
        steps_per_epoch = run_flags["num_images"] // run_flags["batch_size"]  # num_images: after --train_size
        if steps_per_epoch:
            label += f"  epoch {step / steps_per_epoch:.2f}"
    return label


def gif_preview(frames):
    """At most GIF_PREVIEW_FRAMES frames (evenly spaced, the last kept) no larger than GIF_PREVIEW_SIDE: a GIF of
    hundreds of full-size sample grids runs to tens of MB, where the H.264 MP4 stays small."""
    keep = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), GIF_PREVIEW_FRAMES)).round().astype(int))
    frames = [frames[i] for i in keep]
    scale = GIF_PREVIEW_SIDE / max(frames[0].shape[:2])
    if scale >= 1:
        return frames
    return [cv2.resize(f, (round(f.shape[1] * scale), round(f.shape[0] * scale)), interpolation=cv2.INTER_AREA)
            for f in frames]


def training_progression(ctx):
    folder, run_flags = training_frames_source(ctx.src)
    found = []
    for path in glob.glob(os.path.join(glob.escape(folder), "train_*.png")):
        m = re.fullmatch(r"train_(\d+)\.png", os.path.basename(path))
        if m:
            found.append((int(m.group(1)), path))
    if not found:
        ctx.out.skip("training_progression", f"no training grids (train_<step>.png) in {folder}: it needs a "
                     "training run (--checkpoint_dir <run>/checkpoint) or training_frames/ beside the weights")
        return
    found.sort()
    if len(found) > MAX_TRAINING_FRAMES:
        keep = np.unique(np.linspace(0, len(found) - 1, MAX_TRAINING_FRAMES).round().astype(int))
        found = [found[i] for i in keep]
    frames, size = [], None
    for step, path in found:
        image = utils.imread(path)
        size = size or image.shape[:2]
        if image.shape[:2] != size:  # a resumed run with another sample batch: keep one size for the video
            image = utils.resize(image, *size)
        band = text_band(step_label(step, run_flags), image.shape[1], max(16, image.shape[0] // 16))
        frames.append(np.concatenate([band, image], axis=0))
    caption = f"training progression: the fixed-z grid at {len(frames)} steps, {found[0][0]}..{found[-1][0]}"
    ctx.out.gif("training_progression.gif", gif_preview(frames), caption + " (preview: the MP4 has every frame at full "
                "size)", fps=TRAINING_FPS, figure="training_progression")
    ctx.out.mp4("training_progression.mp4", frames, caption, fps=TRAINING_FPS, figure="training_progression",
                steps=[s for s, _ in found])


def average_face(ctx):
    z = np.full((1, ctx.cfg.z_dim), ctx.center, np.float32)
    ctx.out.png("average_face.png", pixels(ctx.generate(z))[0],
                f"the average face: G(z) with every z[i] = {ctx.center:g} ({ctx.f['z_center']} of {ctx.cfg.z_dist})",
                figure="average_face", z_value=ctx.center)


def random_walk(ctx):
    """Each cell walks one random dimension from the centre to the range's low end, to the high end and back."""
    cells = min(WALK_CELLS, ctx.cfg.z_dim)
    dims = sorted(ctx.rng("random_walk").choice(ctx.cfg.z_dim, cells, replace=False).tolist())
    n = ctx.f["walk_frames"]
    wave = -np.sin(2 * np.pi * np.arange(n) / n)  # 0 -> -1 -> 0 -> +1 -> 0: down to the low end first
    # Scaled separately on each side, so the walk reaches both ends even from a centre that is not the middle.
    values = ctx.center + wave * np.where(wave < 0, ctx.center - ctx.z_lo, ctx.z_hi - ctx.center)
    z = np.full((n, cells, ctx.cfg.z_dim), ctx.center, np.float32)
    for c, d in enumerate(dims):
        z[:, c, d] = values
    images = pixels(ctx.generate(z.reshape(n * cells, -1))).reshape((n, cells) + ctx.face_shape)
    frames = [grid(images[k]) for k in range(n)]
    caption = f"random walks: {cells} faces, each moving one random z dimension from {ctx.center:g} to " \
              f"{ctx.z_lo:g}, to {ctx.z_hi:g} and back"
    ctx.out.gif("random_walk.gif", frames, caption, fps=VIDEO_FPS, figure="random_walk", dims=dims)
    ctx.out.mp4("random_walk.mp4", frames, caption, fps=VIDEO_FPS, figure="random_walk", dims=dims)


def dimension_effects(measured, t):
    """Rank z dimensions by one measure: measured is (dims, bases, len(t)), the measure of each swept face (NaN
    where no face was found). Returns (effect per dim, std of the measure): the least-squares slope of the
    measure against z[d], averaged over the bases, in standard deviations of the measure per unit of z."""
    ok = np.isfinite(measured)
    spread = float(np.std(measured[ok])) if ok.sum() > 2 else np.nan
    effects = np.full(measured.shape[0], np.nan)
    if not spread > 0:
        return effects, spread
    for d in range(measured.shape[0]):
        slopes = [face_measures.effect(row, t) for row in measured[d]]
        slopes = [x for x in slopes if np.isfinite(x)]
        if slopes:
            effects[d] = np.mean(slopes) / spread
    return effects, spread


def change_bases(ctx, n):
    """n base z whose faces dlib finds (so every row can be measured), from the first 8n prior samples;
    undetected ones fill up when too few are found."""
    candidates = ctx.prior("change", 8 * n)
    found = []
    for k in range(0, len(candidates), n):
        faces = pixels(ctx.generate(candidates[k:k + n]))
        found += [k + i for i, face in enumerate(faces) if face_measures.find_landmarks(face) is not None]
        if len(found) >= n:
            break
    chosen = (found + [i for i in range(len(candidates)) if i not in found])[:n]
    return candidates[chosen]


def change_grids(ctx):
    """The page's change1-6: rows that vary one z dimension each, ranked and labelled by what they measurably do."""
    cfg = ctx.cfg
    values = np.linspace(ctx.z_lo, ctx.z_hi, CHANGE_COLS, dtype=np.float32)
    bases = change_bases(ctx, CHANGE_BASES)
    z = np.stack([sweep(b, d, values) for d in range(cfg.z_dim) for b in bases])  # (dims*bases, cols, z_dim)
    images = pixels(ctx.generate(z.reshape(-1, cfg.z_dim))).reshape(z.shape[:2] + ctx.face_shape)
    logging.info("measuring %d faces with dlib's landmarks for the change grids", images.shape[0] * images.shape[1])
    found = face_measures.measure_all(images.reshape((-1,) + ctx.face_shape))
    measures = [m for m in face_measures.MEASURES if not (m == "saturation" and cfg.c_dim == 1)]
    if cfg.c_dim == 1:
        ctx.out.skip("change_saturation", "a grayscale model has no colour saturation to measure")
    effects, ranking = {}, {}
    for m in measures:
        effects[m], spread = dimension_effects(found[m].reshape(cfg.z_dim, CHANGE_BASES, CHANGE_COLS), values)
        ranking[m] = {"std": None if not np.isfinite(spread) else spread}
    face_rate = float(found["face_found"].mean())
    rows = min(CHANGE_ROWS, cfg.z_dim)

    def row_images(d):
        return images[d * CHANGE_BASES]  # the first base's sweep

    def label(d, m):
        return f"z{d}: {m} {effects[m][d]:+.2f}"

    for m in measures:
        e = effects[m]
        if np.isfinite(e).sum() < rows:
            ctx.out.skip(f"change_{m}", f"dlib found a face in only {face_rate:.0%} of the {found['face_found'].size} "
                         f"swept samples: too few to rank dimensions by {m}")
            continue
        top = [int(d) for d in np.argsort(-np.nan_to_num(np.abs(e), nan=-1))[:rows]]
        fig = labelled_rows([row_images(d) for d in top], [label(d, m) for d in top],
                            header=f"{m}: {face_measures.DESCRIPTIONS[m]}; z[d] {ctx.z_lo:g} -> {ctx.z_hi:g}")
        ctx.out.png(f"change_{m}.png", fig, f"the {rows} z dimensions that change {m} most, ranked; label: "
                    "slope in std of the measure per unit z", figure=f"change_{m}", dims=top)
    stacked = np.stack([np.nan_to_num(np.abs(effects[m]), nan=0.0) for m in measures])  # (measures, dims)
    if stacked.size:
        top = [int(d) for d in np.argsort(-stacked.max(axis=0))[:rows]]
        labels = [label(d, measures[int(stacked[:, d].argmax())]) for d in top]
        fig = labelled_rows([row_images(d) for d in top], labels,
                            header=f"strongest dimensions; z[d] {ctx.z_lo:g} -> {ctx.z_hi:g}")
        ctx.out.png("change_top.png", fig, f"the {rows} z dimensions with the largest measured effect, each labelled "
                    "with what it changes most", figure="change_top", dims=top)
    ctx.out.json("change_ranking.json", {
        "values": values.tolist(), "bases": bases.tolist(), "face_found_rate": face_rate,
        "no_face": {"count": int((~found["face_found"]).sum()), "of": int(found["face_found"].size)},
        "measures": {m: {**ranking[m], "description": face_measures.DESCRIPTIONS[m],
                         "effect_per_dim": [None if not np.isfinite(x) else round(float(x), 4) for x in effects[m]]}
                     for m in measures}}, "every z dimension's measured effect on each face measure")


def real_crops(ctx, n, figure):
    """(n real face crops ([-1, 1], the generator's size and channels) from --data_dir/--dataset, loaded as the
    trainer loads them, their paths, every image path of the dataset); Nones and a skip when there are none."""
    f = ctx.f
    try:
        paths = dataset.list_images(f["data_dir"], f["dataset"], f["input_fname_pattern"])
    except FileNotFoundError as e:
        ctx.out.skip(figure, f"no real faces to compare with: {e}")
        return None, None, None
    order = ctx.rng(figure).permutation(len(paths))
    chosen = []
    for i in order:
        if len(chosen) == n:
            break
        if dataset.check_image_file(paths[i]) is None:
            chosen.append(paths[i])
    if not chosen:
        ctx.out.skip(figure, f"none of the images under {os.path.join(f['data_dir'], f['dataset'])} can be read")
        return None, None, None
    return load_crops(ctx, chosen), chosen, paths


def load_crops(ctx, paths):
    """Real images as the trainer sees them: dataset.load_image with the run's crop settings (these flags' for a
    generator without a run) at the generator's size, in [-1, 1]."""
    import tensorflow as tf  # already loaded with the generator; imported here as only real crops need tf.data
    cfg = ctx.cfg
    settings = ctx.src.run_flags() or ctx.f
    load = {k: settings.get(k, ctx.f[k]) for k in ("input_height", "input_width", "crop")}

    def load_one(path):
        return dataset.load_image(path, load["input_height"], load["input_width"],
                                  cfg.output_height, cfg.output_width, load["crop"], cfg.c_dim)

    ds = tf.data.Dataset.from_tensor_slices(np.asarray(paths)).map(
        load_one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(256)
    return np.concatenate([b.numpy() for b in ds])


def turing_test(ctx):
    n = ctx.f["real_num"]
    real, real_paths, _ = real_crops(ctx, n, "turing_test")
    if real is None:
        return
    fake = ctx.generate(ctx.prior("turing_test", len(real)))
    faces = pixels(np.concatenate([real, fake]))
    is_real = np.array([True] * len(real) + [False] * len(fake))
    order = ctx.rng("turing_test_shuffle").permutation(len(faces))
    faces, is_real = faces[order], is_real[order]
    rows_cols = utils.image_manifold_size(len(faces))
    ctx.out.png("turing_test.png", grid(faces, rows_cols),
                f"Turing test: {len(real)} real crops and {len(fake)} generated faces, shuffled; which are which?",
                figure="turing_test")
    factor = cell_factor(faces, 64)
    keyed = []
    for face, r in zip(faces, is_real):
        big = framed(enlarge(face, factor), (0, 200, 0) if r else (230, 0, 0), max(2, factor))
        cv2.putText(big, "R" if r else "G", (4, big.shape[0] - 5), cv2.FONT_HERSHEY_SIMPLEX, big.shape[0] / 80,
                    (0, 255, 0) if r else (255, 40, 40), 2, cv2.LINE_AA)
        keyed.append(big)
    ctx.out.png("turing_test_answers.png", grid(np.stack(keyed), rows_cols),
                "Turing test answer key: green R = real crop, red G = generated", figure="turing_test")
    cells = []
    for k, (r, src_index) in enumerate(zip(is_real, order)):
        row, col = divmod(k, rows_cols[1])
        cell = {"row": row, "col": col, "real": bool(r)}
        if r:
            cell["file"] = os.path.relpath(real_paths[src_index], ctx.f["data_dir"])
        cells.append(cell)
    ctx.out.json("turing_test_answers.json", {"cells": cells}, "Turing test answers, cell by cell")


# ---------------------------------------------------------------- the DCGAN paper's figures

def interpolation(ctx):
    z = ctx.prior("interpolation", 2 * INTERP_ROWS)
    t = np.linspace(0.0, 1.0, INTERP_COLS)
    for name, fn in (("linear", lerp), ("slerp", lambda a, b, t: slerp(a, b, t, ctx.center))):
        rows = np.concatenate([fn(z[2 * i], z[2 * i + 1], t) for i in range(INTERP_ROWS)])
        ctx.out.png(f"interpolation_{name}.png", grid(pixels(ctx.generate(rows)), (INTERP_ROWS, INTERP_COLS)),
                    f"DCGAN Fig. 4: {INTERP_ROWS} pairs of random z, {name} interpolation in {INTERP_COLS} steps",
                    figure="interpolation")


def measured_pool(ctx):
    """pool_num random samples with their landmark measures (the exemplars of Figs. 7 and 8 come from here)."""
    if ctx.pool is None:
        z = ctx.prior("pool", ctx.f["pool_num"])
        images = ctx.generate(z)
        logging.info("measuring %d pool samples with dlib's landmarks", len(z))
        ctx.pool = {"z": z, "images": images, "measures": face_measures.measure_all(pixels(images))}
        sheet = pixels(images)
        factor = cell_factor(sheet, 64)
        numbered = []
        for i, face in enumerate(sheet):
            big = enlarge(face, factor)
            cv2.putText(big, str(i), (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
            numbered.append(big)
        ctx.out.png("pool_sheet.png", grid(np.stack(numbered)), f"{len(z)} numbered samples: pick exemplars for "
                    "--arith_indices from here", figure="pool")
        m = ctx.pool["measures"]
        ctx.out.json("pool_measures.json", {"z_seed": ctx.seed, **{k: [None if isinstance(x, float) and not
                     np.isfinite(x) else x for x in v.tolist()] for k, v in m.items()}},
                     "the pool samples' face measures (NaN = no face found: null)")
    return ctx.pool


def parse_indices(text, pool_num):
    """'1,2,3;4,5,6;7,8,9' -> three lists of sample indices (A - B + C)."""
    groups = [g for g in text.split(";")]
    if len(groups) != 3:
        raise ValueError(f"--arith_indices needs three groups separated by ';' (A;B;C for A - B + C), got {text!r}")
    out = []
    for g in groups:
        try:
            idx = [int(x) for x in g.split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"--arith_indices: {g!r} is not a comma-separated list of sample numbers") from None
        if not idx:
            raise ValueError(f"--arith_indices: every group needs at least one sample number, got {text!r}")
        bad = [i for i in idx if not 0 <= i < pool_num]
        if bad:
            raise ValueError(f"--arith_indices: {bad} are outside the pool sheet's 0..{pool_num - 1}")
        out.append(idx)
    return out


def vector_arithmetic(ctx):
    pool = measured_pool(ctx)
    smile = pool["measures"]["smile"]
    names = ("A", "B", "C")
    if ctx.f["arith_indices"]:
        groups = parse_indices(ctx.f["arith_indices"], len(pool["z"]))
        how = "chosen by --arith_indices"
    else:
        ok = np.flatnonzero(np.isfinite(smile))
        if len(ok) < 9:
            ctx.out.skip("vector_arithmetic", f"dlib found only {len(ok)} faces in the {len(smile)} pool samples "
                         "(9 needed); pick exemplars with --arith_indices 'a,a,a;b,b,b;c,c,c' from pool_sheet.png")
            return
        by_smile = ok[np.argsort(smile[ok])]
        groups = [by_smile[-3:][::-1].tolist(), by_smile[:3].tolist(), by_smile[3:6].tolist()]
        names = ("smiling", "neutral", "neutral, others")
        how = "chosen by the smile measure (mouth width / inter-ocular distance)"
    z_means = [pool["z"][g].mean(axis=0) for g in groups]
    z_result = z_means[0] - z_means[1] + z_means[2]
    spread = 0.25 * (ctx.z_hi - ctx.z_lo) / 2  # the paper's +-0.25 for U(-1, 1), scaled to this prior
    noise = ctx.rng("vector_arithmetic").uniform(-spread, spread, (8, ctx.cfg.z_dim)).astype(np.float32)
    neighbours = np.concatenate([z_result[None], z_result[None] + noise])
    result = pixels(ctx.generate(neighbours))
    mean_faces = pixels(ctx.generate(np.stack(z_means)))
    pixel_result = pixels(np.clip(sum(s * pool["images"][g].mean(axis=0)
                                      for s, g in zip((1, -1, 1), groups)), -1, 1)[None])
    faces = pixels(pool["images"])
    width = max(len(g) for g in groups)
    blank = np.zeros((width,) + faces.shape[1:], np.uint8)  # pads short groups so the mean faces line up
    rows = [np.concatenate([faces[g], blank[:width - len(g)], mean_faces[i:i + 1]]) for i, g in enumerate(groups)]
    sign = ("", "- ", "+ ")
    left = labelled_rows(rows, [f"{sign[i]}{names[i]} {groups[i]}" for i in range(3)],
                         header="exemplars | face of their mean z")
    factor = cell_factor(result, LABEL_MIN_CELL)
    z_panel = grid(np.stack([enlarge(x, factor) for x in result]), (3, 3))
    z_panel = np.concatenate([text_band(f"= z arithmetic (+-{spread:g})", z_panel.shape[1], 18, align="center"), z_panel])
    pix = enlarge(pixel_result[0], factor)
    pix = np.concatenate([text_band("= in pixels", max(pix.shape[1], 90), 18, align="center"),
                          pad(pix, pix.shape[0], max(pix.shape[1], 90))])
    ctx.out.png("vector_arithmetic.png", hstack([left, z_panel, pix]),
                f"DCGAN Fig. 7: mean z of {names[0]} - {names[1]} + {names[2]} ({how}), the result with 8 "
                "neighbours, and the same arithmetic on pixels", figure="vector_arithmetic",
                groups=groups, names=list(names))


def turn_vector(ctx):
    pool = measured_pool(ctx)
    yaw = pool["measures"]["yaw"]
    ok = np.flatnonzero(np.isfinite(yaw))
    k = min(8, len(ok) // 4)
    if k < 2:
        ctx.out.skip("turn_vector", f"dlib found only {len(ok)} faces in the {len(yaw)} pool samples; at least 8 "
                     "are needed to pick left- and right-facing ones (raise --pool_num)")
        return
    by_yaw = ok[np.argsort(yaw[ok])]
    left, right = by_yaw[:k], by_yaw[-k:]
    turn = pool["z"][right].mean(axis=0) - pool["z"][left].mean(axis=0)
    z = ctx.prior("turn_vector", TURN_ROWS)
    alphas = np.linspace(-1.0, 1.0, TURN_COLS)
    zs = np.concatenate([row[None] + alphas[:, None] * turn[None] for row in z])
    images = pixels(ctx.generate(zs))
    measured = face_measures.measure_all(images)["yaw"].reshape(TURN_ROWS, TURN_COLS)
    column_yaw = [None if np.all(np.isnan(c)) else round(float(np.nanmean(c)), 3) for c in measured.T]
    ctx.out.png("turn_vector.png", grid(images, (TURN_ROWS, TURN_COLS)),
                f"DCGAN Fig. 8: new faces plus a*turn, a = -1..1; turn = mean z of the {k} most right-facing minus "
                f"the {k} most left-facing pool samples (yaw from landmarks)", figure="turn_vector",
                left=left.tolist(), right=right.tolist(), mean_yaw_per_column=column_yaw)


def nearest_neighbours(ctx):
    """The paper's memorisation argument: generated faces beside their nearest training crops (RMS pixel distance),
    with held-out real crops' distances to the same crops for scale."""
    f = ctx.f
    n = f["nn_num"]
    held, held_paths, all_paths = real_crops(ctx, n, "nearest_neighbours")
    if held is None:
        return
    held_set = set(held_paths)
    paths = [p for p in all_paths if p not in held_set]
    if f["nn_pool"]:
        paths = [paths[i] for i in np.sort(ctx.rng("nn_pool").permutation(len(paths))[:f["nn_pool"]])]
    paths, skipped = dataset.scan_images(paths, max_warnings=5)
    if not paths:
        ctx.out.skip("nearest_neighbours", "no readable training crops to search")
        return
    logging.info("searching %d training crops for nearest neighbours", len(paths))
    fake = ctx.generate(ctx.prior("nearest_neighbours", n))
    # float64: |a|^2 + |b|^2 - 2ab loses the small distances (an exact copy would not come out as 0) in float32.
    queries = np.concatenate([fake, held]).reshape(len(fake) + len(held), -1).astype(np.float64)
    best_d = np.full((len(queries), NN_SHOWN), np.inf)
    best_i = np.zeros((len(queries), NN_SHOWN), int)
    chunk = 1024
    for start in range(0, len(paths), chunk):
        crops = load_crops(ctx, paths[start:start + chunk]).reshape(-1, queries.shape[1]).astype(np.float64)
        # RMS distance on [0, 1] pixels: ||a - b||^2 = |a|^2 + |b|^2 - 2ab, in [-1, 1] units, halved.
        d2 = (queries ** 2).sum(1)[:, None] + (crops ** 2).sum(1)[None] - 2 * queries @ crops.T
        d = np.sqrt(np.maximum(d2, 0) / queries.shape[1]) / 2
        all_d = np.concatenate([best_d, d], axis=1)
        all_i = np.concatenate([best_i, np.arange(start, start + len(crops))[None].repeat(len(queries), 0)], axis=1)
        keep = np.argsort(all_d, axis=1)[:, :NN_SHOWN]
        best_d, best_i = np.take_along_axis(all_d, keep, 1), np.take_along_axis(all_i, keep, 1)
    shown = sorted(set(best_i.ravel().tolist()))
    neighbours = dict(zip(shown, pixels(load_crops(ctx, [paths[i] for i in shown]))))
    query_px = pixels(np.concatenate([fake, held]))
    rows, labels = [], []
    for q in range(len(queries)):
        rows.append(np.stack([query_px[q]] + [neighbours[i] for i in best_i[q]]))
        kind = "generated" if q < len(fake) else "held-out real"
        labels.append(f"{kind} d={best_d[q, 0]:.3f}")
    fig = labelled_rows(rows, labels, label_width=170, header=f"face | its {NN_SHOWN} nearest of {len(paths)} training "
                        "crops (RMS pixel distance)")
    gen_d, real_d = best_d[:len(fake), 0], best_d[len(fake):, 0]
    ctx.out.png("nearest_neighbours.png", fig, f"memorisation check: generated faces' nearest training crops "
                f"(mean d {gen_d.mean():.3f}) vs held-out real crops' (mean d {real_d.mean():.3f})",
                figure="nearest_neighbours")
    ctx.out.json("nearest_neighbours.json", {
        "searched": len(paths), "skipped_unreadable": len(skipped),
        "generated_nn_distance": gen_d.round(4).tolist(), "held_out_real_nn_distance": real_d.round(4).tolist(),
        "held_out_files": [os.path.relpath(p, f["data_dir"]) for p in held_paths],
        "neighbour_files": [[os.path.relpath(paths[i], f["data_dir"]) for i in row] for row in best_i]},
        "nearest-neighbour distances of generated and held-out real faces")


PAGE_FIGURES = (training_progression, average_face, random_walk, change_grids, turing_test)
PAPER_FIGURES = (interpolation, vector_arithmetic, turn_vector, nearest_neighbours)


# ---------------------------------------------------------------- entry point

def selected_figures(figures, option):
    """[(name, function)] to run, in order, from --figures: a comma list of options, page, paper, all, or single
    figures by name (option0..option4, average_face, turn_vector...); empty = all, or just --option when given."""
    if option is not None and option not in OPTIONS:
        raise ValueError(f"--option must be one of {', '.join(map(str, OPTIONS))}, got {option}")
    every = {**{f"option{o}": OPTION_FUNCTIONS[o] for o in OPTIONS},
             **{fn.__name__: fn for fn in PAGE_FIGURES + PAPER_FIGURES}}
    groups = {"options": [f"option{o}" for o in (OPTIONS if option is None else [option])],
              "page": [fn.__name__ for fn in PAGE_FIGURES], "paper": [fn.__name__ for fn in PAPER_FIGURES]}
    groups["all"] = groups["options"] + groups["page"] + groups["paper"]
    chosen = set()
    for name in [x.strip() for x in (figures or ("options" if option is not None else "all")).split(",") if x.strip()]:
        if name not in groups and name not in every:
            raise ValueError(f"--figures: unknown {name!r}; use a comma list of {', '.join(groups)} or figure names: "
                             f"{', '.join(every)}")
        chosen.update(groups.get(name, [name]))
    return [(name, fn) for name, fn in every.items() if name in chosen]


def check_flags(f):
    for name, least in (("vis_dims", 0), ("real_num", 1), ("walk_frames", 2), ("pool_num", 9), ("nn_num", 1),
                        ("nn_pool", 0), ("batch_size", 2)):
        if f[name] < least:
            raise ValueError(f"--{name} must be at least {least}, got {f[name]}")


def run(src, f):
    """Write the chosen figures into the sample folder, index them in figures.json and print what was written."""
    check_flags(f)
    chosen = selected_figures(f["figures"], f["option"])
    z_center(src.cfg.z_dist, f["z_center"])  # validates the flag before any work
    seed = f["seed"] if f["seed"] is not None else int(np.random.SeedSequence().entropy % (2 ** 31))
    sample_dir = src.output_dir(f["sample_dir"])
    ctx = Context(src=src, f=f, seed=seed, out=Figures(sample_dir))
    if ctx.f["arith_indices"]:
        parse_indices(ctx.f["arith_indices"], f["pool_num"])  # fail on a typo before the slow figures
    logging.info("figures %s from %s into %s (seed %d, z ~ %s)", ", ".join(n for n, _ in chosen), src.description,
                 sample_dir, seed, src.cfg.z_dist)
    seconds = {}
    for name, fn in chosen:
        start = time.perf_counter()
        fn(ctx)
        seconds[name] = round(time.perf_counter() - start, 2)
    meta = {"generator": src.description, "step": src.step, "model": src.cfg.to_dict(), "seed": seed,
            "z_center": f["z_center"], "z_center_value": ctx.center, "seconds": seconds}
    index = ctx.out.write_index(meta)
    print(ctx.out.table())
    print(f"index: {index} (seed {seed})")
    return {"sample_dir": sample_dir, "index": index, "written": ctx.out.written, "skipped": ctx.out.skipped,
            "seed": seed}
