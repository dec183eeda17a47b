"""The visualize run: which figures --figures/--option choose, the flag checks, and making and indexing them."""
import time

import numpy as np
from absl import logging

from figures import options, page, paper
from figures.context import Context, z_center
from figures.output import Figures

# Figures that measure faces or set real face crops beside the samples, which a class-conditional generator (the
# original's MNIST model) does not draw; its run records them as skipped with the reason.
FACE_FIGURES = {
    "change_grids": "ranks z dimensions by dlib's facial landmarks",
    "turing_test": "sets real face crops beside generated faces",
    "vector_arithmetic": "picks smiling and neutral faces by dlib's landmarks",
    "turn_vector": "picks left- and right-facing faces by dlib's landmarks",
    "nearest_neighbours": "searches the training face crops (image files)",
    "crops_and_samples": "sets real face crops beside generated faces",
}


def selected_figures(figures, option):
    """[(name, function)] to run, in order, from --figures: a comma list of options, page, paper, all, or single
    figures by name (option0..option4, average_face, turn_vector...); empty = all, or just --option when given."""
    if option is not None and option not in options.OPTIONS:
        raise ValueError(f"--option must be one of {', '.join(map(str, options.OPTIONS))}, got {option}")
    every = {**{f"option{o}": options.FUNCTIONS[o] for o in options.OPTIONS},
             **{fn.__name__: fn for fn in page.FIGURES + paper.FIGURES}}
    groups = {"options": [f"option{o}" for o in (options.OPTIONS if option is None else [option])],
              "page": [fn.__name__ for fn in page.FIGURES], "paper": [fn.__name__ for fn in paper.FIGURES]}
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
        paper.parse_indices(ctx.f["arith_indices"], f["pool_num"])  # fail on a typo before the slow figures
    logging.info("figures %s from %s into %s (seed %d, z ~ %s)", ", ".join(n for n, _ in chosen), src.description,
                 sample_dir, seed, src.cfg.z_dist)
    seconds = {}
    for name, fn in chosen:
        if src.cfg.y_dim and name in FACE_FIGURES:
            ctx.out.skip(name, f"it {FACE_FIGURES[name]}; this generator is class-conditional (y_dim "
                         f"{src.cfg.y_dim}, the original's MNIST model) and draws no faces")
            continue
        start = time.perf_counter()
        fn(ctx)
        seconds[name] = round(time.perf_counter() - start, 2)
    meta = {"generator": src.description, "step": src.step, "model": src.cfg.to_dict(), "seed": seed,
            "z_center": f["z_center"], "z_center_value": ctx.center, "seconds": seconds}
    index = ctx.out.write_index(meta)
    if src.run_dir:  # a training run: its losses (and FID when measured) against step, beside the figures
        from metrics import plot
        plot.write_plot_if_possible(src.run_dir)
    print(ctx.out.table())
    print(f"index: {index} (seed {seed})")
    return {"sample_dir": sample_dir, "index": index, "written": ctx.out.written, "skipped": ctx.out.skipped,
            "seed": seed}
