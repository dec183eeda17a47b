"""Real face crops as the trainer loads them, for the figures that set generated faces beside real ones."""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import dataset
from preprocess.images import BadImage

CHUNK = 64  # files decoded at a time while looking for n readable ones in random order


def load_settings(ctx):
    """(how the trainer turns a file into a crop at the generator's size, its pixel limit): the run's flags, or
    these flags for a generator without a run."""
    settings = ctx.src.run_flags() or ctx.f
    load = {k: settings.get(k, ctx.f[k]) for k in ("input_height", "input_width", "crop")}
    load.update(output_height=ctx.cfg.output_height, output_width=ctx.cfg.output_width)
    return load, settings.get("max_pixels", ctx.f["max_pixels"])


def load_crops(ctx, paths):
    """(crops in [-1, 1] at the generator's size and channels, decoded as the trainer decodes them; the paths
    they came from; [(path, reason)] for the files that cannot be used, as the trainer would skip them)."""
    load, max_pixels = load_settings(ctx)

    def decode(path):
        try:
            return dataset.decode_for_training(path, load, max_pixels)[0], None
        except BadImage as e:
            return None, str(e)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # PIL and OpenCV release the GIL while they decode
        results = list(pool.map(decode, paths))
    kept = [p for p, (pixels, _) in zip(paths, results) if pixels is not None]
    skipped = [(p, reason) for p, (pixels, reason) in zip(paths, results) if pixels is None]
    pixels = np.stack([x for x, _ in results if x is not None]) if kept else \
        np.zeros((0, load["output_height"], load["output_width"], 3), np.uint8)
    return dataset.to_float(dataset.with_channels(pixels, ctx.cfg.c_dim)), kept, skipped


def real_crops(ctx, n, figure):
    """(n real face crops ([-1, 1], the generator's size and channels) from --data_dir/--dataset, loaded as the
    trainer loads them, their paths, every image path of the dataset); Nones and a skip when there are none."""
    f = ctx.f
    try:
        paths = dataset.list_images(f["data_dir"], f["dataset"], f["input_fname_pattern"])
    except FileNotFoundError as e:
        ctx.out.skip(figure, f"no real faces to compare with: {e}")
        return None, None, None
    order = [paths[i] for i in ctx.rng(figure).permutation(len(paths))]
    crops, chosen = [], []
    for start in range(0, len(order), CHUNK):
        got, kept, _ = load_crops(ctx, order[start:start + CHUNK])
        crops.append(got[:n - len(chosen)])
        chosen += kept[:n - len(chosen)]
        if len(chosen) == n:
            break
    if not chosen:
        ctx.out.skip(figure, f"none of the images under {os.path.join(f['data_dir'], f['dataset'])} can be read")
        return None, None, None
    return np.concatenate(crops), chosen, paths
