"""Shared fixtures: synthetic face-like image folders and absl flags for in-process runs of main.py."""
import os
import sys

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import logging  # noqa: E402

logging.set_verbosity(logging.INFO)  # as main.py does, so runs' log.txt files get their INFO lines


def write_faces(folder, n, size=(40, 36), seed=0, ext=".jpg", gray=False):
    """n small synthetic 'faces' (a skin disc with two eyes on noise) as image files; returns their paths."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    h, w = size
    for i in range(n):
        img = (rng.random((h, w, 3)) * 80).astype(np.uint8)
        cv2.circle(img, (w // 2, h // 2), min(h, w) // 3, (120, 150, 200), -1)
        for dx in (-1, 1):
            cv2.circle(img, (w // 2 + dx * w // 8, h // 2 - h // 10), max(1, w // 20), (30, 30, 30), -1)
        if gray:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        path = os.path.join(folder, f"face_{i:04d}{ext}")
        cv2.imwrite(path, img)
        paths.append(path)
    return paths


@pytest.fixture
def face_dir(tmp_path):
    """tmp/data/faces with 40 synthetic JPEG faces; yields the data_dir (tmp/data)."""
    write_faces(str(tmp_path / "data" / "faces"), 40)
    return str(tmp_path / "data")


TINY = dict(output_height=16, gf_dim=8, df_dim=8, z_dim=10, batch_size=8, noprogress=None)


def parse_flags(**overrides):
    """Parse main.py's flags from keyword arguments (value None = bare boolean flag) and resolve them."""
    import main
    argv = ["main.py"] + [f"--{k}" if v is None else f"--{k}={v}" for k, v in overrides.items()]
    main.FLAGS.unparse_flags()
    main.FLAGS(argv)
    logging.set_verbosity(logging.INFO)  # parsing resets absl's verbosity flag
    return main.resolved_flags()


@pytest.fixture
def tiny_flags(tmp_path, face_dir):
    """A function returning resolved flags for a tiny, fast model on the synthetic faces."""
    def make(**overrides):
        args = dict(TINY, data_dir=face_dir, out_dir=str(tmp_path / "out"), seed=7)
        args.update(overrides)
        return parse_flags(**{k: v for k, v in args.items() if v is not False})
    return make
