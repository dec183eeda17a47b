"""preprocess faces: alignment onto the template, filters, odd and broken files, manifest, resume and the CLI."""
import io
import os
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from preprocess import align, dlib_models, faces
from preprocess.images import load_rgb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = dict(workers=1, progress=False)


@pytest.fixture(scope="module")
def astronaut():
    """Eileen Collins, NASA, public domain: scikit-image's bundled sample photo (uint8 RGB 512x512)."""
    from skimage import data
    return data.astronaut()


def manifest(out):
    return faces.read_manifest(os.path.join(out, faces.MANIFEST))


def eye_centres(image):
    """Centres of the left and right eye (68-point landmarks 36-41, 42-47) of the best face dlib finds."""
    found = dlib_models.detect_faces(image, 1)
    assert found, "no face found in the crop"
    points = dlib_models.landmarks(image, found[0][0], 68)
    return points[36:42].mean(axis=0), points[42:48].mean(axis=0)


def save(path, image, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, **kw)
    return path


@pytest.mark.parametrize("padding", [0.0, 0.1])
def test_openface_crop_puts_the_eyes_on_the_template(tmp_path, astronaut, padding):
    save(str(tmp_path / "src" / "astronaut.png"), Image.fromarray(astronaut))
    out = str(tmp_path / "out")
    summary = faces.run(str(tmp_path / "src"), out, size=128, padding=padding, **FAST)
    assert summary["inputs"] == 1 and summary["crops_kept"] == 1
    rec = manifest(out)["astronaut.png"]
    assert rec["status"] == "ok" and len(rec["faces"][0]["landmarks"]) == 68
    # The suit's false positive (README of shared/data) is recorded, not cropped: --faces largest.
    assert len(rec["faces"]) >= 2
    assert [f["reason"] for f in rec["faces"][1:]] == ["not the largest face"] * (len(rec["faces"]) - 1)
    crop = load_rgb(os.path.join(out, rec["faces"][0]["crop"]))[0]
    assert crop.shape == (128, 128, 3)
    template = align.template_points(128, padding)
    want = template[36:42].mean(axis=0), template[42:48].mean(axis=0)
    for got, expected in zip(eye_centres(crop), want):
        assert np.linalg.norm(got - expected) < 4.0, (got, expected)


def test_chip_crop_is_level_and_centred(tmp_path, astronaut):
    save(str(tmp_path / "src" / "a.jpg"), Image.fromarray(astronaut))
    out = str(tmp_path / "out")
    faces.run(str(tmp_path / "src"), out, align="chip", size=96, padding=0.25, **FAST)
    rec = manifest(out)["a.jpg"]
    crop = load_rgb(os.path.join(out, rec["faces"][0]["crop"]))[0]
    assert crop.shape == (96, 96, 3)
    left, right = eye_centres(crop)
    assert abs(left[1] - right[1]) < 3 and abs((left[0] + right[0]) / 2 - 48) < 4
    # The same crop as dlib's own get_face_chip, within interpolation differences.
    import dlib
    photo = load_rgb(str(tmp_path / "src" / "a.jpg"))[0]
    rect = dlib.rectangle(*rec["faces"][0]["box"])
    reference = dlib.get_face_chip(photo, dlib_models.shape_predictor(5)(photo, rect), size=96, padding=0.25)
    assert np.abs(crop.astype(int) - reference.astype(int)).mean() < 2.0


def test_cnn_detector(tmp_path, astronaut):
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)  # the CNN is slow on CPU
    save(str(tmp_path / "src" / "a.png"), Image.fromarray(small))
    out = str(tmp_path / "out")
    summary = faces.run(str(tmp_path / "src"), out, detector="cnn", upsample=0, min_face_size=30, **FAST)
    rec = manifest(out)["a.png"]
    assert summary["crops_kept"] == 1 and rec["faces"][0]["crop"]  # (the 45 px face needs upsample 1)
    l, t, r, b = rec["faces"][0]["box"]
    assert 70 < (l + r) / 2 < 150 and 20 < (t + b) / 2 < 100  # the face, top middle of the photo


def test_photo_without_a_face_is_recorded(tmp_path):
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur((rng.random((200, 300, 3)) * 255).astype(np.uint8), (0, 0), 3)
    save(str(tmp_path / "src" / "sky" / "noface.jpg"), Image.fromarray(noise))
    out = str(tmp_path / "out")
    summary = faces.run(str(tmp_path / "src"), out, **FAST)
    rec = manifest(out)[os.path.join("sky", "noface.jpg")]
    assert rec["status"] == "skipped" and rec["reason"] == "no face" and rec["faces"] == []
    assert summary["crops_kept"] == 0 and summary["images_skipped"] == {"no face": 1}
    assert [f for f in os.listdir(out) if f.endswith(".jpg")] == []


def png_declaring(width, height):
    """A valid 1x1 PNG whose header says width x height: a decompression bomb's calling card."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr) & 0xFFFFFFFF)
    return bytes(data)


def make_bad_corpus(folder, astronaut):
    """Every awkward file the web serves; returns {relative path: what must happen ('crop' or a reason prefix)}."""
    img = Image.fromarray(astronaut)
    expect = {}

    def put(name, outcome, image=None, raw=None, **kw):
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if raw is not None:
            with open(path, "wb") as f:
                f.write(raw)
        else:
            image.save(path, **kw)
        expect[name] = outcome

    jpeg = io.BytesIO()
    img.save(jpeg, "JPEG", quality=90)
    put("truncated.jpg", "truncated", raw=jpeg.getvalue()[: len(jpeg.getvalue()) // 3])
    put("zero.jpg", "not an image", raw=b"")
    put("text.jpg", "not an image", raw=b"<html><body>404 not found</body></html>\n")
    put("cmyk.jpg", "crop", img.convert("CMYK"), format="JPEG")
    gray16 = (np.asarray(img.convert("L"), np.uint16) * 257)
    put("gray16.png", "crop", Image.fromarray(gray16))  # mode I;16
    path16 = os.path.join(folder, "rgb16.png")
    cv2.imwrite(path16, cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    expect["rgb16.png"] = "crop"
    rgba = img.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.where(np.arange(512)[None, :] < 40, 0, 255).astype(np.uint8).repeat(512, 0)))
    put("rgba.png", "crop", rgba)
    put("palette.gif", "crop", img.convert("P", palette=Image.Palette.ADAPTIVE))
    frames = [img.convert("P", palette=Image.Palette.ADAPTIVE), Image.new("P", img.size)]
    put("animated.gif", "crop", frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)
    put("photo.webp", "crop", img, format="WEBP", quality=85)
    put("one_pixel.png", "no face", Image.new("RGB", (1, 1), (200, 150, 120)))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the face is sideways in the pixels
    put("rotated.jpg", "crop", img.transpose(Image.Transpose.ROTATE_90), exif=exif, quality=90)
    put("bomb.png", "too large", raw=png_declaring(100_000, 100_000))
    put(os.path.join("sub", "gray.jpg"), "crop", img.convert("L"))
    put("notes.txt", "ignored", raw=b"not an image extension\n")
    return expect


def test_bad_input_corpus_is_accounted_for_without_a_crash(tmp_path, astronaut):
    src, out = str(tmp_path / "src"), str(tmp_path / "out")
    expect = make_bad_corpus(src, astronaut)
    # Two workers: the process pool path; no near-duplicate filter, every variant of the photo must crop.
    summary = faces.run(src, out, workers=2, progress=False, dup_distance=-1)
    records = manifest(out)
    images = {k: v for k, v in expect.items() if v != "ignored"}
    assert set(records) == set(expect)  # every file has its line, the one without an image extension too
    assert records["notes.txt"]["reason"] == "not an image file extension"
    assert summary["inputs"] == len(images) and summary["ignored_non_image_files"] == 1
    assert summary["entries"] == len(expect)
    for name, outcome in images.items():
        rec = records[name]
        if outcome == "crop":
            assert rec["status"] == "ok", (name, rec["reason"])
            crop = load_rgb(os.path.join(out, rec["faces"][0]["crop"]))[0]
            assert crop.shape == (128, 128, 3), name
        else:
            assert rec["status"] == "skipped" and rec["reason"].startswith(outcome), (name, rec["reason"])
    assert records["rotated.jpg"]["exif_orientation"] == 6
    assert records["rotated.jpg"]["width"] == 512
    assert records[os.path.join("sub", "gray.jpg")]["grayscale"] is True
    assert records["gray16.png"]["grayscale"] is True and records["cmyk.jpg"]["grayscale"] is False
    assert records["animated.gif"]["frames"] == 2


def test_filters_record_their_reasons(tmp_path, astronaut):
    src = tmp_path / "src"
    pair = np.concatenate([astronaut[:300], cv2.flip(astronaut[:300], 1)], axis=1)  # two faces side by side
    save(str(src / "pair.png"), Image.fromarray(pair))
    save(str(src / "gray.jpg"), Image.fromarray(astronaut).convert("L"))
    save(str(src / "copy1.jpg"), Image.fromarray(astronaut), quality=95)
    save(str(src / "copy2.jpg"), Image.fromarray(cv2.resize(astronaut, (400, 400))), quality=60)

    def reasons(out, **kw):
        faces.run(str(src), str(tmp_path / out), **FAST, **kw)
        recs = manifest(str(tmp_path / out))
        return {k: [f["reason"] for f in r["faces"] if f["score"] > 0.5] for k, r in recs.items()}, recs

    got, recs = reasons("all", faces="all", dup_distance=-1)
    assert got["pair.png"] == [None, None]
    got, recs = reasons("single", faces="single", grayscale="drop")
    assert got["pair.png"] == ["several faces", "several faces"] and recs["pair.png"]["reason"] == "no face kept"
    assert recs["gray.jpg"]["reason"] == "grayscale"
    got, recs = reasons("dups")
    assert got["copy1.jpg"] == [None] and got["copy2.jpg"] == ["near-duplicate"]  # inputs go in sorted order
    twin = recs["copy2.jpg"]["faces"][0]
    assert twin["duplicate_of"] == recs["copy1.jpg"]["faces"][0]["crop"] and twin["crop"] is None
    got, _ = reasons("small", min_face_size=200)
    assert all(r[0] == "face too small" for r in got.values())
    got, _ = reasons("blur", min_blur=1e9)
    assert got["copy1.jpg"] == ["blurry"]


def test_resume_skips_done_inputs_and_redoes_a_cut_line(tmp_path, astronaut):
    src, out = tmp_path / "src", str(tmp_path / "out")
    save(str(src / "a.png"), Image.fromarray(astronaut))
    save(str(src / "b.jpg"), Image.fromarray(cv2.flip(astronaut, 1)))
    first = faces.run(str(src), out, **FAST)
    assert first["processed_this_run"] == 2 and first["crops_kept"] == 2
    assert faces.run(str(src), out, **FAST)["processed_this_run"] == 0
    # A crash mid-write leaves half a line: it is dropped and that input is done again, nothing duplicated.
    path = os.path.join(out, faces.MANIFEST)
    lines = open(path).read().splitlines(keepends=True)
    with open(path, "w") as f:
        f.write(lines[0] + lines[1][:40])
    again = faces.run(str(src), out, **FAST)
    assert again["processed_this_run"] == 1 and again["inputs"] == 2 and again["crops_kept"] == 2
    assert set(faces.read_manifest(path)) == {"a.png", "b.jpg"}  # the record after the cut line is whole
    crops = sorted(f for f in os.listdir(out) if f.endswith(".jpg"))
    assert len(crops) == 2
    with pytest.raises(ValueError, match="other options"):
        faces.run(str(src), out, size=64, **FAST)


def crash_on_boom(item):
    """A worker function that dies (as a segfault in dlib would) on one item."""
    if item == "boom":
        os._exit(3)
    return item.upper()


def test_an_input_that_kills_its_worker_is_isolated_and_the_rest_done():
    items = ["a", "b", "boom", "c", "d", "e", "f"]
    got = dict(faces.pool_results(items, 2, crash_on_boom, None, ()))
    assert got == {"a": "A", "b": "B", "boom": None, "c": "C", "d": "D", "e": "E", "f": "F"}


def test_crops_feed_the_dcgan_dataset(tmp_path, astronaut):
    import dataset
    save(str(tmp_path / "src" / "a.jpg"), Image.fromarray(astronaut))
    faces.run(str(tmp_path / "src"), str(tmp_path / "data" / "faces"), **FAST)
    files = dataset.list_images(str(tmp_path / "data"), "faces", "*.jpg")
    load = dict(input_height=108, input_width=108, output_height=64, output_width=64, crop=True)
    data = dataset.prepare_images(files, load, str(tmp_path / "cache"))
    assert len(data.files) == 1 and data.skipped == [] and data.pixels.shape == (1, 64, 64, 3)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="--align"):
        faces.default_options(align="mtcnn")
    with pytest.raises(ValueError, match="unknown"):
        faces.default_options(colour="red")


def test_cli(tmp_path, astronaut):
    save(str(tmp_path / "src" / "a.jpg"), Image.fromarray(astronaut))
    cmd = [sys.executable, "-m", "preprocess", "faces", str(tmp_path / "src"), "--out", str(tmp_path / "out"),
           "--noprogress", "--workers", "1", "--format", "png", "--size", "64"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "crops kept 1" in done.stdout
    assert [f for f in os.listdir(tmp_path / "out") if f.endswith(".png")]
    missing = subprocess.run(cmd[:4] + [str(tmp_path / "nope"), "--out", str(tmp_path / "o2")], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "error:" in missing.stderr and "does not exist" in missing.stderr


def test_an_error_after_a_face_is_named_skips_the_photo_not_the_run(tmp_path, astronaut, monkeypatch):
    def failing_encode(*args):
        raise RuntimeError("encoder broke")
    monkeypatch.setattr(faces, "encode", failing_encode)  # workers=1 runs in this process
    save(str(tmp_path / "src" / "astronaut.png"), Image.fromarray(astronaut))
    out = str(tmp_path / "out")
    summary = faces.run(str(tmp_path / "src"), out, **FAST)
    rec = manifest(out)["astronaut.png"]
    assert summary["crops_kept"] == 0 and rec["status"] == "skipped" and "encoder broke" in rec["reason"]
    assert all(f["crop"] is None for f in rec["faces"])
