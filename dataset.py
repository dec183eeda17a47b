"""Training images: find them, decode each once (its fate decided before training), feed uint8 batches via tf.data."""
import glob
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import tensorflow as tf
from absl import logging

import utils
from preprocess import mnist
from preprocess.images import GRAY_MODES, IMAGE_EXTENSIONS, BadImage, load_rgb

CACHE_VERSION = 1  # bump when the decoding below changes what a cached image holds
MAX_PIXELS = 40_000_000  # the faces step's decompression-bomb limit


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


def list_images(data_dir, dataset, input_fname_pattern, warn_unmatched=True):
    """Sorted image paths under data_dir/dataset matching the pattern(s) (comma-separated, any case, ** recurses).

    Warns when the folder holds image files the pattern leaves out, with the pattern that would take them."""
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
    recursive = any("**" in p for p in patterns)
    others = {}
    for path in glob.glob(os.path.join(glob.escape(folder), "**" if recursive else "", "*"), recursive=recursive):
        ext = os.path.splitext(path)[1].lower()
        if ext in IMAGE_EXTENSIONS and path not in files and os.path.isfile(path):
            others[ext] = others.get(ext, 0) + 1
    if not files:
        exts = sorted(others)
        hint = f"; the folder holds {', '.join(exts)} files, try --input_fname_pattern '*{exts[0]}'" if exts else ""
        raise FileNotFoundError(f"no images match {shown}{hint}")
    if others and warn_unmatched:
        counts = ", ".join(f"{n} {ext}" for ext, n in sorted(others.items()))
        wider = ",".join(patterns + [f"*{ext}" for ext in sorted(others)])
        logging.warning("%s also holds %s image files that --input_fname_pattern=%s leaves out; "
                        "--input_fname_pattern='%s' would take them too", folder, counts, input_fname_pattern, wider)
    return files


# ---------------------------------------------------------------- decoding, once per file

def to_training_pixels(rgb, input_height, input_width, output_height, output_width, crop):
    """uint8 RGB photo -> uint8 RGB at the output size, with the original's crop semantics (center crop, resize)."""
    if crop:
        return utils.center_crop(rgb, input_height, input_width, output_height, output_width)
    return utils.resize(rgb, output_height, output_width)


def decode_for_training(path, load, max_pixels=MAX_PIXELS):
    """(uint8 RGB image at the output size, whether the file itself is single-channel); raises BadImage."""
    rgb, info = load_rgb(path, max_pixels)
    pixels = to_training_pixels(rgb, load["input_height"], load["input_width"], load["output_height"],
                                load["output_width"], load["crop"])
    return pixels, info["mode"] in GRAY_MODES


def load_image(path, input_height, input_width, output_height, output_width, crop, c_dim):
    """One file as the trainer sees it: float32 (output_height, output_width, c_dim) in [-1, 1]."""
    load = dict(input_height=input_height, input_width=input_width, output_height=output_height,
                output_width=output_width, crop=crop)
    pixels, _ = decode_for_training(path, load)
    return to_float(with_channels(pixels[None], c_dim))[0]


def with_channels(images_rgb, c_dim):
    """(N, H, W, 3) uint8 -> (N, H, W, c_dim): c_dim 1 takes the luma as OpenCV computes it (images that already
    have c_dim channels, such as MNIST's, pass unchanged)."""
    if c_dim == 3 or images_rgb.shape[-1] == c_dim:
        return images_rgb
    gray = np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in images_rgb]) if len(images_rgb) else \
        np.zeros(images_rgb.shape[:3], np.uint8)
    return gray[..., None]


def to_float(images_uint8):
    """uint8 pixels -> float32 in [-1, 1] (numpy or tf), the range the generator's tanh produces."""
    if isinstance(images_uint8, np.ndarray):
        return images_uint8.astype(np.float32) / 127.5 - 1.0
    return tf.cast(images_uint8, tf.float32) / 127.5 - 1.0


def _cache_key(files, load, max_pixels):
    h = hashlib.sha256(json.dumps({"version": CACHE_VERSION, "load": load, "max_pixels": max_pixels},
                                  sort_keys=True).encode())
    for path in files:
        try:
            st = os.stat(path)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError as e:
            stamp = f"error:{e.errno}"
        h.update(path.encode("utf-8", "surrogateescape") + b"\0" + stamp.encode() + b"\n")
    return h.hexdigest()[:20]


def _decode_one(args):
    path, load, max_pixels = args
    try:
        return decode_for_training(path, load, max_pixels), None
    except BadImage as e:
        return None, str(e)
    except Exception as e:  # an unforeseen decoder failure is this file's verdict, never the run's end
        return None, f"undecodable ({type(e).__name__}: {e})"[:200]


class PreparedImages:
    """The decoded training set: uint8 RGB pixels (in memory, or a memory map of the cache file), the files they
    came from in order, the files skipped with a reason, which kept files are single-channel, and for a labelled
    set (MNIST) each image's class."""

    def __init__(self, pixels, files, skipped, gray, labels=None):
        self.pixels, self.files, self.skipped, self.gray, self.labels = pixels, files, skipped, gray, labels

    def channels(self, probe=16):
        """1 when the first kept images are all single-channel files (the original looked at the first), else 3."""
        return 1 if len(self.gray) and all(self.gray[:probe]) else 3


def prepare_images(files, load, cache_dir, max_pixels=MAX_PIXELS, workers=None, memory_fraction=0.5):
    """Decode every file once at the training size, decide its fate (kept, or skipped with a reason) and cache
    both in cache_dir keyed by the file list, sizes, mtimes and load settings; later calls reuse the cache.
    The pixels are read into memory when they take under memory_fraction of the available memory, otherwise
    served from the cache file through a memory map."""
    os.makedirs(cache_dir, exist_ok=True)
    key = _cache_key(files, load, max_pixels)
    array_path, verdict_path = os.path.join(cache_dir, f"images_{key}.npy"), os.path.join(cache_dir, f"files_{key}.json")
    if not (os.path.isfile(array_path) and os.path.isfile(verdict_path)):
        _decode_all(files, load, max_pixels, workers, array_path, verdict_path)
        for old in glob.glob(os.path.join(glob.escape(cache_dir), "*_*.*")):  # earlier versions of this data
            if os.path.basename(old) not in (os.path.basename(array_path), os.path.basename(verdict_path)):
                os.unlink(old)
    verdict = utils.read_json(verdict_path)
    pixels = np.load(array_path, mmap_mode="r")
    if pixels.nbytes < memory_fraction * _available_memory():
        pixels = np.ascontiguousarray(pixels)
    else:
        logging.info("training images (%.0f MB) are read from %s through a memory map", pixels.nbytes / 2 ** 20,
                     array_path)
    return PreparedImages(pixels, verdict["kept"], [tuple(s) for s in verdict["skipped"]], verdict["gray"])


MNIST = "mnist"  # --dataset mnist: the four idx files in data_dir/mnist, with their labels, as the original read them


def prepare_mnist(folder):
    """MNIST as PreparedImages: uint8 (N, 28, 28, 1) digits and int64 labels in the original's shuffled order
    (preprocess.mnist.load_mnist); entry i is named mnist#i (the original's data_X[i]) where image sets list files."""
    images, labels = mnist.load_mnist(folder)
    return PreparedImages(images[..., None], [f"{MNIST}#{i}" for i in range(len(images))], [], [True] * len(images),
                          labels=labels)


def _decode_all(files, load, max_pixels, workers, array_path, verdict_path):
    h, w = load["output_height"], load["output_width"]
    tmp = f"{array_path}.{os.getpid()}.tmp.npy"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(files), h, w, 3))
    kept, skipped, gray = [], [], []
    workers = workers or os.cpu_count() or 1
    logging.info("decoding %d images once at %dx%d (cached for later runs and resumes)", len(files), h, w)
    try:
        with ThreadPoolExecutor(workers) as pool:  # PIL and OpenCV release the GIL while they decode and resize
            jobs = ((p, load, max_pixels) for p in files)
            for path, (result, reason) in zip(files, pool.map(_decode_one, jobs, chunksize=32)):
                if result is None:
                    skipped.append((path, reason))
                    continue
                out[len(kept)] = result[0]
                kept.append(path)
                gray.append(result[1])
        out.flush()
        del out
        _truncate_npy(tmp, len(kept), (h, w, 3))
        os.replace(tmp, array_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    utils.write_json(verdict_path, {"kept": kept, "skipped": skipped, "gray": gray})


def _truncate_npy(path, n, shape):
    """Shrink a .npy file of uint8 images to its first n images (skipped files left unused rows at the end)."""
    full = np.load(path, mmap_mode="r")
    if len(full) == n:
        return
    part = np.array(full[:n])
    del full
    with open(path, "wb") as f:
        np.save(f, part.reshape((n,) + shape))


def _available_memory():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 2 ** 30  # no /proc (macOS): assume a few GB


# ---------------------------------------------------------------- batches

def epoch_order(num_files, epoch, seed):
    """The image order of one epoch: a permutation fixed by (seed, epoch), so a resumed run sees the same batches."""
    return np.random.default_rng([seed, epoch]).permutation(num_files)


def index_batches(num_images, batch_size, seed, start_epoch, start_batch, end_epoch, max_batches=None):
    """(batches, B) image indices of every batch from (start_epoch, start_batch) to the end of end_epoch - 1,
    each epoch in its seeded order with the last partial batch dropped; at most max_batches of them."""
    per_epoch = num_images // batch_size
    parts, total = [], 0
    for epoch in range(start_epoch, end_epoch):
        order = epoch_order(num_images, epoch, seed)[:per_epoch * batch_size].reshape(per_epoch, batch_size)
        part = order[start_batch if epoch == start_epoch else 0:]
        parts.append(part)
        total += len(part)
        if max_batches is not None and total >= max_batches:
            break
    batches = np.concatenate(parts) if parts else np.zeros((0, batch_size), np.int64)
    return batches[:max_batches].astype(np.int32)


def replica_batches(batches, num_workers, worker, local_replicas):
    """The rows of `batches` (steps, global batch) that one worker's input pipeline yields: for every step, one
    row per local replica, in replica order (how a distributed iterator hands them out); replica r of the
    global batch takes columns [r * b, (r + 1) * b), so any split trains on the same global batches."""
    steps, global_batch = batches.shape
    replicas = num_workers * local_replicas
    per_replica = global_batch // replicas
    mine = batches.reshape(steps, replicas, per_replica)[:, worker * local_replicas:(worker + 1) * local_replicas]
    return mine.reshape(steps * local_replicas, per_replica)


# One map thread and two batches ahead: a batch is a gather from memory (~1 ms; the pipeline alone makes 78k img/s),
# so one thread keeps even a GPU fed, and on 2 cores it leaves the step its cores: measured no slower than
# AUTOTUNE's parallel map at 64x64 (BENCHMARKS.md, "Training loop overhead").
PREFETCH_BATCHES = 2


def make_dataset(pixels, batches, c_dim):
    """tf.data of uint8 (B, H, W, c_dim) batches: batches[i] indexes pixels (an array or a memory map)."""
    shape = (batches.shape[1],) + pixels.shape[1:3] + (c_dim,)

    def gather(idx):
        return with_channels(pixels[np.asarray(idx)], c_dim)

    def load(idx):
        images = tf.numpy_function(gather, [idx], tf.uint8, stateful=False)
        images.set_shape(shape)
        return images

    ds = tf.data.Dataset.from_tensor_slices(batches)
    return ds.map(load).prefetch(PREFETCH_BATCHES)


def make_labelled_dataset(pixels, labels, batches):
    """tf.data of (uint8 (B, H, W, C) images, int32 (B,) labels) batches: batches[i] indexes both, so the labels
    follow the images through the same seeded order, replica split and resume."""
    shape = (batches.shape[1],) + pixels.shape[1:]

    def gather(idx):
        idx = np.asarray(idx)
        return pixels[idx], labels[idx].astype(np.int32)

    def load(idx):
        images, y = tf.numpy_function(gather, [idx], (tf.uint8, tf.int32), stateful=False)
        images.set_shape(shape)
        y.set_shape(shape[:1])
        return images, y

    ds = tf.data.Dataset.from_tensor_slices(batches)
    return ds.map(load).prefetch(PREFETCH_BATCHES)
