"""The downloader against a local server on 127.0.0.1: success, resume, bad checksum, 404, stalls, ignored ranges."""
import hashlib
import io
import os
import socket
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from preprocess import __main__ as cli
from preprocess import download, mnist

FAST = dict(connect_timeout=2.0, read_timeout=2.0, max_time=20.0, retries=0, progress=False)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Server:
    """Serves self.files (path -> bytes) with Range support; per-path misbehaviour set by the tests:
    cut (close after half the body, that many times), ignore_range, stall (seconds before answering),
    trickle (one byte every 0.05 s), page (a Drive-like HTML page whose form leads to the file)."""

    def __init__(self):
        self.files, self.cut, self.log = {}, {}, []
        self.ignore_range, self.stall, self.trickle, self.pages = set(), set(), set(), {}
        self.release = threading.Event()  # ends stalls when the test is over
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                server.log.append((self.path, self.headers.get("Range")))
                if path in server.pages:
                    page = (f'<html><head><title>Virus scan warning</title></head><body><form id="download-form" '
                            f'action="{server.pages[path]}" method="get"><input type="hidden" name="confirm" '
                            f'value="t"><input type="submit" value="Download anyway"></form></body></html>').encode()
                    return self.answer(200, page, {"Content-Type": "text/html; charset=utf-8"})
                if path in server.stall:
                    server.release.wait(10)
                    return
                body = server.files.get(path)
                if body is None:
                    return self.send_error(404)
                start, headers, status = 0, {"Content-Type": "application/octet-stream"}, 200
                wanted = self.headers.get("Range")
                if wanted and path not in server.ignore_range:
                    start = int(wanted.split("=")[1].split("-")[0])
                    if start >= len(body):
                        return self.answer(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                    status, headers["Content-Range"] = 206, f"bytes {start}-{len(body) - 1}/{len(body)}"
                rest = body[start:]
                if server.cut.get(path):
                    server.cut[path] -= 1
                    self.send_response(status)
                    for k, v in {**headers, "Content-Length": str(len(rest))}.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(rest[:len(rest) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if path in server.trickle:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(rest)))
                    self.end_headers()
                    for i in range(len(rest)):
                        if server.release.wait(0.05):
                            return
                        self.wfile.write(rest[i:i + 1])
                        self.wfile.flush()
                    return
                self.answer(status, rest, headers)

            def answer(self, status, body, headers):
                self.send_response(status)
                for k, v in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Threaded(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request, client_address):
                pass  # clients hanging up on stalls are expected

        self.http = Threaded(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def ranges(self, path):
        return [r for p, r in self.log if p.split("?")[0] == path]


@pytest.fixture
def server():
    s = Server()
    yield s
    s.release.set()
    s.http.shutdown()
    s.http.server_close()


def idx_fixture(folder, seed=0):
    """Tiny MNIST: 6 train and 4 t10k digits as gzipped idx files; returns {name: gz bytes}, images, labels."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    labels = np.arange(10, dtype=np.uint8) % 10
    arrays = {"train-images-idx3-ubyte.gz": images[:6], "train-labels-idx1-ubyte.gz": labels[:6],
              "t10k-images-idx3-ubyte.gz": images[6:], "t10k-labels-idx1-ubyte.gz": labels[6:]}
    files = {}
    for name, array in arrays.items():
        path = os.path.join(folder, name)
        mnist.write_idx(path, array)
        files[name] = open(path, "rb").read()
        os.unlink(path)
    return files, images, labels


def serve_mnist(server, monkeypatch, files):
    for name, data in files.items():
        server.files[f"/mnist/{name}"] = data
    monkeypatch.setattr(download, "MNIST_FILES", [(n, len(d), sha256(d)) for n, d in files.items()])


def test_mnist_cli_downloads_gunzips_and_skips_on_rerun(tmp_path, server, monkeypatch, capsys):
    files, images, labels = idx_fixture(str(tmp_path))
    serve_mnist(server, monkeypatch, files)
    data_dir = tmp_path / "data"
    argv = ["download", "mnist", "--data_dir", str(data_dir), "--mirror", server.base + "/mnist/", "--noprogress"]
    assert cli.main(argv) == 0
    assert sorted(os.listdir(data_dir / "mnist")) == sorted(n[:-3] for n in files)  # no .gz, .part or .bad left
    got_images, got_labels = mnist.load_mnist(str(data_dir / "mnist"), shuffle_seed=None)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    requests = len(server.log)
    assert cli.main(argv) == 0
    assert len(server.log) == requests and "skip" in capsys.readouterr().out


def test_mirror_comes_from_the_environment(tmp_path, server, monkeypatch):
    files, _, _ = idx_fixture(str(tmp_path))
    serve_mnist(server, monkeypatch, files)
    monkeypatch.setenv(download.MIRROR_ENV, server.base + "/mnist")
    assert cli.main(["download", "MNIST", "--data_dir", str(tmp_path), "--noprogress", "--keep_archives"]) == 0
    assert sorted(os.listdir(tmp_path / "mnist")) == sorted(list(files) + [n[:-3] for n in files])


def celeba_zip(n=3):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("img_align_celeba/", b"")
        for i in range(n):
            pixels = np.full((218, 178, 3), 40 * i, np.uint8)
            zf.writestr(f"img_align_celeba/{i + 1:06d}.jpg", cv2.imencode(".jpg", pixels)[1].tobytes())
    return buf.getvalue()


def test_celeba_cli_unzips_into_celebA(tmp_path, server, monkeypatch):
    data = celeba_zip()
    server.files["/img_align_celeba.zip"] = data
    monkeypatch.setattr(download, "CELEBA_FILE", ("img_align_celeba.zip", len(data), sha256(data)))
    argv = ["download", "celebA", "--data_dir", str(tmp_path), "--mirror", server.base, "--noprogress"]
    assert cli.main(argv) == 0
    assert sorted(os.listdir(tmp_path)) == ["celebA"]  # the zip and the staging folder are gone
    assert sorted(os.listdir(tmp_path / "celebA")) == ["000001.jpg", "000002.jpg", "000003.jpg"]
    assert cv2.imread(str(tmp_path / "celebA" / "000002.jpg")).shape == (218, 178, 3)
    assert cli.main(argv) == 0 and len(server.log) == 1


def test_resume_after_a_cut_connection(tmp_path, server):
    data = os.urandom(300_000)
    server.files["/f.bin"], server.cut["/f.bin"] = data, 1
    dest = str(tmp_path / "f.bin")
    download.fetch("f.bin", len(data), sha256(data), [server.base + "/f.bin"], dest, **{**FAST, "retries": 2})
    assert open(dest, "rb").read() == data
    first, second = server.ranges("/f.bin")
    assert first is None and second == f"bytes={len(data) // 2}-"  # the retry asked only for the missing half


def test_cut_connection_without_retries_resumes_on_the_next_run(tmp_path, server):
    data = os.urandom(200_000)
    server.files["/f.bin"], server.cut["/f.bin"] = data, 1
    dest, urls = str(tmp_path / "f.bin"), [server.base + "/f.bin"]
    with pytest.raises(download.DownloadError, match="run again to resume"):
        download.fetch("f.bin", len(data), sha256(data), urls, dest, **FAST)
    assert not os.path.exists(dest) and os.path.getsize(dest + ".part") == len(data) // 2
    download.fetch("f.bin", len(data), sha256(data), urls, dest, **FAST)
    assert open(dest, "rb").read() == data and not os.path.exists(dest + ".part")
    assert server.ranges("/f.bin")[-1] == f"bytes={len(data) // 2}-"


def test_bad_checksum_is_kept_aside_and_not_used(tmp_path, server, monkeypatch, capsys):
    files, _, _ = idx_fixture(str(tmp_path))
    serve_mnist(server, monkeypatch, files)
    name, size, _ = download.MNIST_FILES[0]
    download.MNIST_FILES[0] = (name, size, "0" * 64)
    data_dir = tmp_path / "data"
    argv = ["download", "mnist", "--data_dir", str(data_dir), "--mirror", server.base + "/mnist", "--noprogress"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "is not the published" in err and "kept as" in err
    assert os.listdir(data_dir / "mnist") == [name + ".bad"]  # not renamed into place, not gunzipped, not deleted
    assert open(data_dir / "mnist" / (name + ".bad"), "rb").read() == files[name]
    assert cli.main(argv) == 1  # a second bad copy does not overwrite the first
    assert sorted(os.listdir(data_dir / "mnist")) == [name + ".bad", name + ".bad.1"]


def test_next_source_after_a_404(tmp_path, server):
    data = b"x" * 1000
    server.files["/b/f.bin"] = data
    dest = str(tmp_path / "f.bin")
    download.fetch("f.bin", len(data), sha256(data), [server.base + "/a/f.bin", server.base + "/b/f.bin"], dest, **FAST)
    assert open(dest, "rb").read() == data


def test_404_is_a_clear_error_that_leaves_nothing(tmp_path, server, capsys):
    argv = ["download", "celebA", "--data_dir", str(tmp_path), "--mirror", server.base, "--noprogress"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "HTTP 404" in err and server.base + "/img_align_celeba.zip" in err
    assert os.listdir(tmp_path) == []


def test_a_stalled_server_times_out_quickly(tmp_path, server):
    server.stall.add("/f.bin")
    start = time.monotonic()
    with pytest.raises(download.DownloadError, match=r"sent nothing for 0.3 s \(--read_timeout\); gave up after 1 try"):
        download.fetch("f.bin", 10, "0" * 64, [server.base + "/f.bin"], str(tmp_path / "f.bin"),
                       **{**FAST, "read_timeout": 0.3})
    assert time.monotonic() - start < 3


def test_max_time_bounds_a_trickling_download(tmp_path, server):
    server.files["/f.bin"] = b"y" * 1000
    server.trickle.add("/f.bin")
    start = time.monotonic()
    with pytest.raises(download.DownloadError, match="max_time"):
        download.fetch("f.bin", 1000, sha256(b"y" * 1000), [server.base + "/f.bin"], str(tmp_path / "f.bin"),
                       **{**FAST, "max_time": 0.5})
    assert time.monotonic() - start < 3
    assert 0 < os.path.getsize(tmp_path / "f.bin.part") < 1000  # what came is kept for the next run


def test_server_ignoring_range_starts_over(tmp_path, server, capsys):
    data = os.urandom(50_000)
    server.files["/f.bin"] = data
    server.ignore_range.add("/f.bin")
    dest = str(tmp_path / "f.bin")
    with open(dest + ".part", "wb") as f:
        f.write(b"\0" * 20_000)  # not even a prefix of the file: it must be overwritten, not appended to
    download.fetch("f.bin", len(data), sha256(data), [server.base + "/f.bin"], dest, **FAST)
    assert open(dest, "rb").read() == data
    assert server.ranges("/f.bin") == ["bytes=20000-"] and "ignored the range request" in capsys.readouterr().out


def test_complete_part_needs_no_request_and_oversized_part_restarts(tmp_path, server):
    data = os.urandom(5000)
    server.files["/f.bin"] = data
    dest, urls = str(tmp_path / "f.bin"), [server.base + "/f.bin"]
    open(dest + ".part", "wb").write(data)
    download.fetch("f.bin", len(data), sha256(data), urls, dest, **FAST)
    assert server.log == [] and open(dest, "rb").read() == data
    os.unlink(dest)
    open(dest + ".part", "wb").write(data + b"extra")
    download.fetch("f.bin", len(data), sha256(data), urls, dest, **FAST)
    assert server.ranges("/f.bin") == [None] and open(dest, "rb").read() == data


def test_wrong_size_on_offer_is_refused_before_downloading(tmp_path, server):
    server.files["/f.bin"] = b"z" * 100
    with pytest.raises(download.DownloadError, match="offers 100 bytes where the published file has 99"):
        download.fetch("f.bin", 99, "0" * 64, [server.base + "/f.bin"], str(tmp_path / "f.bin"), **FAST)
    assert os.listdir(tmp_path) == []


def test_drive_confirm_page_is_followed(tmp_path, server):
    data = os.urandom(4000)
    server.files["/download"] = data
    server.pages["/uc"] = server.base + "/download"
    dest = str(tmp_path / "f.bin")
    download.fetch("f.bin", len(data), sha256(data), [server.base + "/uc?export=download&id=x"], dest, **FAST)
    assert open(dest, "rb").read() == data
    assert [p for p, _ in server.log] == ["/uc?export=download&id=x", "/download?confirm=t"]


def test_unreachable_sources_say_there_is_no_network(tmp_path, monkeypatch):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connection refused
    with pytest.raises(download.DownloadError, match="cannot connect.*\n.*no internet access"):
        download.fetch("f.bin", 10, "0" * 64, [f"http://127.0.0.1:{port}/f.bin"], str(tmp_path / "f.bin"), **FAST)

    def no_dns(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(download.socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(download.urllib.request, "getproxies", lambda: {})
    with pytest.raises(download.DownloadError, match="cannot resolve example.org"):
        download.fetch("f.bin", 10, "0" * 64, ["https://example.org/f.bin"], str(tmp_path / "f.bin"), **FAST)


def test_a_hanging_dns_lookup_is_bounded(tmp_path, monkeypatch):
    never = threading.Event()
    monkeypatch.setattr(download.socket, "getaddrinfo", lambda *a, **k: never.wait(5))
    monkeypatch.setattr(download.urllib.request, "getproxies", lambda: {})
    start = time.monotonic()
    with pytest.raises(download.DownloadError, match="no answer within 0.3 s"):
        download.fetch("f.bin", 10, "0" * 64, ["https://example.org/f.bin"], str(tmp_path / "f.bin"),
                       **{**FAST, "connect_timeout": 0.3})
    never.set()
    assert time.monotonic() - start < 2


def test_archives_put_in_place_by_hand_are_used_offline(tmp_path, server, monkeypatch):
    """The offline route the error message suggests: the .gz files copied into data_dir/mnist by hand."""
    files, images, _ = idx_fixture(str(tmp_path))
    serve_mnist(server, monkeypatch, files)
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the file")  # a bad copy: kept aside, fetched again
    download.download_mnist(str(tmp_path / "data"), mirror=server.base + "/mnist", **FAST)
    assert [p for p, _ in server.log] == ["/mnist/t10k-labels-idx1-ubyte.gz"]
    assert (folder / "t10k-labels-idx1-ubyte.gz.bad").read_bytes() == b"not the file"
    np.testing.assert_array_equal(mnist.load_mnist(str(folder), shuffle_seed=None)[0], images)


def test_archive_that_does_not_unzip_is_an_error(tmp_path, server, monkeypatch):
    data = b"checksum fine, but no zip"
    server.files["/img_align_celeba.zip"] = data
    monkeypatch.setattr(download, "CELEBA_FILE", ("img_align_celeba.zip", len(data), sha256(data)))
    with pytest.raises(download.DownloadError, match="does not unzip"):
        download.download_celeba(str(tmp_path), mirror=server.base, **FAST)
    assert not os.path.exists(tmp_path / "celebA")
