"""preprocess faces on the real photos of ../shared/data (skipped with a message when that folder is absent)."""
import os

import numpy as np
import pytest

from preprocess import align, dlib_models, faces
from preprocess.images import load_rgb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
pytestmark = pytest.mark.skipif(not os.path.isdir(SHARED),
                                reason=f"no shared data at {os.path.normpath(SHARED)} (a fresh clone has none)")
# Group photos of shared/data/wild with several faces (its README: dlib HOG, upsample 1).
GROUPS = {"dlib_bald_guys.jpg": 24, "frec_obama_and_biden.jpg": 3, "deepface_selfie-many-people.jpg": 4,
          "dlib_2008_002506.jpg": 3, "dlib_2007_007763.jpg": 7, "deepface_couple.jpg": 2, "frec_two_people.jpg": 2}


def link_subset(names, src, dst):
    os.makedirs(dst)
    for name in names:
        os.symlink(os.path.abspath(os.path.join(src, name)), os.path.join(dst, name))


def test_faces_unaligned_are_kept_and_aligned(tmp_path):
    src_all = os.path.join(SHARED, "faces_unaligned")
    names = sorted(os.listdir(src_all))[::11][:300]  # 300 photos spread over ages and both sexes
    src, out = str(tmp_path / "src"), str(tmp_path / "out")
    link_subset(names, src_all, src)
    summary = faces.run(src, out, workers=os.cpu_count(), follow_symlinks=True, progress=False)  # links to shared/
    assert summary["inputs"] == len(names)
    assert summary["crops_kept"] >= 0.9 * len(names), summary
    # Eyes of the crops sit on openface's template: landmarks found again on the crop, inside the face box
    # mapped into the crop (a tight crop leaves the HOG detector too little margin to find the face again).
    import dlib
    template = align.template_points(128, 0.1)
    want = np.stack([template[36:42].mean(axis=0), template[42:48].mean(axis=0)])
    records = faces.read_manifest(os.path.join(out, faces.MANIFEST))
    kept = [f for r in records.values() for f in r["faces"] if f["crop"]][:60]
    errors = []
    for face in kept:
        crop = load_rgb(os.path.join(out, face["crop"]))[0]
        l, t, r, b = face["box"]
        corners = align.apply(np.array(face["transform"]), [(l, t), (r, t), (l, b), (r, b)])
        (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
        points = dlib_models.landmarks(crop, dlib.rectangle(int(x0), int(y0), int(x1), int(y1)), 68)
        got = np.stack([points[36:42].mean(axis=0), points[42:48].mean(axis=0)])
        errors.append(np.linalg.norm(got - want, axis=1).max())
    assert np.median(errors) < 3.0 and np.mean(np.array(errors) < 6.0) >= 0.9, sorted(errors)


def test_group_photos_give_several_faces(tmp_path):
    src, out = str(tmp_path / "src"), str(tmp_path / "out")
    link_subset(GROUPS, os.path.join(SHARED, "wild"), src)
    faces.run(src, out, faces="all", upsample=1, min_face_size=20, workers=os.cpu_count(), follow_symlinks=True,
              progress=False)
    records = faces.read_manifest(os.path.join(out, faces.MANIFEST))
    for name, expected in GROUPS.items():
        found = len(records[name]["faces"])
        assert found >= max(2, expected - 1), (name, found, expected)
        kept = sum(f["crop"] is not None for f in records[name]["faces"])
        assert kept >= 2, (name, [f["reason"] for f in records[name]["faces"]])
