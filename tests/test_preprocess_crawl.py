"""preprocess crawl against a small 'community' site served on 127.0.0.1: accounting, politeness, safety, resume."""
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from preprocess import crawl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = dict(delay=0.0, concurrency=4, connect_timeout=2.0, read_timeout=1.0, max_time=5.0, max_bytes=200_000,
            max_redirects=3, progress=False)


def picture(seed, fmt="JPEG", size=(48, 40)):
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray((rng.random(size + (3,)) * 255).astype(np.uint8)).save(buf, fmt)
    return buf.getvalue()


def html(body):
    return ("text/html; charset=utf-8", f"<!doctype html><html><head><title>t</title></head><body>{body}</body></html>"
            .encode())


def make_site():
    """path -> (content type, body) or a callable handler action; the site's pages link everything below."""
    jpeg_a = picture(1)
    return {
        "/robots.txt": ("text/plain", b"User-agent: *\nDisallow: /private/\n"),
        "/index.html": html(
            '<img src="img/a.jpg"> <img src="{base}/img/b.png">'
            '<img src="img/c_small.jpg" srcset="img/c_small.jpg 100w, img/c_large.jpg 400w">'
            '<a href="img/d.jpg">full size</a> <img src="img/a_copy.jpg">'
            '<img src="/private/e.jpg"> <a href="/private/secret.html">secret</a>'
            '<img src="/redirect1"> <img src="/loop1"> <img src="/slow.jpg"> <img src="/huge.jpg">'
            '<img src="/fake.jpg"> <img src="/broken.jpg"> <img src="/missing.jpg"> <img src="/to_localhost">'
            '<img src="file:///etc/passwd"> <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
            '<a href="mailto:admin@example.com">mail</a> <a href="http://offsite.invalid/page.html">elsewhere</a>'
            '<a href="/page2.html" rel="next">Next</a> <a href="/img/../../../../escape.jpg">odd</a>'),
        "/page2.html": html('<picture><source srcset="/img/h.webp 1x"><img src="/img/h.jpg"></picture>'
                            '<a href="page3.html">Next</a>'),
        "/page3.html": html('<img src="/img/i.png"> <a href="/about.html">about us</a>'),
        "/about.html": html('<base href="/deep/"><img src="j.jpg"> <a href="/far.html">further</a>'),
        "/far.html": html('<img src="/img/k.jpg">'),
        "/private/secret.html": html('<img src="/img/secret.jpg">'),
        "/img/a.jpg": ("image/jpeg", jpeg_a),
        "/img/a_copy.jpg": ("image/jpeg", jpeg_a),
        "/img/b.png": ("image/png", picture(2, "PNG")),
        "/img/c_small.jpg": ("image/jpeg", picture(3)),
        "/img/c_large.jpg": ("image/jpeg", picture(4, size=(96, 80))),
        "/img/d.jpg": ("image/jpeg", picture(5)),
        "/private/e.jpg": ("image/jpeg", picture(6)),
        "/img/f.jpg": ("image/jpeg", picture(7)),
        "/img/g.jpg": ("image/jpeg", picture(8)),
        "/img/h.webp": ("image/webp", picture(9, "WEBP")),
        "/img/h.jpg": ("image/jpeg", picture(9)),
        "/img/i.png": ("image/png", picture(10, "PNG")),
        "/deep/j.jpg": ("image/jpeg", picture(11)),
        "/img/k.jpg": ("image/jpeg", picture(12)),
        "/escape.jpg": ("image/jpeg", picture(13)),
        "/redirect1": ("redirect", "/redirect2"),
        "/redirect2": ("redirect", "/img/f.jpg"),
        "/loop1": ("redirect", "/loop2"),
        "/loop2": ("redirect", "/loop1"),
        "/to_localhost": ("redirect", "http://localhost:{port}/img/g.jpg"),
        "/slow.jpg": ("slow", picture(14)),
        "/huge.jpg": ("image/jpeg", picture(15) + b"\0" * 300_000),
        "/fake.jpg": ("image/jpeg", html("not a picture")[1]),
        "/broken.jpg": ("image/jpeg", picture(16, size=(200, 200))[:700]),
    }


class Site:
    """A threaded HTTP server on 127.0.0.1 (port 0) serving make_site(), logging every request."""

    def __init__(self):
        self.routes, self.log = make_site(), []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                site.log.append((self.path, time.monotonic()))
                kind, body = site.routes.get(self.path, (None, None))
                if kind is None:
                    self.send_error(404)
                elif kind == "error":
                    self.send_error(body)
                elif kind == "redirect":
                    self.send_response(302)
                    self.send_header("Location", body.format(port=site.port))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    if kind == "slow":
                        time.sleep(3)
                        kind = "image/jpeg"
                    if isinstance(body, str):
                        body = body.encode()
                    body = body.replace(b"{base}", site.base.encode())
                    self.send_response(200)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # the crawler hanging up on the slow response is expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hits(self, path):
        return sum(p == path for p, _ in self.log)


@pytest.fixture
def site():
    s = Site()
    yield s
    s.server.shutdown()
    s.server.server_close()


def records(out):
    return crawl.read_manifest(os.path.join(out, crawl.MANIFEST))


def by_url(out, base):
    return {r["url"].replace(base, ""): r for r in records(out)}


def tree(folder):
    return sorted(os.path.relpath(os.path.join(r, f), folder) for r, _, fs in os.walk(folder) for f in fs)


def test_crawl_accounts_for_every_url(tmp_path, site):
    out = str(tmp_path / "crawl")
    (tmp_path / "mine.txt").write_text("the user's own file")
    start = time.monotonic()
    summary = crawl.run(out, seeds=[site.base + "/index.html"], max_depth=1, **FAST)
    took = time.monotonic() - start
    assert took < 15, f"the crawl took {took:.1f} s: timeouts are not bounding it"
    got = by_url(out, site.base)

    ok = {u for u, r in got.items() if r["ok"]}
    assert {"/index.html", "/page2.html", "/page3.html", "/about.html"} <= ok  # pagination keeps depth 0
    assert "/far.html" not in got  # depth 2 > --max_depth 1
    for url in ["/img/a.jpg", "/img/a_copy.jpg", "/img/b.png", "/img/c_large.jpg", "/img/c_small.jpg", "/img/d.jpg", "/img/h.webp",
                "/img/h.jpg", "/img/i.png", "/deep/j.jpg", "/escape.jpg", "/redirect1"]:
        rec = got[url]
        assert rec["ok"] and rec["kind"] == "image", (url, rec)
        path = os.path.join(out, rec["file"])
        with open(path, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == rec["sha256"] == rec["file"].split(".")[0]
        assert rec["width"] > 0 and rec["height"] > 0 and rec["content_type"].startswith("image/")
        assert rec["page"] is not None and rec["bytes"] == os.path.getsize(path)
    assert got["/redirect1"]["final_url"] == site.base + "/img/f.jpg"
    # Same bytes under two URLs: one file; whichever arrived second (concurrent fetches) is the duplicate.
    assert got["/img/a_copy.jpg"]["file"] == got["/img/a.jpg"]["file"]
    assert got["/img/a_copy.jpg"]["duplicate"] != got["/img/a.jpg"]["duplicate"]

    def reason(url):
        assert not got[url]["ok"], url
        return got[url]["error"]
    assert reason("/private/e.jpg") == reason("/private/secret.html") == "disallowed by robots.txt"
    assert site.hits("/private/e.jpg") == site.hits("/private/secret.html") == 0
    assert reason("/loop1").startswith("too many redirects")
    assert reason("/slow.jpg").startswith("timeout")
    assert reason("/huge.jpg").startswith("too large")
    assert reason("/fake.jpg").startswith("not an image")
    assert reason("/broken.jpg").startswith("broken image")
    assert reason("/missing.jpg") == "HTTP 404"
    assert reason("/to_localhost").startswith("refused (private address): localhost")
    assert site.hits("/img/g.jpg") == 0
    assert reason("file:///etc/passwd").startswith("refused (scheme)")
    assert not any(u.startswith(("mailto:", "data:", "http://offsite")) for u in got)
    assert site.hits("/robots.txt") == 1

    # Nothing outside --out; inside it only hash-named images and the run's own files.
    assert sorted(os.listdir(tmp_path)) == ["crawl", "mine.txt"]
    names = set(tree(out)) - {crawl.MANIFEST, "crawl_summary.json"}
    assert names == {r["file"] for r in got.values() if r.get("file")}
    assert summary["duplicates"] == 1 and summary["files_stored"] == len(names)
    assert summary["failures"]["image: disallowed by robots.txt"] == 1

    before = len(site.log)
    again = crawl.run(out, seeds=[site.base + "/index.html"], max_depth=1, **FAST)
    assert len(site.log) == before and again["fetched_this_run"] == 0


def test_interrupted_crawl_finishes_on_rerun(tmp_path, site):
    out = str(tmp_path / "crawl")
    opts = dict(FAST, max_depth=1)
    crawl.run(out, seeds=[site.base + "/index.html"], max_pages=1, **opts)
    assert site.hits("/index.html") == 1 and site.hits("/page2.html") == 0
    # A crash mid-line: the cut line is dropped, that URL fetched again; no other URL is fetched twice.
    path = os.path.join(out, crawl.MANIFEST)
    text = open(path).read()
    cut = json.loads(text.splitlines()[-1])["url"].replace(site.base, "")
    with open(path, "w") as f:
        f.write("".join(text.splitlines(keepends=True)[:-1]) + text.splitlines()[-1][:30])
    crawl.run(out, seeds=[site.base + "/index.html"], max_pages=50, **opts)
    assert site.hits("/page2.html") == site.hits("/page3.html") == site.hits("/about.html") == 1
    hops = ("/robots.txt", "/redirect2", "/loop1", "/loop2", "/img/f.jpg")  # robots once a run; redirect hops
    paths = [p for p, _ in site.log if p not in hops]
    assert paths.count(cut) == 2
    assert len(paths) - 1 == len(set(paths)), "a URL already in the manifest was fetched again"
    assert by_url(out, site.base)["/deep/j.jpg"]["ok"]


def test_allow_private_follows_the_redirect(tmp_path, site):
    out = str(tmp_path / "crawl")
    crawl.run(out, image_urls=[site.base + "/to_localhost"], allow_private=True, **FAST)
    rec = by_url(out, site.base)["/to_localhost"]
    assert rec["ok"] and rec["final_url"] == f"http://localhost:{site.port}/img/g.jpg"


@pytest.mark.parametrize("robots, allowed", [(None, True), (("error", 503), False), (("error", 403), False)])
def test_missing_robots_allows_and_failing_robots_forbids(tmp_path, site, robots, allowed):
    if robots is None:
        del site.routes["/robots.txt"]
    else:
        site.routes["/robots.txt"] = robots
    out = str(tmp_path / "crawl")
    crawl.run(out, image_urls=[site.base + "/img/a.jpg"], **FAST)
    rec = by_url(out, site.base)["/img/a.jpg"]
    assert rec["ok"] == allowed and (allowed or rec["error"] == "disallowed by robots.txt")
    assert site.hits("/img/a.jpg") == int(allowed)


def test_per_host_delay_spaces_requests(tmp_path, site):
    urls = [site.base + p for p in ("/img/a.jpg", "/img/b.png", "/img/d.jpg", "/img/i.png")]
    crawl.run(str(tmp_path / "crawl"), image_urls=urls, **dict(FAST, delay=0.3))
    times = sorted(t for p, t in site.log)
    assert len(times) == 5  # robots.txt and the four images
    assert min(np.diff(times)) >= 0.2  # 0.3 s apart when sent; the server sees some jitter


def test_max_images_stops_storing_and_a_rerun_continues(tmp_path, site):
    urls = [site.base + p for p in ("/img/a.jpg", "/img/b.png", "/img/d.jpg", "/img/i.png")]
    out = str(tmp_path / "crawl")
    first = crawl.run(out, image_urls=urls, **dict(FAST, concurrency=1, max_images=2))
    assert first["files_stored"] == 2 and len(records(out)) == 2
    second = crawl.run(out, image_urls=urls, **FAST)
    assert second["files_stored"] == 4 and second["fetched_this_run"] == 2


def test_parse_page_finds_images_and_pagination():
    page = ('<base href="http://s.example/a/"><img src="x.jpg" srcset="s.jpg 1x, l.jpg 2x">'
            '<img data-src="lazy.png"><a href="big.JPEG">big</a><link rel="next" href="?page=2">'
            '<a href="topic.html">topic</a><a href="javascript:void(0)">js</a><img src="ftp://s.example/y.jpg">')
    links, truncated = crawl.parse_page(page, "http://s.example/index.html")
    images, next_pages, pages, refused = links["images"], links["next"], links["pages"], links["refused"]
    assert not truncated
    assert images == ["http://s.example/a/x.jpg", "http://s.example/a/l.jpg", "http://s.example/a/lazy.png",
                      "http://s.example/a/big.JPEG"]
    assert next_pages == ["http://s.example/a/?page=2"] and pages == ["http://s.example/a/topic.html"]
    assert refused == ["ftp://s.example/y.jpg"]


def test_cli_image_list(tmp_path, site):
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# an img2dataset-style list\n{site.base}/img/a.jpg\n{site.base}/img/a_copy.jpg\n"
                       f"{site.base}/nothing.jpg\nftp://example.com/x.jpg\n\n")
    out = tmp_path / "crawl"
    cmd = [sys.executable, "-m", "preprocess", "crawl", "--out", str(out), "--urls_file", str(listing),
           "--delay", "0", "--noprogress"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    got = by_url(str(out), site.base)
    assert got["/img/a.jpg"]["ok"] and got["/img/a_copy.jpg"]["file"] == got["/img/a.jpg"]["file"]
    assert got["/nothing.jpg"]["error"] == "HTTP 404"
    assert got["ftp://example.com/x.jpg"]["error"].startswith("refused (scheme)")
    assert "images 2 (1 files, 1 duplicates)" in done.stdout
    empty = subprocess.run(cmd[:4] + ["--out", str(tmp_path / "o2")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert empty.returncode == 1 and "nothing to crawl" in empty.stderr
