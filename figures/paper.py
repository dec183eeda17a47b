"""The DCGAN paper's figures: interpolation (Fig. 4), vector arithmetic (7), turn vector (8), memorisation check."""
import os

import cv2
import numpy as np
from absl import logging

import utils
from figures import face_measures
from figures.context import lerp, slerp
from figures.crops import load_crops, real_crops
from figures.draw import LABEL_MIN_CELL, cell_factor, enlarge, grid, hstack, labelled_rows, pad, pixels, text_band

INTERP_ROWS, INTERP_COLS = 8, 10
TURN_ROWS, TURN_COLS = 6, 10
NN_SHOWN = 5  # nearest training crops shown per face in the memorisation figure


def interpolation(ctx):
    z = ctx.prior("interpolation", 2 * INTERP_ROWS)
    t = np.linspace(0.0, 1.0, INTERP_COLS)
    for name, fn in (("linear", lerp), ("slerp", lambda a, b, t: slerp(a, b, t, ctx.center))):
        rows = np.concatenate([fn(z[2 * i], z[2 * i + 1], t) for i in range(INTERP_ROWS)])
        images = ctx.generate(rows, ctx.row_classes((INTERP_ROWS, INTERP_COLS)))
        ctx.out.png(f"interpolation_{name}.png", grid(pixels(images), (INTERP_ROWS, INTERP_COLS)),
                    f"DCGAN Fig. 4: {INTERP_ROWS} pairs of random z, {name} interpolation in {INTERP_COLS} steps"
                    f"{ctx.rows_note()}", figure="interpolation")


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
    z_panel = np.concatenate([text_band(f"= z arithmetic (+-{spread:g})", z_panel.shape[1], 18, align="center"),
                              z_panel])
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
    candidates = [p for p in all_paths if p not in held_set]
    if f["nn_pool"]:
        candidates = [candidates[i] for i in np.sort(ctx.rng("nn_pool").permutation(len(candidates))[:f["nn_pool"]])]
    logging.info("searching %d training crops for nearest neighbours", len(candidates))
    fake = ctx.generate(ctx.prior("nearest_neighbours", n))
    # float64: |a|^2 + |b|^2 - 2ab loses the small distances (an exact copy would not come out as 0) in float32.
    queries = np.concatenate([fake, held]).reshape(len(fake) + len(held), -1).astype(np.float64)
    best_d = np.full((len(queries), NN_SHOWN), np.inf)
    best_i = np.zeros((len(queries), NN_SHOWN), int)
    paths, skipped = [], []  # the crops searched (best_i indexes them) and the files that cannot be read
    chunk = 1024
    for start in range(0, len(candidates), chunk):
        crops, kept, bad = load_crops(ctx, candidates[start:start + chunk])
        skipped += bad
        if not kept:
            continue
        crops = crops.reshape(-1, queries.shape[1]).astype(np.float64)
        # RMS distance on [0, 1] pixels: ||a - b||^2 = |a|^2 + |b|^2 - 2ab, in [-1, 1] units, halved.
        d2 = (queries ** 2).sum(1)[:, None] + (crops ** 2).sum(1)[None] - 2 * queries @ crops.T
        d = np.sqrt(np.maximum(d2, 0) / queries.shape[1]) / 2
        all_d = np.concatenate([best_d, d], axis=1)
        all_i = np.concatenate([best_i, np.arange(len(paths), len(paths) + len(crops))[None].repeat(len(queries), 0)],
                               axis=1)
        keep = np.argsort(all_d, axis=1)[:, :NN_SHOWN]
        best_d, best_i = np.take_along_axis(all_d, keep, 1), np.take_along_axis(all_i, keep, 1)
        paths += kept
    if skipped:
        logging.warning("%d training crops cannot be read and were not searched, e.g. %s", len(skipped),
                        "; ".join(f"{p}: {why}" for p, why in skipped[:3]))
    if not paths:
        ctx.out.skip("nearest_neighbours", "no readable training crops to search")
        return
    shown = sorted(set(best_i.ravel().tolist()))
    neighbours = dict(zip(shown, pixels(load_crops(ctx, [paths[i] for i in shown])[0])))
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


def crops_and_samples(ctx):
    """A sheet of real training crops (as the trainer saw them) and a sheet of samples in the same layout, so a
    reader can compare the two at a glance."""
    n = 48
    real, _, _ = real_crops(ctx, n, "crops_and_samples")
    if real is None:
        return
    fake = ctx.generate(ctx.prior("crops_and_samples", len(real)))
    rows_cols = (6, 8) if len(real) == n else utils.image_manifold_size(len(real))
    ctx.out.png("training_crops.png", grid(pixels(real), rows_cols),
                f"{len(real)} random training crops, as the trainer saw them", figure="crops_and_samples")
    ctx.out.png("samples_sheet.png", grid(pixels(fake), rows_cols), f"{len(fake)} random generated faces",
                figure="crops_and_samples")


FIGURES = (crops_and_samples, interpolation, vector_arithmetic, turn_vector, nearest_neighbours)
