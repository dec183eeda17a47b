"""Find the training images, skip unreadable ones, and feed them to the trainer through tf.data."""
import glob
import os

import numpy as np
import tensorflow as tf
from absl import logging

# Formats tf.io.decode_image reads, recognised by their first bytes (a cheap check run on every file).
MAGIC = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png", b"GIF87a": "gif", b"GIF89a": "gif", b"BM": "bmp"}
TAIL_BYTES = 4096


def case_insensitive(pattern):
    """Turn a glob pattern into one that matches letters in any case ('*.jpg' also finds 'A.JPG')."""
    out, in_class = [], False
    for ch in pattern:
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        out.append(f"[{ch.lower()}{ch.upper()}]" if ch.isalpha() and not in_class else ch)
    return "".join(out)


def list_images(data_dir, dataset, input_fname_pattern):
    """Sorted image paths under data_dir/dataset matching the pattern(s) (comma-separated, any case, ** recurses)."""
    folder = os.path.join(data_dir, dataset)
    patterns = [p.strip() for p in input_fname_pattern.split(",") if p.strip()]
    shown = ", ".join(os.path.join(folder, p) for p in patterns)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no images match {shown}: the folder {folder} does not exist "
                                "(set --data_dir and --dataset, or build it with `python -m preprocess faces`)")
    files = set()
    for p in patterns:
        files.update(glob.glob(os.path.join(glob.escape(folder), case_insensitive(p)), recursive=True))
    files = sorted(f for f in files if os.path.isfile(f))
    if not files:
        exts = sorted({os.path.splitext(f)[1].lower() for f in os.listdir(folder)} - {""})
        hint = f"; the folder holds {', '.join(exts)} files, try --input_fname_pattern '*{exts[0]}'" if exts else ""
        raise FileNotFoundError(f"no images match {shown}{hint}")
    return files


def check_image_file(path):
    """Why this file cannot be decoded (zero bytes, not an image, truncated), or None if it looks whole."""
    try:
        size = os.path.getsize(path)
        if size == 0:
            return "empty file"
        with open(path, "rb") as f:
            head = f.read(16)
            f.seek(max(0, size - TAIL_BYTES))
            tail = f.read()
    except OSError as e:
        return f"unreadable: {e.strerror or e}"
    kind = next((k for m, k in MAGIC.items() if head.startswith(m)), None)
    if kind is None:
        return "not a JPEG, PNG, GIF or BMP image"
    # A cut-off download lacks the end marker; such files make decode_jpeg/decode_png fail mid-epoch.
    if (kind == "jpeg" and b"\xff\xd9" not in tail) or (kind == "png" and b"IEND" not in tail):
        return _decode_error(path)
    return None


def _decode_error(path):
    """Decode with the same op the pipeline uses; the error text, or None when it decodes after all."""
    try:
        tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
        return None
    except (tf.errors.OpError, ValueError) as e:
        return f"undecodable ({getattr(e, 'message', str(e)).splitlines()[0][:120]})"


def scan_images(paths, max_warnings=50):
    """Split paths into decodable ones and [(path, reason)] skipped; warns naming each skipped file."""
    good, skipped = [], []
    for p in paths:
        reason = check_image_file(p)
        if reason is None:
            good.append(p)
        else:
            skipped.append((p, reason))
            if len(skipped) <= max_warnings:
                logging.warning("skipping %s: %s", p, reason)
    if len(skipped) > max_warnings:
        logging.warning("skipped %d more unreadable files (all are listed in the run's skipped_files.txt)",
                        len(skipped) - max_warnings)
    return good, skipped


def detect_channels(paths, probe=16):
    """1 when the first images are all single-channel (the original looked at the first image), else 3."""
    for p in paths[:probe]:
        image = tf.io.decode_image(tf.io.read_file(p), expand_animations=False)
        if image.shape[-1] != 1:
            return 3
    return 1


def load_image(path, input_height, input_width, output_height, output_width, crop, c_dim):
    """One file -> float32 (output_height, output_width, c_dim) in [-1, 1], with the original's crop semantics."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=c_dim, expand_animations=False, dtype=tf.float32)
    if crop:
        shape = tf.shape(image)
        crop_h, crop_w = tf.minimum(input_height, shape[0]), tf.minimum(input_width, shape[1])
        top = tf.cast(tf.round((shape[0] - crop_h) / 2), tf.int32)
        left = tf.cast(tf.round((shape[1] - crop_w) / 2), tf.int32)
        image = tf.image.crop_to_bounding_box(image, top, left, crop_h, crop_w)
    image = tf.image.resize(image, (output_height, output_width), method="area")
    image.set_shape((output_height, output_width, c_dim))
    return image * 2.0 - 1.0


def epoch_order(num_files, epoch, seed):
    """The file order of one epoch: a permutation fixed by (seed, epoch), so a resumed run sees the same batches."""
    return np.random.default_rng([seed, epoch]).permutation(num_files)


def make_dataset(files, batch_size, load_kwargs, epoch, seed, start_batch=0):
    """Batches of one epoch from batch number start_batch on; the last partial batch is dropped."""
    num_batches = len(files) // batch_size
    order = epoch_order(len(files), epoch, seed)[start_batch * batch_size:num_batches * batch_size]
    ds = tf.data.Dataset.from_tensor_slices(np.asarray(files)[order])
    ds = ds.map(lambda p: load_image(p, **load_kwargs), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # A file that passed the scan but still fails to decode is dropped (TF logs it) rather than ending the run.
    ds = ds.ignore_errors(log_warning=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
