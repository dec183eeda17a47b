"""The data pipeline on generated images: matching, crop semantics, grayscale, corrupt files, clear errors."""
import os

import cv2
import numpy as np
import pytest

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
    return dataset.load_image(path, ih, iw, oh, ow, crop, c)


LOAD = dict(input_height=40, input_width=40, output_height=16, output_width=16, crop=False)


def _png_header_only(width, height):
    """A PNG that declares width x height pixels but holds none: a decompression bomb's header, a few bytes."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


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
    def channels(paths, name):
        return dataset.prepare_images(paths, LOAD, str(tmp_path / name)).channels()
    assert channels(gray, "c1") == 1
    assert channels(color, "c2") == 3
    assert channels(gray + color, "c3") == 3  # any colour image among the first ones keeps RGB
    assert _load(gray[0], crop=False, c=1).shape == (16, 16, 1)
    assert _load(gray[0], crop=False, c=3).shape == (16, 16, 3)  # a gray file in an RGB set is expanded


def test_every_file_gets_a_verdict_once_bad_ones_skipped_with_a_reason(tmp_path):
    good = write_faces(str(tmp_path / "in"), 3)
    jpeg = open(good[0], "rb").read()
    bad = {"empty.jpg": b"", "text.jpg": b"this is not an image", "truncated.jpg": jpeg[: len(jpeg) // 2],
           "truncated.png": cv2.imencode(".png", np.zeros((20, 20, 3), np.uint8))[1].tobytes()[:60],
           # start and end markers intact, garbage between: used to stop channel detection with no file named
           "0_corrupt_markers.jpg": b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9",
           "bomb.png": _png_header_only(20000, 20000)}
    for name, data in bad.items():
        (tmp_path / "in" / name).write_bytes(data)
    paths = sorted(good + [str(tmp_path / "in" / n) for n in bad])
    data = dataset.prepare_images(paths, LOAD, str(tmp_path / "cache"))
    assert data.files == sorted(good) and data.pixels.shape == (3, 16, 16, 3) and data.pixels.dtype == np.uint8
    reasons = {os.path.basename(p): r for p, r in data.skipped}
    assert sorted(reasons) == sorted(bad) and len(data.files) + len(data.skipped) == len(paths)
    assert reasons["bomb.png"].startswith("too large") and "truncated" in reasons["truncated.jpg"]
    # The verdicts are cached: a second call decodes nothing (the decoder is not even called).
    before = sorted(os.listdir(tmp_path / "cache"))
    original = dataset._decode_one
    dataset._decode_one = None
    try:
        again = dataset.prepare_images(paths, LOAD, str(tmp_path / "cache"))
    finally:
        dataset._decode_one = original
    assert again.files == data.files and np.array_equal(again.pixels, data.pixels)
    assert sorted(os.listdir(tmp_path / "cache")) == before
    # A changed file (here: the truncated one completed) gets a new verdict.
    (tmp_path / "in" / "truncated.jpg").write_bytes(jpeg)
    fixed = dataset.prepare_images(paths, LOAD, str(tmp_path / "cache"))
    assert len(fixed.files) == 4 and "truncated.jpg" not in {os.path.basename(p) for p, _ in fixed.skipped}
    assert len(os.listdir(tmp_path / "cache")) == 2  # the stale cache went


def test_the_pixel_limit_is_a_setting(tmp_path):
    paths = write_faces(str(tmp_path / "in"), 2) + write_faces(str(tmp_path / "big"), 1, size=(200, 200))
    data = dataset.prepare_images(paths, LOAD, str(tmp_path / "cache"), max_pixels=10_000)
    assert len(data.files) == 2 and data.skipped[0][1].startswith("too large")
    assert len(dataset.prepare_images(paths, LOAD, str(tmp_path / "cache2")).files) == 3


def test_a_file_name_that_is_not_utf8_trains_like_any_other(tmp_path):
    folder = tmp_path / "in"
    good = write_faces(str(folder), 2)
    odd = os.path.join(str(folder), os.fsdecode(b"face_\xff\xfe.jpg"))
    os.rename(good[1], odd)
    data = dataset.prepare_images(sorted([good[0], odd]), LOAD, str(tmp_path / "cache"))
    assert odd in data.files and not data.skipped


def test_unmatched_image_files_are_reported_with_the_pattern_that_takes_them(tmp_path, caplog):
    write_faces(str(tmp_path / "faces"), 3)
    write_faces(str(tmp_path / "faces"), 2, ext=".png", seed=1)
    with caplog.at_level("WARNING"):
        files = dataset.list_images(str(tmp_path), "faces", "*.jpg")
    assert len(files) == 3 and "2 .png image files" in caplog.text and "'*.jpg,*.png'" in caplog.text


def test_batches_shuffle_per_epoch_and_resume_position(tmp_path):
    files = write_faces(str(tmp_path), 20)
    data = dataset.prepare_images(files, LOAD, str(tmp_path / "cache"))
    e0 = dataset.index_batches(20, 6, 3, 0, 0, 1)
    assert e0.shape == (3, 6) and len(set(e0.ravel())) == 18  # 20 // 6, last partial batch dropped
    np.testing.assert_array_equal(e0, dataset.index_batches(20, 6, 3, 0, 0, 1))
    both = dataset.index_batches(20, 6, 3, 0, 0, 2)
    assert both.shape == (6, 6) and not np.array_equal(both[:3], both[3:])  # reshuffled every epoch
    np.testing.assert_array_equal(dataset.index_batches(20, 6, 3, 0, 2, 2), both[2:])  # resumed mid-epoch
    np.testing.assert_array_equal(dataset.index_batches(20, 6, 3, 0, 2, 2, max_batches=2), both[2:4])
    batches = [b.numpy() for b in dataset.make_dataset(data.pixels, both, 3)]
    assert len(batches) == 6 and batches[0].dtype == np.uint8
    np.testing.assert_array_equal(batches[4], data.pixels[both[4]])
    gray = next(iter(dataset.make_dataset(data.pixels, both, 1))).numpy()
    assert gray.shape == (6, 16, 16, 1)


def test_large_sets_are_served_from_a_memory_map(tmp_path):
    files = write_faces(str(tmp_path), 8)
    in_memory = dataset.prepare_images(files, LOAD, str(tmp_path / "cache"))
    mapped = dataset.prepare_images(files, LOAD, str(tmp_path / "cache"), memory_fraction=0.0)
    assert isinstance(mapped.pixels, np.memmap) and not isinstance(in_memory.pixels, np.memmap)
    batches = dataset.index_batches(8, 4, 0, 0, 0, 1)
    for a, b in zip(dataset.make_dataset(in_memory.pixels, batches, 3), dataset.make_dataset(mapped.pixels, batches, 3)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


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
