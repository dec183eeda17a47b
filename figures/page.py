"""The Neural Face page's figures: the training movie, the average face, random walks, change grids, Turing test."""
import glob
import os
import re

import cv2
import keras
import numpy as np
from absl import logging

import utils
from figures import face_measures
from figures.context import sweep
from figures.crops import real_crops
from figures.draw import cell_factor, enlarge, framed, grid, labelled_rows, pixels, text_band
from figures.output import VIDEO_FPS

TRAINING_FPS = 10  # step grids; GIF delays are whole centiseconds: 100 ms
EPOCH_FPS = 2  # one grid per epoch: half a second each, so a movie of a few epochs can be followed
MAX_TRAINING_FRAMES = 400  # longer runs are subsampled evenly (the last grid is always kept)
GIF_PREVIEW_FRAMES, GIF_PREVIEW_SIDE = 24, 384  # the training GIF is a preview of the MP4, a few MB at most
CHANGE_ROWS, CHANGE_COLS, CHANGE_BASES = 10, 10, 3
DIRECTION_REACH = 1.5  # the direction grids sweep +/- this many half-ranges of the prior along a unit vector
WALK_CELLS = 16
FIRST_FEATURES = "g_h0_relu"  # the unconditional generator's first feature map (4x4x512 after BN and ReLU)
AVERAGE_DRAWS = 4096  # draws of z the average face's features are averaged over


def numbered_grids(folder, prefix):
    """[(number, path)] of the folder's <prefix>_<number>.png files, in number order."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(folder), f"{prefix}_*.png")):
        m = re.fullmatch(rf"{prefix}_(\d+)\.png", os.path.basename(path))
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def training_grids(src):
    """The training movie's frames: ([(number, path)], "epoch" or "step", the run's flags or None, the folders
    looked in). The fixed-z grid of every epoch's end when there are two or more, or no step grids (a run's
    samples/epoch_NNNN.png, or epochs/epoch_NNNN.png beside generator weights: the shipped generator carries its
    first epochs' there), else the grids every --sample_freq steps (samples/train_<step>.png, or training_frames/
    beside the weights)."""
    if src.run_dir:
        run_flags = src.run_flags() or {}
        epoch_dir = step_dir = src.output_dir(run_flags.get("sample_dir", "samples"))
    else:
        run_flags = None
        epoch_dir = os.path.join(src.weights_dir or ".", "epochs")
        step_dir = os.path.join(src.weights_dir or ".", "training_frames")
    folders = sorted({epoch_dir, step_dir})
    epochs, steps = numbered_grids(epoch_dir, "epoch"), numbered_grids(step_dir, "train")
    if len(epochs) >= 2 or (epochs and not steps):  # one epoch's grid alone makes no movie beside the step grids
        return epochs, "epoch", run_flags, folders
    return steps, "step", run_flags, folders


def step_label(step, run_flags):
    label = f"step {step:,}"
    if run_flags and run_flags.get("num_images") and run_flags.get("batch_size"):
        steps_per_epoch = run_flags["num_images"] // run_flags["batch_size"]  # num_images: after --train_size
        if steps_per_epoch:
            label += f"  epoch {step / steps_per_epoch:.2f}"
    return label


def evenly_spaced(n, most):
    """At most `most` indices into n items, evenly spaced, the first and the last kept."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int))


def gif_preview(frames):
    """(at most GIF_PREVIEW_FRAMES frames, evenly spaced, no larger than GIF_PREVIEW_SIDE; their indices): a GIF
    of hundreds of full-size sample grids runs to tens of MB, where the H.264 MP4 stays small."""
    keep = evenly_spaced(len(frames), GIF_PREVIEW_FRAMES)
    frames = [frames[i] for i in keep]
    scale = GIF_PREVIEW_SIDE / max(frames[0].shape[:2])
    if scale >= 1:
        return frames, keep
    return [cv2.resize(f, (round(f.shape[1] * scale), round(f.shape[0] * scale)), interpolation=cv2.INTER_AREA)
            for f in frames], keep


def training_progression(ctx):
    found, unit, run_flags, folders = training_grids(ctx.src)
    if not found:
        ctx.out.skip("training_progression", f"no training grids (epoch_<N>.png or train_<step>.png) in "
                     f"{' or '.join(folders)}: it needs a training run (--checkpoint_dir <run>/checkpoint), or "
                     "epochs/ or training_frames/ beside the weights")
        return
    if len(found) > MAX_TRAINING_FRAMES:
        found = [found[i] for i in evenly_spaced(len(found), MAX_TRAINING_FRAMES)]
    frames, size = [], None
    for number, path in found:
        image = utils.imread(path)
        size = size or image.shape[:2]
        if image.shape[:2] != size:  # a resumed run with another sample batch: keep one size for the video
            image = utils.resize(image, *size)
        label = f"epoch {number}" if unit == "epoch" else step_label(number, run_flags)
        band = text_band(label, image.shape[1], max(16, image.shape[0] // 16))
        frames.append(np.concatenate([band, image], axis=0))
    numbers = [n for n, _ in found]
    if unit == "epoch":
        caption = f"training progression: the fixed-z grid at the end of {len(frames)} epochs, " \
                  f"{numbers[0]}..{numbers[-1]}, the epoch above each frame"
    else:
        caption = f"training progression: the fixed-z grid at {len(frames)} steps, {numbers[0]}..{numbers[-1]}"
    fps = EPOCH_FPS if unit == "epoch" else TRAINING_FPS
    preview, keep = gif_preview(frames)
    note = ""
    if len(preview) < len(frames) or preview[0].shape != frames[0].shape:
        note = f" (a preview: {len(preview)} of {len(frames)} frames, {preview[0].shape[1]} px wide)"
    ctx.out.gif("training_progression.gif", preview, caption + note, fps=fps, figure="training_progression",
                **{unit + "s": [numbers[i] for i in keep]})
    ctx.out.mp4("training_progression.mp4", frames, caption, fps=fps, figure="training_progression",
                **{unit + "s": numbers})


def average_face(ctx):
    if ctx.cfg.y_dim:
        average_classes(ctx)
        return
    if ctx.f["average_face"] == "features":
        if FIRST_FEATURES in [layer.name for layer in ctx.src.generator.layers]:
            average_of_features(ctx)
            return
        logging.info("average face: this generator has no %s layer; drawing G(z = centre)", FIRST_FEATURES)
    z = np.full((1, ctx.cfg.z_dim), ctx.center, np.float32)
    ctx.out.png("average_face.png", pixels(ctx.generate(z))[0],
                f"the average face: G(z) with every z[i] = {ctx.center:g} ({ctx.f['z_center']} of {ctx.cfg.z_dist})",
                figure="average_face", z_value=ctx.center)


def average_of_features(ctx):
    """G's average face as StyleGAN's G(w-bar) is: the mean of G's first feature map (after its ReLU) over many
    draws of z, drawn by the rest of G. G(z = centre) is no such average in a ReLU generator: at the centre of the
    prior nearly every unit of that first layer is off (figures.json records how many), so only the biases draw."""
    head, rest = split_at_first_features(ctx.src.generator)
    z, batch = ctx.prior("average_face", AVERAGE_DRAWS).astype(np.float32), ctx.f["batch_size"]
    feats = np.concatenate([np.asarray(head(z[i:i + batch], training=False), np.float32)
                            for i in range(0, len(z), batch)])
    center = np.asarray(head(np.full((1, ctx.cfg.z_dim), ctx.center, np.float32), training=False))
    image = pixels(rest(feats.mean(0, keepdims=True)))[0]
    active_center, active_prior = float(np.mean(center > 0)), float(np.mean(feats > 0))
    ctx.out.png("average_face.png", image,
                f"the average face: G's first feature map ({'x'.join(map(str, feats.shape[1:]))} after ReLU) "
                f"averaged over {AVERAGE_DRAWS} draws of z and drawn by the rest of G, as StyleGAN's G(w-bar); "
                f"{active_prior:.1%} of those units are on for a draw of z, {active_center:.1%} at z = "
                f"{ctx.center:g} (--average_face center draws that)",
                figure="average_face", draws=AVERAGE_DRAWS, active_units_prior=active_prior,
                active_units_center=active_center, z_value=ctx.center)


def split_at_first_features(generator):
    """(head, rest): head(z) is G's first feature map (after its ReLU), rest(features) the image the remaining
    layers draw from it (moving BN statistics), so rest(head(z)) == G(z, training=False)."""
    head = keras.Model(generator.input, generator.get_layer(FIRST_FEATURES).output)
    names = [layer.name for layer in generator.layers]
    tail = generator.layers[names.index(FIRST_FEATURES) + 1:]

    def rest(features):
        x = features
        for layer in tail:
            x = layer(x, training=False)
        return np.asarray(x, np.float32)
    return head, rest


def average_classes(ctx):
    """A conditional generator's average face: G(z = centre) for every class, side by side."""
    classes = np.arange(ctx.cfg.y_dim)
    z = np.full((len(classes), ctx.cfg.z_dim), ctx.center, np.float32)
    ctx.out.png("average_classes.png", grid(pixels(ctx.generate(z, classes)), (1, len(classes))),
                f"the average of each class 0-{len(classes) - 1}: G(z, y) with every z[i] = {ctx.center:g} "
                f"({ctx.f['z_center']} of {ctx.cfg.z_dist})", figure="average_face", z_value=ctx.center)


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
    classes = None if not ctx.cfg.y_dim else np.tile(np.arange(cells) % ctx.cfg.y_dim, n)  # cell c: class c % y_dim
    images = pixels(ctx.generate(z.reshape(n * cells, -1), classes)).reshape((n, cells) + ctx.face_shape)
    frames = [grid(images[k]) for k in range(n)]
    caption = f"random walks: {cells} faces, each moving one random z dimension from {ctx.center:g} to " \
              f"{ctx.z_lo:g}, to {ctx.z_hi:g} and back"
    if ctx.cfg.y_dim:
        caption += f"; cell c is class c % {ctx.cfg.y_dim}"
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
    direction_grids(ctx, bases, effects, ranking)
    ctx.out.json("change_ranking.json", {
        "values": values.tolist(), "bases": bases.tolist(), "face_found_rate": face_rate,
        "no_face": {"count": int((~found["face_found"]).sum()), "of": int(found["face_found"].size)},
        "measures": {m: {**ranking[m], "description": face_measures.DESCRIPTIONS[m],
                         "effect_per_dim": [None if not np.isfinite(x) else round(float(x), 4) for x in effects[m]]}
                     for m in measures}}, "every z dimension's measured effect on each face measure")


def direction_grids(ctx, bases, effects, ranking):
    """Each measure's direction in z: the change grids' per-dimension slopes taken together as one vector (a fitted
    attribute vector, as the DCGAN paper's averaged smile vector), every base swept along it and measured again.
    One dimension moves a face little; all of them along the fitted direction move it much further."""
    t = np.linspace(-1.0, 1.0, CHANGE_COLS)
    reach = DIRECTION_REACH * (ctx.z_hi - ctx.z_lo) / 2  # the sweep runs base -/+ reach along the unit direction
    for m, e in effects.items():
        e = np.nan_to_num(e, nan=0.0)
        spread = ranking[m]["std"]
        if not (np.linalg.norm(e) > 0 and spread):
            ctx.out.skip(f"direction_{m}", f"no z dimension was measured to change {m}")
            continue
        v = (e / np.linalg.norm(e)).astype(np.float32)
        z = np.clip(bases[:, None, :] + (reach * t)[None, :, None] * v, ctx.z_lo, ctx.z_hi).astype(np.float32)
        images = pixels(ctx.generate(z.reshape(-1, ctx.cfg.z_dim))).reshape(z.shape[:2] + ctx.face_shape)
        measured = face_measures.measure_all(images.reshape((-1,) + ctx.face_shape))[m].reshape(z.shape[:2])
        slopes = [face_measures.effect(row, reach * t) / spread for row in measured]  # std per unit of z, as above
        labels = [f"face {i + 1}: {m} {x:+.2f}" if np.isfinite(x) else f"face {i + 1}: {m} n/a"
                  for i, x in enumerate(slopes)]
        fig = labelled_rows(list(images), labels, header=f"{m}: every z dimension along its fitted slope; "
                            f"{-reach:g} -> {reach:g} along the direction")
        ctx.out.png(f"direction_{m}.png", fig, f"the {m} direction: each row sweeps one face along the unit vector "
                    f"of all {ctx.cfg.z_dim} dimensions' slopes (clipped to the prior's range); label: measured slope "
                    f"in std of the measure per unit z (one dimension's best: {np.abs(e).max():.2f})",
                    figure=f"direction_{m}", predicted=float(np.linalg.norm(e)),
                    measured=[None if not np.isfinite(x) else round(float(x), 4) for x in slopes])


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


FIGURES = (training_progression, average_face, random_walk, change_grids, turing_test)
