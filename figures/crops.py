"""Real face crops as the trainer loads them, for the figures that set generated faces beside real ones."""
import os

import numpy as np

import dataset


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
