"""Read and write MNIST's idx files (gzipped or not); load_mnist returns what the original's load_mnist trained on."""
import gzip
import os
import struct
import zlib

import numpy as np

import utils

# (images, labels) of each split, in the order the original concatenated them: train then t10k.
SPLITS = [("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
ORIGINAL_SEED = 547  # the original's load_mnist: np.random.seed(547) before shuffling the images and the labels
UBYTE = 0x08  # idx type code of unsigned bytes, the only one MNIST uses


class IdxError(ValueError):
    """An idx file that is corrupt, truncated or not what MNIST should be."""


def find_idx(folder, name):
    """The path of `name` in folder, or of name.gz when only that exists (the plain file wins: the original read it)."""
    for path in (os.path.join(folder, name), os.path.join(folder, name + ".gz")):
        if os.path.isfile(path):
            return path
    data_dir = os.path.dirname(os.path.abspath(folder))
    raise FileNotFoundError(f"MNIST file {name} (or {name}.gz) not found in {folder}: get the four files with "
                            f"`python -m preprocess download mnist --data_dir {data_dir}`")


def read_bytes(path):
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:  # EOFError: the gzip stream ends early (a cut download)
        raise IdxError(f"{path}: broken gzip file ({e}); delete it and download it again") from None


def read_idx(path, ndim):
    """The array in an idx file of unsigned bytes with `ndim` dimensions, checking its magic number and sizes."""
    data = read_bytes(path)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{path}: {len(data)} bytes, shorter than an idx header ({header}); the file is truncated")
    zero, kind, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or kind != UBYTE or dims != ndim:
        raise IdxError(f"{path}: magic number {data[:4].hex()} is not an idx file of unsigned bytes with {ndim} "
                       f"dimension(s) (expected 0000080{ndim})")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    body = len(data) - header
    expected = int(np.prod(shape, dtype=np.int64))
    if body != expected:
        problem = "truncated" if body < expected else "longer than its header says"
        raise IdxError(f"{path}: header says shape {shape} ({expected} bytes) but the file holds {body}: {problem}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_split(folder, images_name, labels_name):
    images = read_idx(find_idx(folder, images_name), 3)
    labels = read_idx(find_idx(folder, labels_name), 1)
    if images.shape[1:] != (28, 28):
        raise IdxError(f"{images_name} in {folder}: images are {images.shape[1]}x{images.shape[2]}, MNIST's are 28x28")
    if len(images) != len(labels):
        raise IdxError(f"{folder}: {images_name} holds {len(images)} images but {labels_name} {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise IdxError(f"{labels_name} in {folder}: label {labels.max()} is not a digit 0-9")
    return images, labels


def load_mnist(folder, shuffle_seed=ORIGINAL_SEED):
    """(images uint8 (N, 28, 28), labels int64 (N,)) of the train and t10k idx files in folder, concatenated in
    that order (N = 70000 for MNIST), then shuffled as the original did: its np.random.seed(547) + np.random.shuffle
    on the images and again on the labels is the permutation RandomState(547).permutation(N) applied to both, so
    sample batches and the sampled labels come out as the original's. shuffle_seed=None keeps the file order.
    Unlike the original (which skipped 16/8 bytes and assumed 60000/10000), the headers give the sizes, and are
    checked against the file's length."""
    parts = [load_split(folder, images_name, labels_name) for images_name, labels_name in SPLITS]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts]).astype(np.int64)
    if shuffle_seed is not None:
        order = np.random.RandomState(shuffle_seed).permutation(len(images))
        images, labels = images[order], labels[order]
    return images, labels


def write_idx(path, array):
    """Write a uint8 array as an idx file (gzipped when path ends with .gz), atomically; for tests and converters."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx takes a uint8 array with 1-255 dimensions, not {array.dtype} {array.shape}")
    payload = struct.pack(">HBB", 0, UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    if path.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)  # mtime 0: the same array always gives the same bytes
    utils.atomic_write(path, lambda f: f.write(payload))
