"""Image I/O, center crop and pixel transforms, sample grids, and atomic file writes."""
import contextlib
import json
import math
import os
import tempfile

import cv2
import numpy as np


# ---------------------------------------------------------------- files

_UMASK = os.umask(0)
os.umask(_UMASK)

def atomic_write(path, write_fn, mode="wb"):
    """Call write_fn(file) on a temp file beside `path`, then rename it over `path` (never a half-written file)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions a plain open() would
        with os.fdopen(fd, mode) as f:
            write_fn(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path):
    """For writers that need a file name (video encoders, browsers): yield a temp path beside `path`, with its
    extension, and rename it over `path` when the block succeeds; on failure only the temp file is removed."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(path))
    tmp = os.path.join(directory, f".{stem}.{os.getpid()}.tmp{ext}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path, obj):
    atomic_write(path, lambda f: json.dump(obj, f, indent=2, sort_keys=True, default=str), mode="w")


def read_json(path):
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------- images

def imread(path, grayscale=False):
    """Read an image file as uint8 RGB (H, W, 3), or (H, W) with grayscale=True; raises on unreadable files."""
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError(f"cannot decode image {path}")
    return image if grayscale else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def center_crop(x, crop_h, crop_w=None, resize_h=64, resize_w=64):
    """The original's center_crop: take crop_h x crop_w from the middle, then resize (clipped to the image)."""
    crop_w = crop_h if crop_w is None else crop_w
    h, w = x.shape[:2]
    crop_h, crop_w = min(crop_h, h), min(crop_w, w)
    j = int(round((h - crop_h) / 2.0))
    i = int(round((w - crop_w) / 2.0))
    return resize(x[j:j + crop_h, i:i + crop_w], resize_h, resize_w)


def resize(x, h, w):
    interp = cv2.INTER_AREA if (h < x.shape[0] or w < x.shape[1]) else cv2.INTER_LINEAR
    return cv2.resize(x, (w, h), interpolation=interp)


def transform(image, input_height, input_width, resize_height=64, resize_width=64, crop=True):
    """uint8 image -> float32 in [-1, 1] at the output size (center-cropped first when crop=True)."""
    if crop:
        image = center_crop(image, input_height, input_width, resize_height, resize_width)
    else:
        image = resize(image, resize_height, resize_width)
    return np.asarray(image, np.float32) / 127.5 - 1.0


def inverse_transform(images):
    """[-1, 1] floats -> [0, 1]."""
    return (np.asarray(images) + 1.0) / 2.0


def to_uint8(images):
    """[-1, 1] floats -> uint8 pixels, (N, H, W, C) with C of 1 squeezed away."""
    images = np.clip(np.rint(inverse_transform(images) * 255.0), 0, 255).astype(np.uint8)
    return images[..., 0] if images.shape[-1] == 1 else images


def image_manifold_size(num_images):
    """Rows and columns of a grid for num_images (square when possible), as the original's helper."""
    rows = int(math.floor(math.sqrt(num_images)))
    cols = int(math.ceil(num_images / max(rows, 1)))
    return rows, cols


def merge(images, size, pad_value=0):
    """Tile (N, H, W[, C]) images into a rows x cols grid; cells past N stay pad_value."""
    rows, cols = size
    if len(images) > rows * cols:
        raise ValueError(f"{len(images)} images do not fit a {rows}x{cols} grid")
    h, w = images.shape[1:3]
    grid = np.full((h * rows, w * cols) + images.shape[3:], pad_value, dtype=images.dtype)
    for idx, image in enumerate(images):
        r, c = divmod(idx, cols)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = image
    return grid


def imwrite(path, image):
    """Write a uint8 RGB or grayscale image atomically; the format follows the extension."""
    ext = os.path.splitext(path)[1] or ".png"
    bgr = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, bgr)
    if not ok:
        raise ValueError(f"cannot encode an image as {ext} for {path}")
    atomic_write(path, lambda f: f.write(buf.tobytes()))


def save_images(images, size, path):
    """Save generator output ([-1, 1]) as one grid image: the original's save_images()."""
    imwrite(path, merge(to_uint8(images), size))
