"""The original DCGAN-tensorflow visualize() options 0-4: samples, per-dimension grids and GIFs, the merged GIF."""
import numpy as np

import model
import utils
from figures.context import sweep
from figures.draw import grid, pixels

OPTIONS = (0, 1, 2, 3, 4)
MERGED_MAX = 100  # option 4 merges at most this many dimensions' sweeps (the original's 10 x 10)


def option_dims(ctx):
    n = ctx.f["vis_dims"] or ctx.cfg.z_dim
    return list(range(min(n, ctx.cfg.z_dim)))


def option0(ctx):
    n = ctx.f["batch_size"]
    images = ctx.generate(ctx.prior("option0", n), ctx.row_classes(utils.image_manifold_size(n), n))
    ctx.out.png("option0_samples.png", grid(pixels(images)),
                f"option 0: {n} random samples, z ~ {ctx.cfg.z_dist}{ctx.rows_note()}", figure="option0")


def option1(ctx):
    n = ctx.f["batch_size"]
    values = np.linspace(ctx.z_lo, ctx.z_hi, n, dtype=np.float32)
    rng = ctx.rng("option1")
    classes = ctx.row_classes(utils.image_manifold_size(n), n)
    for d in option_dims(ctx):
        z = model.sample_z(ctx.cfg.z_dist, n, ctx.cfg.z_dim, rng)
        z[:, d] = values
        ctx.out.png(f"option1_dim{d:03d}.png", grid(pixels(ctx.generate(z, classes))),
                    f"option 1: random z, z[{d}] swept {ctx.z_lo:g}..{ctx.z_hi:g} across the grid{ctx.rows_note()}",
                    figure="option1")


def option2(ctx):
    n = ctx.f["batch_size"]
    values = np.linspace(ctx.z_lo, ctx.z_hi, n, dtype=np.float32)
    rng = ctx.rng("option2")
    count = len(option_dims(ctx))
    dims = sorted(rng.choice(ctx.cfg.z_dim, count, replace=False).tolist())
    small = 0.2 * (ctx.z_hi - ctx.z_lo) / 2  # the original's U(-0.2, 0.2) base, scaled to this prior's range
    for k, d in enumerate(dims):
        base = ctx.center + rng.uniform(-small, small, ctx.cfg.z_dim)
        c = ctx.class_of(k)  # a conditional generator: one class for the whole sweep, the next for the next
        frames = pixels(ctx.generate(sweep(base, d, values), c))
        ctx.out.gif(f"option2_dim{d:03d}.gif", frames,
                    f"option 2: a small random z, z[{d}] swept {ctx.z_lo:g}..{ctx.z_hi:g}{ctx.class_note(c)}",
                    figure="option2")


def option3_sweeps(ctx):
    """[(dim, class, frames)]: each dimension swept from the centre; made once for options 3 and 4. A conditional
    generator sweeps the k-th dimension for the class of the row it takes in option 4's merged grid (class None
    for an unconditional one)."""
    if ctx.sweeps is None:
        n = ctx.f["batch_size"]
        values = np.linspace(ctx.z_lo, ctx.z_hi, n, dtype=np.float32)
        base = np.full(ctx.cfg.z_dim, ctx.center, np.float32)
        dims = option_dims(ctx)
        cols = utils.image_manifold_size(min(len(dims), MERGED_MAX))[1]
        classes = [ctx.class_of(k // cols) for k in range(len(dims))]
        ctx.sweeps = [(d, c, pixels(ctx.generate(sweep(base, d, values), c))) for d, c in zip(dims, classes)]
    return ctx.sweeps


def option3(ctx):
    for d, c, frames in option3_sweeps(ctx):
        ctx.out.gif(f"option3_dim{d:03d}.gif", frames,
                    f"option 3: z = {ctx.center:g}, z[{d}] swept {ctx.z_lo:g}..{ctx.z_hi:g}{ctx.class_note(c)}",
                    figure="option3")


def option4(ctx):
    """Option 3's sweeps of up to 100 dimensions merged into one grid, played forwards then backwards."""
    sweeps = [frames for d, c, frames in option3_sweeps(ctx)][:MERGED_MAX]
    n = len(sweeps[0])
    order = list(range(n)) + list(range(n - 1, -1, -1))  # range + reversed range: the Python 3 fix
    frames = [grid(np.stack([s[k] for s in sweeps])) for k in order]
    caption = f"option 4: {len(sweeps)} dimensions swept from z = {ctx.center:g} at once, ping-pong{ctx.rows_note()}"
    fps = n * 2 / 8.0  # the original's 8-second loop
    ctx.out.gif("option4_merged.gif", frames, caption, fps=fps, figure="option4")
    ctx.out.mp4("option4_merged.mp4", frames, caption, fps=fps, figure="option4")  # a fraction of the GIF's size


FUNCTIONS = {0: option0, 1: option1, 2: option2, 3: option3, 4: option4}
