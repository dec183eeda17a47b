"""README figure: a few ../shared/data/faces_unaligned photos (box and 68 landmarks drawn) beside their two crops.

    python bench/preprocess_examples.py [--out assets/preprocess_examples.png] [--examples 6]
"""
import argparse
import os
import sys
import tempfile

import cv2
import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from preprocess import faces  # noqa: E402
from preprocess.images import load_rgb  # noqa: E402

SHARED = os.path.join(ROOT, "..", "shared", "data", "faces_unaligned")
TILE = 128


def label(tile, text):
    cv2.rectangle(tile, (0, 0), (tile.shape[1], 14), (0, 0, 0), -1)
    cv2.putText(tile, text, (3, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(ROOT, "samples", "preprocess_examples.png"))
    parser.add_argument("--examples", type=int, default=6)
    a = parser.parse_args()
    if not os.path.isdir(SHARED):
        sys.exit(f"error: {os.path.normpath(SHARED)} is missing: the figure is made from ../shared/data")
    names = sorted(os.listdir(SHARED))
    # Spread over the folder: names run by sex and age (serial + age), so this spans both and many ages.
    chosen = [names[int(i)] for i in np.linspace(0, len(names) - 1, a.examples * 3)][1::3][:a.examples]
    with tempfile.TemporaryDirectory() as scratch:
        src = os.path.join(scratch, "src")
        os.makedirs(src)
        for name in chosen:
            os.symlink(os.path.abspath(os.path.join(SHARED, name)), os.path.join(src, name))
        runs = {}
        for how in ("openface", "chip"):
            out = os.path.join(scratch, how)
            faces.run(src, out, align=how, size=TILE, workers=1, follow_symlinks=True, progress=False)
            runs[how] = (out, faces.read_manifest(os.path.join(out, faces.MANIFEST)))
        cells = []
        for name in chosen:
            photo = load_rgb(os.path.join(src, name))[0].copy()
            if not all(r[name]["faces"] and r[name]["faces"][0]["crop"] for _, r in runs.values()):
                continue
            face = runs["openface"][1][name]["faces"][0]
            l, t, r, b = face["box"]
            cv2.rectangle(photo, (l, t), (r, b), (0, 255, 0), 2)
            for x, y in face["landmarks"]:
                cv2.circle(photo, (int(round(x)), int(round(y))), 2, (255, 60, 60), -1)
            h, w = photo.shape[:2]
            photo = cv2.resize(photo, (round(w * TILE * 1.5 / h), round(TILE * 1.5)), interpolation=cv2.INTER_AREA)
            crops = [load_rgb(os.path.join(out, rec[name]["faces"][0]["crop"]))[0] for out, rec in runs.values()]
            right = np.concatenate([label(cv2.resize(c, (round(TILE * 0.75), round(TILE * 0.75))).copy(), t)
                                    for c, t in zip(crops, ("openface", "chip"))], axis=0)
            cells.append(np.concatenate([label(photo, "photo: dlib box + 68 points"), right], axis=1))
    if not cells:
        sys.exit("error: no example photo gave both crops")
    width = max(c.shape[1] for c in cells)
    cells = [np.pad(c, ((0, 0), (0, width - c.shape[1]), (0, 0)), constant_values=255) for c in cells]
    gap = np.full((cells[0].shape[0], 6, 3), 255, np.uint8)
    rows = []
    for i in range(0, len(cells), 3):
        row = cells[i:i + 3] + [np.full_like(cells[0], 255)] * (3 - len(cells[i:i + 3]))
        rows.append(np.concatenate(sum([[c, gap] for c in row], [])[:-1], axis=1))
    figure = np.concatenate(sum([[r, np.full((6, r.shape[1], 3), 255, np.uint8)] for r in rows], [])[:-1], axis=0)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    # A 256-colour palette keeps the committed PNG small; the figure only has to show the alignment.
    Image.fromarray(figure).quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(a.out, optimize=True)
    print(f"{a.out}: {figure.shape[1]}x{figure.shape[0]}, {os.path.getsize(a.out) // 1024} KB")


if __name__ == "__main__":
    main()
