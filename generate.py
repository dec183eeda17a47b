"""Sample mode (a grid and individual faces, or digits, from a trained generator) and export to .keras / SavedModel."""
import math
import os

import numpy as np
import tensorflow as tf
from absl import logging

import conditional
import model
import runs
import utils

DIGIT_GRID_COLUMNS = 10  # the conditional grid shows at most this many samples of each class


def sample(src, sample_dir, sample_num, seed, batch_size=64):
    """Write sample_grid.png (up to the first 64 faces) and sample_num faces as faces/face_NNNNN.png.

    The z of every face is kept in faces/z.npy (row i drew face i), drawn from the prior the model was
    trained with, so any face can be drawn again.
    """
    if sample_num < 1:
        raise ValueError(f"--sample_num must be at least 1, got {sample_num}")
    z = model.sample_z(src.cfg.z_dist, sample_num, src.cfg.z_dim, np.random.default_rng(seed))
    if src.cfg.y_dim:
        return sample_classes(src, sample_dir, z, seed, batch_size)
    images = model.generate_images(src.generator, z, batch_size)
    face_dir = os.path.join(sample_dir, "faces")
    os.makedirs(face_dir, exist_ok=True)
    pixels = utils.to_uint8(images)
    for i, image in enumerate(pixels):
        utils.imwrite(os.path.join(face_dir, f"face_{i:05d}.png"), image)
    utils.atomic_write(os.path.join(face_dir, "z.npy"), lambda f: np.save(f, z))
    grid = images[:64]
    grid_path = os.path.join(sample_dir, "sample_grid.png")
    utils.save_images(grid, utils.image_manifold_size(len(grid)), grid_path)
    logging.info("wrote %s and %d faces in %s from %s (z ~ %s, seed %s)", grid_path, sample_num, face_dir,
                 src.description, src.cfg.z_dist, seed)
    return {"grid": grid_path, "faces_dir": face_dir, "num_faces": sample_num}


def sample_classes(src, sample_dir, z, seed, batch_size=64):
    """A conditional generator's sample mode: image i is of class i % y_dim (so any number is balanced), written as
    digits/digit_NNNNN.png with its z in digits/z.npy and its class in digits/y.npy (row i drew image i); and
    sample_grid.png with one row per class, 0 at the top, of its first samples in order (at most 10 a row)."""
    y_dim = src.cfg.y_dim
    labels = np.arange(len(z)) % y_dim
    images = model.generate_images(src.generator, z, batch_size, conditional.one_hot(labels, y_dim))
    digit_dir = os.path.join(sample_dir, "digits")
    os.makedirs(digit_dir, exist_ok=True)
    for i, image in enumerate(utils.to_uint8(images)):
        utils.imwrite(os.path.join(digit_dir, f"digit_{i:05d}.png"), image)
    utils.atomic_write(os.path.join(digit_dir, "z.npy"), lambda f: np.save(f, z))
    utils.atomic_write(os.path.join(digit_dir, "y.npy"), lambda f: np.save(f, labels))
    rows = min(y_dim, len(z))
    cols = min(DIGIT_GRID_COLUMNS, math.ceil(len(z) / y_dim))
    cells = np.full((rows * cols,) + images.shape[1:], -1.0, np.float32)  # a class with fewer samples: black
    for c in range(rows):
        mine = images[labels == c][:cols]
        cells[c * cols:c * cols + len(mine)] = mine
    grid_path = os.path.join(sample_dir, "sample_grid.png")
    utils.save_images(cells, (rows, cols), grid_path)
    logging.info("wrote %s (one row per class 0-%d) and %d images in %s from %s (z ~ %s, seed %s)", grid_path,
                 rows - 1, len(z), digit_dir, src.description, src.cfg.z_dist, seed)
    return {"grid": grid_path, "faces_dir": digit_dir, "num_faces": len(z), "labels": labels}


def export(src, export_dir, dtype="float32"):
    """Write the generator as generator.keras, a SavedModel (serve: z -> images), and generator.npz/.json.

    The first two load without this code: keras.saving.load_model(path) and tf.saved_model.load(path).serve(z).
    """
    os.makedirs(export_dir, exist_ok=True)
    keras_path = os.path.join(export_dir, "generator.keras")
    tmp = os.path.join(export_dir, ".generator.tmp.keras")
    # Keras's own batch-norm layer in the saved files (the weights copied over), so they load without this code.
    portable = model.make_generator(src.cfg, portable=True)
    portable.set_weights(src.generator.get_weights())
    portable.save(tmp)
    os.replace(tmp, keras_path)
    saved_model_dir = os.path.join(export_dir, "saved_model")
    tmp_dir = saved_model_dir + ".tmp"
    if os.path.isdir(tmp_dir):
        tf.io.gfile.rmtree(tmp_dir)
    portable.export(tmp_dir, format="tf_saved_model", verbose=False)
    if os.path.isdir(saved_model_dir):
        tf.io.gfile.rmtree(saved_model_dir)
    os.replace(tmp_dir, saved_model_dir)
    # The run's flags travel with the weights, so an exported generator still says how it was trained.
    run_flags = src.run_flags()
    meta = {"train_flags": run_flags} if run_flags else {}
    run_dir = src.run_dir or runs.snapshot_run_dir(src.weights_dir)
    if src.weights_dir:  # a snapshot keeps its epoch and images seen
        old = utils.read_json(os.path.join(src.weights_dir, model.META_FILE))
        meta.update({k: old[k] for k in ("epoch", "images_seen") if k in old})
    if run_dir:  # and whatever was measured of this generator, from its run's metrics.jsonl
        from metrics import runner
        measured = [r for r in runner.read_rows(os.path.join(run_dir, runner.METRICS_FILE)) if r.get("step") == src.step]
        if measured:
            meta["metrics"] = {r["metric"]: {"value": r["value"], "results": r["results"], "seed": r["seed"],
                                             "reference_images": r.get("reference_images")} for r in measured}
    model.save_generator_weights(src.generator, src.cfg, export_dir, dtype=dtype, step=src.step,
                                 source=src.description, **meta)
    logging.info("exported %s to %s (generator.keras, saved_model/, generator.npz)", src.description, export_dir)
    return {"keras": keras_path, "saved_model": saved_model_dir,
            "weights": os.path.join(export_dir, model.WEIGHTS_FILE)}

