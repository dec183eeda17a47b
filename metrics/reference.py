"""The real side of the metrics: the training images prepared exactly as the trainer prepares them, and caches."""
import dataclasses
import hashlib
import json
import os

import numpy as np
from absl import logging

import dataset
import runs
import utils

DATA_KEYS = ("data_dir", "dataset", "input_fname_pattern")
LOAD_KEYS = ("input_height", "input_width", "crop", "max_pixels")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBSET_SEED = 0  # --metrics_ref_num's subset is the same whatever --seed is, so its cached features are reused


def weights_meta(weights_dir):
    """generator.json of a weights folder ({} for a training checkpoint)."""
    path = os.path.join(weights_dir, "generator.json") if weights_dir else None
    return utils.read_json(path) if path and os.path.isfile(path) else {}


def training_settings(src):
    """(the flags the generator was trained with, where they came from): the run's flags.json (a snapshot's too),
    else generator.json's train_flags (the shipped generator), else {} (the command line's flags then apply)."""
    run_dir = src.run_dir or runs.snapshot_run_dir(src.weights_dir)
    flags = runs.read_run_flags(run_dir) if run_dir else None
    if flags:
        return flags, os.path.join(run_dir, runs.FLAGS_FILE)
    meta = weights_meta(src.weights_dir)
    if meta.get("train_flags"):
        return meta["train_flags"], os.path.join(src.weights_dir, "generator.json") + " train_flags"
    return {}, "the command-line flags (the generator records no training flags)"


def resolve_settings(trained, cli, overrides):
    """Reference settings: the training's, with the flags typed on the command line (overrides) on top and the
    command line's defaults for anything the training did not record."""
    keys = DATA_KEYS + LOAD_KEYS
    s = {k: trained[k] if k in trained and trained[k] is not None else cli[k] for k in keys}
    s.update({k: v for k, v in overrides.items() if k in keys})
    s["input_width"] = s["input_width"] or s["input_height"]
    return s


def find_data_dir(data_dir):
    """A recorded relative data_dir is tried from here, then from the repository root (the shipped generator's
    ../shared/data was recorded there)."""
    if os.path.isabs(data_dir) or os.path.isdir(data_dir):
        return data_dir
    from_root = os.path.join(REPO_ROOT, data_dir)
    return from_root if os.path.isdir(from_root) else data_dir


@dataclasses.dataclass
class Reference:
    pixels: np.ndarray  # uint8 (N, H, W, c_dim) real crops at the generator's size: the training images
    files: list
    heldout_pixels: np.ndarray  # uint8 crops kept out of training (holdout.txt), or None
    heldout_files: list
    digest: str  # the file list (paths, sizes, mtimes) and the preprocessing
    description: str
    cache_dir: str

    def cached(self, name, compute):
        """compute() once per reference: its array is kept in cache_dir under the reference's digest."""
        path = os.path.join(self.cache_dir, f"{name}_{self.digest}.npy")
        if os.path.isfile(path):
            logging.info("using cached %s", path)
            return np.load(path)
        value = compute()
        utils.atomic_write(path, lambda f: np.save(f, value))
        return value


def digest_of(files, load, c_dim):
    h = hashlib.sha256(json.dumps({"load": load, "c_dim": c_dim}, sort_keys=True).encode())  # load has max_pixels
    for path in files:
        st = os.stat(path)
        h.update(f"{path}\0{st.st_size}:{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:16]


def read_holdout(run_dir):
    path = os.path.join(run_dir, runs.HOLDOUT_FILE) if run_dir else None
    if not path or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return {os.path.realpath(line.rstrip("\n")) for line in f if line.strip()}


def holdout_names(src):
    """The held-out file names a shipped generator carries in its generator.json (its run folder is elsewhere),
    or None: a run's own holdout.txt is read from its run folder instead."""
    if src.run_dir or runs.snapshot_run_dir(src.weights_dir):
        return None
    return weights_meta(src.weights_dir).get("holdout_files")


def load_reference(settings, cfg, cache_dir, ref_dir=None, ref_num=0, run_dir=None, exclude=(), heldout_names=None):
    """The reference images: every image of --metrics_ref DIR, or of the training folder less the run's held-out
    files (its holdout.txt, or heldout_names: the base names a shipped generator.json lists), decoded and cropped
    with the training's settings at the generator's size (a seeded subset of ref_num when given, drawn after
    leaving out the files in exclude)."""
    if not ref_dir and settings["dataset"] == dataset.MNIST:
        return _mnist_reference(settings, cfg, cache_dir, ref_num, run_dir, heldout_names)
    if ref_dir:
        files = dataset.list_images(os.path.expanduser(ref_dir), "", settings["input_fname_pattern"])
        where = ref_dir
    else:
        data_dir = find_data_dir(os.path.expanduser(settings["data_dir"]))
        files = dataset.list_images(data_dir, settings["dataset"], settings["input_fname_pattern"])
        where = os.path.join(data_dir, settings["dataset"])
    held, names = read_holdout(run_dir) or set(), set(heldout_names or ())

    def is_held(path):
        return os.path.realpath(path) in held or os.path.basename(path) in names

    heldout_files = [p for p in files if is_held(p)]
    if (held or names) and not heldout_files:
        logging.warning("%s lists no file of %s; the memorisation check holds out a seeded slice instead",
                        runs.HOLDOUT_FILE if held else "generator.json's holdout_files", where)
    excluded = set(exclude)
    files = [p for p in files if not is_held(p) and p not in excluded]
    if ref_num and ref_num < len(files):
        files = [files[i] for i in np.sort(np.random.default_rng(SUBSET_SEED).permutation(len(files))[:ref_num])]
    load = dict(input_height=settings["input_height"], input_width=settings["input_width"],
                output_height=cfg.output_height, output_width=cfg.output_width, crop=bool(settings["crop"]))
    max_pixels = settings["max_pixels"] or dataset.MAX_PIXELS
    data = dataset.prepare_images(files + heldout_files, load, os.path.join(cache_dir, "images"), max_pixels)
    if data.skipped:
        logging.warning("reference: skipped %d unreadable files of %s (e.g. %s: %s)", len(data.skipped), where,
                        *data.skipped[0])
    heldout_set = set(heldout_files)
    is_held = np.array([p in heldout_set for p in data.files], bool)
    index, held_index = np.nonzero(~is_held)[0], np.nonzero(is_held)[0]
    if len(index) < 2:
        raise ValueError(f"the reference {where} has {len(index)} usable images; metrics need at least 2")
    pixels = data.pixels if len(index) == len(data.files) else data.pixels[index]
    files = [data.files[i] for i in index]
    heldout = dataset.with_channels(data.pixels[held_index], cfg.c_dim) if len(held_index) else None
    crop = f"center crop {load['input_height']}x{load['input_width']}, " if load["crop"] else ""
    description = (f"{len(files)} images of {where} ({crop}resized to {cfg.output_height}x{cfg.output_width}"
                   f"{', ' + str(len(held_index)) + ' held out' if len(held_index) else ''})")
    digest = digest_of(files, {**load, "max_pixels": max_pixels}, cfg.c_dim)
    return Reference(pixels=dataset.with_channels(pixels, cfg.c_dim), files=files, heldout_pixels=heldout,
                     heldout_files=[data.files[i] for i in held_index], digest=digest, description=description,
                     cache_dir=cache_dir)


def _mnist_reference(settings, cfg, cache_dir, ref_num, run_dir, heldout_names=None):
    """MNIST's digits as the trainer read them (dataset.prepare_mnist), less the run's held-out ones (mnist#i)."""
    folder = os.path.join(find_data_dir(os.path.expanduser(settings["data_dir"])), dataset.MNIST)
    data = dataset.prepare_mnist(folder)
    held = {os.path.basename(p) for p in (read_holdout(run_dir) or ())} | set(heldout_names or ())
    is_held = np.array([name in held for name in data.files], bool)
    index = np.nonzero(~is_held)[0]
    if ref_num and ref_num < len(index):
        index = index[np.sort(np.random.default_rng(SUBSET_SEED).permutation(len(index))[:ref_num])]
    held_index = np.nonzero(is_held)[0]
    idx_files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
    h = hashlib.sha256(json.dumps({"mnist": [(os.path.basename(p), os.path.getsize(p)) for p in idx_files],
                                   "index": index.tolist()}).encode())
    return Reference(pixels=data.pixels[index], files=[data.files[i] for i in index],
                     heldout_pixels=data.pixels[held_index] if len(held_index) else None,
                     heldout_files=[data.files[i] for i in held_index], digest=h.hexdigest()[:16],
                     description=f"{len(index)} MNIST digits of {folder}"
                                 f"{', ' + str(len(held_index)) + ' held out' if len(held_index) else ''}",
                     cache_dir=cache_dir)
