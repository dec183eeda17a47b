"""preprocess faces on hostile input folders: hidden files, symlinks (broken, looping, leaving the folder), FIFOs,
devices, changed inputs, risky file names, and kill -9 of the parent with workers running."""
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from preprocess import faces

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = dict(workers=1, progress=False, dup_distance=-1, min_face_size=30)


@pytest.fixture(scope="module")
def face():
    """scikit-image's astronaut (public domain) at 256 px: one ~50 px face, quick to find."""
    from skimage import data
    return cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)


def save(path, rgb, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(rgb).save(path, **kw)


def noise(seed=0, size=64):
    return (np.random.default_rng(seed).random((size, size, 3)) * 255).astype(np.uint8)


def manifest(out):
    return faces.read_manifest(os.path.join(out, faces.MANIFEST))


def run_cli(src, out, *flags):
    cmd = [sys.executable, "-m", "preprocess", "faces", str(src), "--out", str(out), "--noprogress",
           "--workers", "1", "--dup_distance", "-1", "--min_face_size", "30", *flags]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)  # a FIFO opened would hang
    assert done.returncode == 0, done.stderr
    return manifest(str(out))


def test_every_entry_gets_a_manifest_line(tmp_path, face):
    src, elsewhere = tmp_path / "src", tmp_path / "elsewhere"
    save(str(src / ".hidden.jpg"), face)
    save(str(src / ".hidden_folder" / "face.jpg"), cv2.flip(face, 1))
    save(str(src / "sub" / "noface.png"), noise())
    save(str(elsewhere / "outside.jpg"), face)
    (src / "notes.txt").write_text("not a photo\n")
    os.symlink(str(tmp_path / "missing.jpg"), src / "broken.jpg")
    os.symlink("loop_b.jpg", src / "loop_a.jpg")
    os.symlink("loop_a.jpg", src / "loop_b.jpg")
    os.symlink(str(elsewhere / "outside.jpg"), src / "outside.jpg")
    os.symlink(str(elsewhere), src / "outside_folder")
    os.symlink(".hidden.jpg", src / "inside.jpg")
    os.symlink("..", src / "sub" / "up")
    os.symlink("/dev/null", src / "null.jpg")
    os.mkfifo(src / "pipe.jpg")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(src / "socket.jpg"))
    out = tmp_path / "out"
    expect = {".hidden.jpg": "ok", os.path.join(".hidden_folder", "face.jpg"): "ok",
              os.path.join("sub", "noface.png"): "no face", "notes.txt": "not an image file extension",
              "broken.jpg": "broken symlink", "loop_a.jpg": "symlink loop", "loop_b.jpg": "symlink loop",
              "outside.jpg": "symlink to ", "outside_folder": "symlink to ", "null.jpg": "symlink to ",
              "inside.jpg": "symlink to a file read under its own name",
              os.path.join("sub", "up"): "symlink to a folder read elsewhere",
              "pipe.jpg": "not a regular file (fifo)", "socket.jpg": "not a regular file (socket)"}
    try:
        records = run_cli(src, out)
        assert set(records) == set(expect)
        for name, outcome in expect.items():
            got = records[name]["status"] if outcome == "ok" else records[name]["reason"]
            assert got.startswith(outcome), (name, records[name])
        for name in ("outside.jpg", "outside_folder", "null.jpg"):
            assert "outside the input folder (--follow_symlinks" in records[name]["reason"]
        assert len([f for f in os.listdir(out) if f.endswith(".jpg")]) == 2  # the hidden faces are kept

        # --follow_symlinks reads what the links outside point to; the rest stays as it was, not listed again.
        lines = len(open(out / faces.MANIFEST).readlines())
        records = run_cli(src, out, "--follow_symlinks")
        assert records["outside.jpg"]["status"] == "ok"
        assert records[os.path.join("outside_folder", "outside.jpg")]["status"] == "ok"
        assert records["null.jpg"]["reason"] == "not a regular file (character device)"
        assert len(open(out / faces.MANIFEST).readlines()) == lines + 3
        assert records["broken.jpg"]["reason"].startswith("broken symlink")
    finally:
        unix.close()


def test_an_unreadable_folder_is_recorded(tmp_path, monkeypatch):
    save(str(tmp_path / "src" / "locked" / "a.jpg"), noise())
    save(str(tmp_path / "src" / "b.png"), noise(1))
    real_scandir = os.scandir

    def scandir(path):  # as chmod 000 does for anyone but root
        if os.path.basename(path) == "locked":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)
    monkeypatch.setattr(os, "scandir", scandir)
    faces.run(str(tmp_path / "src"), str(tmp_path / "out"), **FAST)
    records = manifest(str(tmp_path / "out"))
    assert records["locked"]["reason"] == "unreadable folder: Permission denied" and records["b.png"]["faces"] == []


def test_several_folders_keep_their_names_and_hidden_files(tmp_path):
    for folder in ("a", "b"):
        save(str(tmp_path / folder / ".x.png"), noise())
    faces.run([str(tmp_path / "a"), str(tmp_path / "b")], str(tmp_path / "out"), **FAST)
    assert set(manifest(str(tmp_path / "out"))) == {os.path.join("a", ".x.png"), os.path.join("b", ".x.png")}


def test_a_rejected_input_is_retried_once_it_changes(tmp_path, face):
    src, out = tmp_path / "src", str(tmp_path / "out")
    buf = io.BytesIO()
    Image.fromarray(face).save(buf, "JPEG", quality=90)
    (src / "sub").mkdir(parents=True)
    (src / "photo.jpg").write_bytes(buf.getvalue()[:len(buf.getvalue()) // 3])  # a download cut short
    save(str(src / "sub" / "noface.png"), noise())
    save(str(src / "good.jpg"), cv2.flip(face, 1))
    first = faces.run(str(src), out, **FAST)
    assert first["processed_this_run"] == 3 and manifest(out)["photo.jpg"]["reason"].startswith("truncated")
    assert faces.run(str(src), out, **FAST)["processed_this_run"] == 0  # nothing changed: nothing redone

    (src / "photo.jpg").write_bytes(buf.getvalue())  # the download completed
    st = os.stat(src / "sub" / "noface.png")
    os.utime(src / "sub" / "noface.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same size, touched
    os.utime(src / "good.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a kept photo stays done
    again = faces.run(str(src), out, **FAST)
    records = manifest(out)
    assert again["processed_this_run"] == 2 and records["photo.jpg"]["status"] == "ok"
    assert again["crops_kept"] == 2 and records["photo.jpg"]["file_size"] == len(buf.getvalue())
    assert records[os.path.join("sub", "noface.png")]["reason"] == "no face"


RISKY = ["a\nb.jpg", "tab\there.jpg", "$(touch pwned).jpg", "-rf.jpg", "--help.jpg", ".hidden.jpg",
         "'quote\".jpg", "spa ce.jpg", "caf\xe9 \U0001F600.jpg", "bad\udcffbytes.jpg", "x" * 300 + ".jpg",
         ".jpg", "-.jpg", "back\\slash.jpg", "semi;colon|pipe&amp.jpg", os.path.join("dir", "-x.jpg")]


def test_crop_names_are_safe_readable_and_unique():
    names = [faces.crop_name(rel, 0, "jpg") for rel in RISKY]
    for rel, name in zip(RISKY, names):
        assert re.fullmatch(r"[^\W][\w.-]*", name) and len(name.encode("utf-8", "surrogateescape")) < 255, (rel, name)
    assert len(set(names)) == len(names)
    assert faces.crop_name("photos/Ann at the beach.jpg", 1, "png").startswith("Ann_at_the_beach_")
    assert faces.crop_name("caf\xe9.jpg", 0, "jpg").startswith("caf\xe9_")
    assert faces.crop_name("photo.jpg", 0, "jpg") == faces.crop_name("photo.jpg", 0, "jpg")  # stable on resume


def test_a_risky_input_name_gives_a_safe_crop_name(tmp_path, face):
    name = "-$(touch pwned)\n\tname.jpg"
    save(str(tmp_path / "src" / name), face)
    faces.run(str(tmp_path / "src"), str(tmp_path / "out"), **FAST)
    crop = manifest(str(tmp_path / "out"))[name]["faces"][0]["crop"]
    assert crop.startswith("__touch_pwned___name_") and os.path.exists(tmp_path / "out" / crop)


def children(pid):
    """Pids of the processes whose parent is pid (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid):
    """Running, not a zombie waiting for a reaper (a container's init may never reap)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def resident_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_workers_exit_when_faces_is_killed(tmp_path):
    # One photo keeps a worker busy for seconds (HOG over 4000 x 4000 pixels); the other worker soon has nothing
    # left and waits for work, which (before the fix) it went on doing forever once its parent was gone.
    save(str(tmp_path / "src" / "0_slow.jpg"), noise(0, 2000), quality=90)
    for i in range(1, 4):
        save(str(tmp_path / "src" / f"{i}.png"), noise(i))
    cmd = [sys.executable, "-m", "preprocess", "faces", str(tmp_path / "src"), "--out", str(tmp_path / "out"),
           "--noprogress", "--workers", "2", "--max_detect_side", "2000", "--noupsample_fallback"]
    parent = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # until both workers hold dlib's models: they are at work
            workers = [p for p in children(parent.pid)
                       if "resource_tracker" not in open(f"/proc/{p}/cmdline").read()]
            if len(workers) == 2 and all(resident_mb(p) > 120 for p in workers):
                break
            time.sleep(0.2)
        assert len(workers) == 2, "the workers did not start"
        time.sleep(1.0)  # the small photos are done: one worker idle, one inside dlib
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [p for p in workers if alive(p)]
        assert not left, f"workers {left} outlived their parent"
    finally:
        parent.kill()
        for p in workers:
            if alive(p):
                os.kill(p, signal.SIGKILL)
