"""The data pipeline on generated images: matching, crop semantics, grayscale, corrupt files, clear errors."""
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

import dataset
import utils
from conftest import write_faces


def _quadrants(h=120, w=100):
    """An image whose four quadrants have distinct colours, so a crop or a resize shows where it came from."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (255, 0, 0)
    img[: h // 2, w // 2:] = (0, 255, 0)
    img[h // 2:, : w // 2] = (0, 0, 255)
    img[h // 2:, w // 2:] = (255, 255, 255)
    img[h // 2 - 20: h // 2 + 20, w // 2 - 20: w // 2 + 20] = (128, 64, 32)  # a centre patch
    return img


def _load(path, crop, ih=40, iw=40, oh=16, ow=16, c=3):
    return dataset.load_image(tf.constant(path), ih, iw, oh, ow, crop, c).numpy()


def test_pattern_matching_any_case_several_patterns_and_recursion(tmp_path):
    folder = tmp_path / "faces"
    for name in ("a.jpg", "b.JPG", "c.Jpeg", "d.png", "e.txt", "sub/f.jpg"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    names = lambda files: sorted(os.path.relpath(f, folder) for f in files)  # noqa: E731
    assert names(dataset.list_images(str(tmp_path), "faces", "*.jpg")) == ["a.jpg", "b.JPG"]
    assert names(dataset.list_images(str(tmp_path), "faces", "*.jpg,*.png")) == ["a.jpg", "b.JPG", "d.png"]
    assert names(dataset.list_images(str(tmp_path), "faces", "**/*.jpg")) == ["a.jpg", "b.JPG", "sub/f.jpg"]
    assert names(dataset.list_images(str(tmp_path), "faces", "*.[jp][pn]g")) == ["a.jpg", "d.png"]


def test_no_match_errors_name_the_pattern_and_suggest(tmp_path):
    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / "x.png").write_bytes(b"x")
    with pytest.raises(FileNotFoundError) as e:
        dataset.list_images(str(tmp_path), "faces", "*.jpg")
    assert os.path.join(str(tmp_path), "faces", "*.jpg") in str(e.value) and "*.png" in str(e.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        dataset.list_images(str(tmp_path), "nothere", "*.jpg")


def test_crop_takes_the_centre_then_resizes(tmp_path):
    path = str(tmp_path / "q.png")
    img = _quadrants()
    cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    cropped = _load(path, crop=True)  # centre 40x40 = only the centre patch
    assert cropped.shape == (16, 16, 3)
    np.testing.assert_allclose(cropped, np.broadcast_to(np.array([128, 64, 32]) / 127.5 - 1, (16, 16, 3)), atol=1e-5)
    # The same as the original's numpy center_crop + transform.
    np.testing.assert_allclose(cropped, utils.transform(img, 40, 40, 16, 16, crop=True), atol=0.02)
    whole = _load(path, crop=False)  # the whole image squeezed: corners keep their quadrant colours
    np.testing.assert_allclose(whole[0, 0], np.array([255, 0, 0]) / 127.5 - 1, atol=1e-5)
    np.testing.assert_allclose(whole[-1, -1], np.array([255, 255, 255]) / 127.5 - 1, atol=1e-5)
    assert whole.min() >= -1 and whole.max() <= 1
    np.testing.assert_allclose(whole, utils.transform(img, 40, 40, 16, 16, crop=False), atol=0.05)


def test_crop_larger_than_image_is_clipped(tmp_path):
    path = str(tmp_path / "small.png")
    cv2.imwrite(path, np.full((30, 20, 3), 200, np.uint8))
    out = _load(path, crop=True, ih=108, iw=108)
    assert out.shape == (16, 16, 3) and np.allclose(out, 200 / 127.5 - 1, atol=1e-5)


def test_grayscale_detection_and_conversion(tmp_path):
    gray = write_faces(str(tmp_path / "gray"), 3, gray=True, ext=".png")
    color = write_faces(str(tmp_path / "color"), 3, ext=".png")
    assert dataset.detect_channels(gray) == 1
    assert dataset.detect_channels(color) == 3
    assert dataset.detect_channels(gray + color) == 3  # any colour image among the first ones keeps RGB
    assert _load(gray[0], crop=False, c=1).shape == (16, 16, 1)
    assert _load(gray[0], crop=False, c=3).shape == (16, 16, 3)  # a gray file in an RGB set is expanded


def test_corrupt_files_are_skipped_with_a_warning_naming_them(tmp_path, caplog):
    good = write_faces(str(tmp_path), 3)
    jpeg = open(good[0], "rb").read()
    bad = {"empty.jpg": b"", "text.jpg": b"this is not an image", "truncated.jpg": jpeg[: len(jpeg) // 2],
           "truncated.png": cv2.imencode(".png", np.zeros((20, 20, 3), np.uint8))[1].tobytes()[:60]}
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    paths = sorted(good + [str(tmp_path / n) for n in bad])
    with caplog.at_level("WARNING"):
        ok, skipped = dataset.scan_images(paths)
    assert ok == sorted(good)
    assert sorted(os.path.basename(p) for p, _ in skipped) == sorted(bad)
    for name in bad:
        assert name in caplog.text
    reasons = dict((os.path.basename(p), r) for p, r in skipped)
    assert reasons["empty.jpg"] == "empty file" and "not a JPEG" in reasons["text.jpg"]
    assert "undecodable" in reasons["truncated.jpg"]


def test_dataset_batches_shuffle_per_epoch_and_resume_position(tmp_path):
    files = write_faces(str(tmp_path), 20)
    kw = dict(input_height=40, input_width=40, output_height=16, output_width=16, crop=False, c_dim=3)
    e0 = [b.numpy() for b in dataset.make_dataset(files, 6, kw, epoch=0, seed=3)]
    assert len(e0) == 3 and all(b.shape == (6, 16, 16, 3) for b in e0)  # 20 // 6, last partial batch dropped
    again = [b.numpy() for b in dataset.make_dataset(files, 6, kw, epoch=0, seed=3)]
    np.testing.assert_array_equal(np.stack(e0), np.stack(again))
    e1 = [b.numpy() for b in dataset.make_dataset(files, 6, kw, epoch=1, seed=3)]
    assert not np.array_equal(np.stack(e0), np.stack(e1))  # reshuffled every epoch
    resumed = [b.numpy() for b in dataset.make_dataset(files, 6, kw, epoch=0, seed=3, start_batch=2)]
    assert len(resumed) == 1 and np.array_equal(resumed[0], e0[2])


def test_grid_helpers():
    assert utils.image_manifold_size(64) == (8, 8)
    assert utils.image_manifold_size(10) == (3, 4)
    images = np.arange(5 * 2 * 2).reshape(5, 2, 2).astype(np.uint8)
    grid = utils.merge(images, (2, 3))
    assert grid.shape == (4, 6) and grid[2:, 4:].sum() == 0 and np.array_equal(grid[2:4, 2:4], images[4])
    assert np.array_equal(utils.to_uint8(np.array([-1.0, 0.0, 1.0, 2.0])), [0, 128, 255, 255])


def test_atomic_writes_have_normal_permissions_and_leave_no_temp(tmp_path):
    import utils
    umask = os.umask(0)
    os.umask(umask)
    utils.write_json(str(tmp_path / "a.json"), {"x": 1})
    with utils.atomic_path(str(tmp_path / "b.gif")) as tmp:
        assert tmp.endswith(".gif") and os.path.dirname(tmp) == str(tmp_path)
        open(tmp, "wb").write(b"GIF89a")
    for name in ("a.json", "b.gif"):  # mkstemp's 0600 would hide exports from a web server running as another user
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(RuntimeError):
        with utils.atomic_path(str(tmp_path / "c.png")) as tmp:
            open(tmp, "wb").write(b"half")
            raise RuntimeError("writer failed")
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.gif"]  # no half file, no temp left behind
