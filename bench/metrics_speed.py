"""Time each metric's parts on this machine (short): Inception features, FID/KID/PR maths, dlib detection, nn search.

    python bench/metrics_speed.py [--images 100] [--features 10000] [--pool 23000]

Inception throughput is measured on real-sized inputs (64 px crops resized to 299); the maths on random features of
the size fid10k/kid10k/pr10k use; nn on a random pool of the training set's size. Prints a markdown table.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from metrics import detect, fid, inception, kid, nn, pr  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100, help="images through Inception and dlib [100]")
    parser.add_argument("--features", type=int, default=10000, help="feature rows on each side of FID/KID/PR [10000]")
    parser.add_argument("--pool", type=int, default=23000, help="training crops nn searches [23000]")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 64, 64, 3)).astype(np.uint8)
    rows = []

    inception.load_model()
    inception.features(images[:2])  # warm-up: TorchScript optimises on its first calls
    t = timed(lambda: inception.features(images))
    rows.append(("Inception pool3 features (64 px -> 299)", f"{args.images} images", t,
                 f"{args.images / t:.1f} images/s; fid10k's 10k samples: {10000 / (args.images / t) / 60:.0f} min"))
    # The layout used before (batch 50, channels first), timed in the same run for the ratio.
    t_old = timed(lambda: inception.features(images, batch_size=50, channels_last=False))
    rows.append(("  the same at batch 50, channels first", f"{args.images} images", t_old,
                 f"{args.images / t_old:.1f} images/s; the default is {t_old / rows[0][2]:.2f}x faster"))
    t = timed(lambda: inception.resize_299(images))
    rows.append(("  of which the resize to 299", f"{args.images} images", t, f"{args.images / t:.0f} images/s"))

    n = args.features
    a = rng.normal(size=(n, inception.FEATURE_DIM)).astype(np.float32)
    b = (rng.normal(size=(n, inception.FEATURE_DIM)) + 0.1).astype(np.float32)
    rows.append(("FID from features", f"{n} vs {n}", timed(lambda: fid.fid(a, b)), "covariances + eigh"))
    rows.append(("KID from features", f"{n} vs {n}", timed(lambda: kid.kid(a, b, np.random.default_rng(0))),
                 f"{kid.NUM_SUBSETS} subsets of {min(n, kid.MAX_SUBSET_SIZE)}"))
    rows.append(("precision/recall from features", f"{n} vs {n}", timed(lambda: pr.precision_recall(a, b)),
                 f"k={pr.K}"))

    for detector in detect.DETECTORS:
        t = timed(lambda: detect.faces_found(images, detector))
        rows.append((f"{detect.DESCRIPTION[detector]} (enlarged to {detect.DETECT_SIZE[detector]} + border)",
                     f"{args.images} images", t, f"{args.images / t:.1f} images/s; detect1k: "
                     f"{2000 / (args.images / t):.0f} s with the real side (`--metrics_detector {detector}`)"))

    pool = rng.integers(0, 256, (args.pool, 64, 64, 3)).astype(np.uint8)
    queries = rng.integers(0, 256, (1000, 64, 64, 3)).astype(np.uint8)
    rows.append(("nn: nearest training crop (RMS pixels)", f"1000 vs {args.pool}",
                 timed(lambda: nn.nearest_distances(queries, pool)), "nn (= nn1k) runs this twice, plus duplicates"))

    print("| part | size | seconds | note |\n| --- | --- | ---: | --- |")
    for name, size, seconds, note in rows:
        print(f"| {name} | {size} | {seconds:.2f} | {note} |")


if __name__ == "__main__":
    main()
