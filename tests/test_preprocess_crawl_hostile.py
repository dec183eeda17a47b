"""preprocess crawl against hostile servers on 127.0.0.1: compression bombs, slow headers, huge pages, unreachable
hosts, link-local and metadata addresses, DNS rebinding, and --max_images under concurrency."""
import collections
import gzip
import os
import socket
import threading
import time
import tracemalloc
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from preprocess import crawl, http_client, links
from test_preprocess_crawl import FAST, by_url, picture, records, tree


def deflate(data, raw=False):
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def encode(data, codings):
    """data with the Content-Encoding list applied in order (the first listed applied first)."""
    for coding in codings:
        data = gzip.compress(data, 9) if coding == "gzip" else deflate(data)
    return data


class Server:
    """A threaded HTTP server on 127.0.0.1: routes maps a path to a function(handler) that writes the reply."""

    def __init__(self, routes):
        self.routes, self.log = routes, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.log.append(self.path)
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                else:
                    route(self)

            def log_message(self, *args):
                pass

        class Threaded(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # the crawler hanging up on a hostile reply is the point

        self.httpd = Threaded(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(routes):
        servers.append(Server(routes))
        return servers[-1]
    yield start
    for s in servers:
        s.close()


def reply(body, ctype="image/jpeg", encoding=None, delay=0.0):
    def handle(h):
        time.sleep(delay)
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        if encoding:
            h.send_header("Content-Encoding", encoding)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    return handle


def redirect(location):
    def handle(h):
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()
    return handle


def fetch_one(out, url, **kw):
    crawl.run(str(out), image_urls=[url], **dict(FAST, **kw))
    return records(str(out))[-1]


ZEROS = 100_000_000  # decoded size of the bombs: 500x --max_bytes, a few hundred bytes on the wire


@pytest.fixture(scope="module")
def bombs():
    inner = gzip.compress(b"\0" * ZEROS, 9)
    return {"gzip": inner, "gzip, gzip": gzip.compress(inner, 9),
            "deflate, gzip, deflate": deflate(gzip.compress(deflate(b"\0" * ZEROS), 9))}


@pytest.mark.parametrize("codings", ["gzip", "gzip, gzip", "deflate, gzip, deflate"])
def test_compression_bombs_stop_at_max_bytes_without_inflating(tmp_path, serve, bombs, codings):
    site = serve({"/bomb.jpg": reply(bombs[codings], encoding=codings)})
    tracemalloc.start()
    try:
        rec = fetch_one(tmp_path / "c", site.base + "/bomb.jpg")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not rec["ok"] and rec["error"].startswith("too large"), rec
    # The body is never inflated past --max_bytes (200 KB): httpx alone inflates a whole received chunk at once
    # (a 2 KB "gzip, gzip" body became 2 GB).
    assert peak < 20_000_000, f"{peak / 1e6:.0f} MB allocated for a {len(bombs[codings])} byte body"


@pytest.mark.parametrize("codings", [["gzip"], ["deflate"], ["gzip", "deflate"], ["raw deflate"]])
def test_encoded_images_are_decoded_and_stored(tmp_path, serve, codings):
    image = picture(3)
    body = deflate(image, raw=True) if codings == ["raw deflate"] else encode(image, codings)
    header = "deflate" if codings == ["raw deflate"] else ", ".join(codings)
    site = serve({"/a.jpg": reply(body, encoding=header)})
    rec = fetch_one(tmp_path / "c", site.base + "/a.jpg")
    assert rec["ok"], rec
    with open(tmp_path / "c" / rec["file"], "rb") as f:
        assert f.read() == image


@pytest.mark.parametrize("header, body, reason", [
    ("br", b"\x8b\x00\x80hello\x03", "unsupported Content-Encoding 'br'"),
    ("gzip, " * 5, None, "refused: 5 layers of Content-Encoding"),
    ("gzip", gzip.compress(bytes(range(256)) * 100)[:100], "broken gzip content coding: the stream is cut off"),
    ("gzip", b"this is not gzip at all", "broken gzip content coding"),
])
def test_bad_content_codings_are_refused_with_the_reason(tmp_path, serve, header, body, reason):
    body = body if body is not None else encode(picture(1), ["gzip"] * 5)
    site = serve({"/a.jpg": reply(body, encoding=header)})
    rec = fetch_one(tmp_path / "c", site.base + "/a.jpg")
    assert not rec["ok"] and rec["error"].startswith(reason), rec


def trickle(part):
    """A reply that sends its headers (or its body) one byte every 50 ms: each wait is short, the whole is not."""
    def handle(h):
        h.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\n")
        if part == "body":
            h.wfile.write(b"Content-Length: 100000\r\n\r\n")
        for _ in range(300):  # 15 s at most, so a crawler without the bound still ends
            h.wfile.write(b"x")
            time.sleep(0.05)
    return handle


@pytest.mark.parametrize("part", ["headers", "body"])
def test_max_time_bounds_slow_headers_and_bodies(tmp_path, serve, part):
    site = serve({"/slow.jpg": trickle(part)})
    start = time.monotonic()
    rec = fetch_one(tmp_path / "c", site.base + "/slow.jpg", max_time=1.5, read_timeout=1.0)
    took = time.monotonic() - start
    assert not rec["ok"] and rec["error"].startswith("timeout: not done within --max_time 1.5 s"), rec
    assert took < 5, f"--max_time 1.5 held the crawler {took:.1f} s"


def test_page_parsing_is_linear_and_bounded():
    page = "".join(f'<a href="/p/{i}.html">page {i}</a><img src="/i/{i}.jpg">' for i in range(50_000))
    cpu = time.process_time()
    found, truncated = crawl.parse_page(page, "http://s.example/", max_links=1_000_000)
    cpu = time.process_time() - cpu
    assert len(found["images"]) == len(found["pages"]) == 50_000 and not truncated
    assert found["pages"][-1] == "http://s.example/p/49999.html"
    assert cpu < 15, f"{cpu:.0f} s of CPU for 100k links (the quadratic parser took 41 s, 1.5 s is linear)"
    found, truncated = crawl.parse_page(page, "http://s.example/", max_links=500)
    assert truncated and len(found["images"]) + len(found["pages"]) == 500
    with pytest.raises(links.ParseTimeout):
        crawl.parse_page(page, "http://s.example/", deadline=time.monotonic() - 1)


@pytest.mark.parametrize("page", ["</" * 1_000_000, "<a " * 700_000, "<!" * 1_000_000, "<?" * 1_000_000,
                                  "<" * 2_000_000, "<![" * 700_000, '<img src="' + "x" * 2_000_000,
                                  "<!--" + "<img src=x.jpg>" * 100_000, "<script>" + "<img src=x.jpg>" * 100_000])
def test_pathological_html_parses_fast(page):
    cpu = time.process_time()
    found, _ = crawl.parse_page(page, "http://s.example/")
    assert time.process_time() - cpu < 5  # Python 3.11's html.parser: over a minute on the first four
    assert found["images"] == []  # in a comment, a script or a tag never closed: not links


def test_parse_reads_tags_as_a_browser_does():
    page = ('<BASE HREF="http://s.example/b/"><IMG SRC="a.jpg" src="ignored.jpg" ALT="x > y">'
            "<img src='q.jpg'><img src=u.jpg><img\nsrc=\"n.jpg\"/><a href=\"/t?a=1&amp;b=2\">Next&nbsp;</a>"
            '<style>.x { background: url("<img src=s.jpg>") }</style><a href="/m">more</a>')
    found, _ = crawl.parse_page(page, "http://s.example/index.html")
    assert found["images"] == ["http://s.example/b/a.jpg", "http://s.example/b/q.jpg", "http://s.example/b/u.jpg",
                               "http://s.example/b/n.jpg"]
    assert found["next"] == ["http://s.example/t?a=1&b=2", "http://s.example/m"]
    page = "<meta charset=iso-8859-1><a href='/caf\xe9.html'>x</a>".encode("latin-1")
    assert crawl.parse_page(page, "http://s.example/")[0]["pages"] == ["http://s.example/caf\xe9.html"]


def test_a_page_with_too_many_links_is_kept_and_marked(tmp_path, serve):
    body = "".join(f'<a href="/p{i}">{i}</a>' for i in range(50)).encode()
    site = serve({"/index.html": reply(body, "text/html")})
    crawl.run(str(tmp_path / "c"), seeds=[site.base + "/index.html"], max_depth=0, max_links=10, **FAST)
    rec = by_url(str(tmp_path / "c"), site.base)["/index.html"]
    assert rec["ok"] and len(rec["links"]["pages"]) == 10 and "--max_links" in rec["links_truncated"]


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_host_is_recorded_with_the_real_reason(tmp_path, serve):
    silent = socket.socket()  # accepts connections and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        out = str(tmp_path / "c")
        crawl.run(out, image_urls=[f"http://127.0.0.1:{closed_port()}/a.jpg",
                                   f"http://127.0.0.1:{silent.getsockname()[1]}/b.jpg"], **FAST)
    finally:
        silent.close()
    got = {r["url"].rsplit("/", 1)[1]: r["error"] for r in records(out)}
    assert got["a.jpg"].startswith("connection error: ConnectError") and "(fetching robots.txt)" in got["a.jpg"]
    assert got["b.jpg"].startswith("timeout") and "(fetching robots.txt)" in got["b.jpg"]
    summary = crawl.summarize(records(out), 0, collections.Counter())
    assert "image: disallowed by robots.txt" not in summary["failures"]


def test_max_images_is_exact_under_concurrency(tmp_path, serve):
    routes = {f"/{i}.jpg": reply(picture(i), delay=0.05) for i in range(30)}
    routes["/dup.jpg"] = reply(picture(0), delay=0.05)
    site = serve(routes)
    urls = [site.base + "/dup.jpg"] + [site.base + p for p in routes if p != "/dup.jpg"]
    out = str(tmp_path / "c")
    first = crawl.run(out, image_urls=urls, **dict(FAST, concurrency=8, max_images=5))
    assert first["files_stored"] == 5 and len(tree(out)) == 5 + 2  # the images, manifest.jsonl, crawl_summary.json
    second = crawl.run(out, image_urls=urls, **dict(FAST, concurrency=8, max_images=12))
    assert second["files_stored"] == 12 and len(tree(out)) == 12 + 2


@pytest.mark.parametrize("host", ["169.254.169.254", "[::ffff:169.254.169.254]", "2852039166", "[fe80::1]",
                                  "100.100.100.200", "169.254.0.1"])
def test_link_local_and_metadata_addresses_need_their_own_flag(tmp_path, host):
    start = time.monotonic()
    rec = fetch_one(tmp_path / "c", f"http://{host}/latest/meta-data/iam.jpg", allow_private=True)
    assert rec["error"].startswith("refused (link-local or cloud metadata address)"), rec
    assert time.monotonic() - start < 2  # refused before any connection is tried


def test_a_redirect_to_the_metadata_service_is_refused_even_with_allow_private(tmp_path, serve):
    site = serve({"/a.jpg": redirect("http://169.254.169.254/latest/meta-data/")})
    rec = fetch_one(tmp_path / "c", site.base + "/a.jpg", allow_private=True)
    assert rec["error"].startswith("refused (link-local or cloud metadata address): 169.254.169.254"), rec
    assert http_client.refusal("169.254.169.254", [http_client.ipaddress.ip_address("169.254.169.254")],
                               allow_link_local=True) is None


def test_dns_rebinding_is_caught_when_connecting(tmp_path, serve, monkeypatch):
    site = serve({"/a.jpg": reply(picture(1))})
    real = socket.getaddrinfo
    answers = {"n": 0}

    def rebinding(host, *args, **kw):  # a public-looking answer for the check, the metadata service afterwards
        if host != "rebind.test":
            return real(host, *args, **kw)
        answers["n"] += 1
        ip = "127.0.0.1" if answers["n"] == 1 else "169.254.169.254"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, site.port))]
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    rec = fetch_one(tmp_path / "c", f"http://rebind.test:{site.port}/a.jpg")
    assert answers["n"] >= 2 and rec["error"].startswith("refused (link-local or cloud metadata address)"), rec
    assert site.log == []
