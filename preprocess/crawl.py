"""Step 1: crawl seed pages (or a list of image URLs) politely into content-addressed image files and a JSONL manifest."""
import collections
import functools
import hashlib
import io
import os
import threading
import time
import urllib.robotparser
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from urllib.parse import urlsplit

import httpx
from tqdm import tqdm

import utils
from preprocess import http_client, manifest
from preprocess.images import BadImage, load_rgb
from preprocess.links import ParseTimeout, clean_url, parse_page

MANIFEST = "manifest.jsonl"
USER_AGENT = "NeuralFaceCrawler/0.1 (+research face dataset; obeys robots.txt)"
# Pillow format -> file extension of the stored copy: the name never comes from the server.
FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp"}
HTML_TYPES = ("text/html", "application/xhtml+xml")


def default_options(**overrides):
    """The crawl step's options (the CLI flags); see preprocess/__main__.py for their meaning."""
    opts = dict(max_depth=2, max_pages=100, max_images=0, delay=1.0, concurrency=4, connect_timeout=10.0,
                read_timeout=20.0, max_time=60.0, max_bytes=20_000_000, max_redirects=5, max_pixels=40_000_000,
                max_links=20_000, user_agent=USER_AGENT, allow_private=False, allow_link_local=False,
                retry_failed=False, progress=True)
    unknown = set(overrides) - set(opts)
    if unknown:
        raise ValueError(f"unknown crawl options: {sorted(unknown)}")
    opts.update(overrides)
    if opts["concurrency"] < 1 or opts["max_redirects"] < 0 or opts["max_depth"] < 0 or opts["delay"] < 0:
        raise ValueError("--concurrency must be >= 1; --max_redirects, --max_depth and --delay >= 0")
    if opts["max_time"] <= 0 or opts["max_bytes"] < 1 or opts["max_links"] < 1:
        raise ValueError("--max_time, --max_bytes and --max_links must be > 0")
    return opts


@functools.lru_cache(maxsize=4096)
def host_addresses(host):
    """The addresses a host name (or IP literal) stands for; () when it does not resolve (the request itself then
    fails with a clear reason). Cached: the connection checks them again as it connects."""
    try:
        return tuple(address for address, _ in http_client.resolve(host.strip("[]")))
    except OSError:
        return ()


def read_manifest(path):
    """All records of a crawl manifest in order (lines cut by a crash dropped)."""
    return [r for r in manifest.read(path) if "url" in r and "kind" in r]


class FetchError(Exception):
    """A URL that could not be used; str(e) is the manifest's reason, .status the HTTP status when there was one."""

    def __init__(self, reason, status=None, final_url=None):
        super().__init__(reason)
        self.status, self.final_url = status, final_url


class Crawler:
    """Holds the HTTP client, robots.txt cache and per-host clocks shared by the fetch threads."""

    def __init__(self, opts, allowed_hosts):
        self.opts = opts
        self.policy = dict(allow_private=opts["allow_private"], allow_link_local=opts["allow_link_local"],
                           trusted_hosts=frozenset(h.lower() for h in allowed_hosts))
        self.deadline = http_client.Deadline()
        limits = httpx.Limits(max_connections=opts["concurrency"] * 2)
        transport = http_client.GuardedTransport(http_client.GuardedBackend(self.deadline, **self.policy), limits)
        # trust_env=False: a proxy from the environment would make the connections, out of the address checks.
        self.client = httpx.Client(
            headers={"User-Agent": opts["user_agent"], "Accept-Encoding": http_client.ACCEPT_ENCODING},
            follow_redirects=False, transport=transport, trust_env=False,
            timeout=httpx.Timeout(opts["read_timeout"], connect=opts["connect_timeout"]))
        self.lock = threading.Lock()
        self.robots, self.robots_failed, self.robots_locks, self.next_slot, self.host_delay = {}, {}, {}, {}, {}

    def close(self):
        self.client.close()

    # ------------------------------------------------------------ politeness and safety

    def wait_turn(self, host):
        """Space requests to one host by --delay (or robots.txt's Crawl-delay when longer)."""
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_slot.get(host, now))
            self.next_slot[host] = start + self.host_delay.get(host, self.opts["delay"])
        if start > now:
            time.sleep(start - now)

    def check_target(self, url, robots=True):
        """Refuse URLs the crawler must not touch: bad schemes, private or link-local addresses, robots.txt
        disallows (the connection checks the addresses once more as it is made)."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise FetchError(f"refused (scheme): {parts.scheme or '(none)'!r} is not http(s)")
        host = parts.hostname.lower()
        # Hosts the user named (seeds, URL lists) may be private; a page or a redirect pointing at the local
        # network or this machine may not (that is how a crawler gets turned against an intranet).
        reason = http_client.refusal(host, host_addresses(host), **self.policy)
        if reason:
            raise FetchError(reason)
        if robots:
            origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
            if not self.robots_for(origin).can_fetch(self.opts["user_agent"], url):
                raise FetchError(self.robots_failed.get(origin, "disallowed by robots.txt"))

    def robots_for(self, origin):
        """The parsed robots.txt of an origin, fetched once (404 = all allowed; 401/403/5xx/unreachable = none)."""
        with self.lock:
            if origin in self.robots:
                return self.robots[origin]
            origin_lock = self.robots_locks.setdefault(origin, threading.Lock())
        with origin_lock:
            if origin in self.robots:
                return self.robots[origin]
            parser = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
            try:
                _, _, _, body, _ = self.get(origin + "/robots.txt", robots=False)
                parser.parse(body.decode("utf-8", "replace").splitlines())
            except FetchError as e:
                # As urllib.robotparser and Google read it: no robots.txt (404, 410...) allows everything;
                # 401/403 or a server error means stay away; no answer at all (or no usable one) too, and then the
                # URLs of that origin are recorded with the real reason (connection refused, timeout...).
                if e.status is not None and 400 <= e.status < 500 and e.status not in (401, 403):
                    parser.allow_all = True
                else:
                    parser.disallow_all = True
                    if e.status is None or e.status < 400:
                        self.robots_failed[origin] = f"{e} (fetching robots.txt)"[:300]
            delay = parser.crawl_delay(self.opts["user_agent"])
            with self.lock:
                if delay:
                    self.host_delay[urlsplit(origin).hostname] = max(self.opts["delay"], float(delay))
                self.robots[origin] = parser
            return parser

    # ------------------------------------------------------------ HTTP

    def get(self, url, robots=True, accept=None):
        """GET with manual redirects (each hop checked), size and time bounds
        -> (status, final URL, content type, body, charset). --max_time bounds the time on the network of all hops
        together (waits for a host's turn excepted), headers included."""
        time_left = self.opts["max_time"]
        for _ in range(self.opts["max_redirects"] + 1):
            self.check_target(url, robots)
            self.wait_turn(urlsplit(url).hostname.lower())
            started = time.monotonic()
            self.deadline.set(started + time_left)  # set after check_target: a robots.txt fetch sets its own
            try:
                with self.client.stream("GET", url) as response:
                    status = response.status_code
                    if status in (301, 302, 303, 307, 308) and "location" in response.headers:
                        target = clean_url(response.headers["location"], url)
                        if target is None:
                            raise FetchError(f"refused (scheme): redirect to "
                                             f"{response.headers['location'][:100]!r}", status, url)
                        url = target
                        time_left -= time.monotonic() - started
                        continue
                    content_type = response.headers.get("content-type", "")
                    ctype = content_type.split(";")[0].strip().lower()
                    charset = response.charset_encoding
                    if status >= 400:
                        raise FetchError(f"HTTP {status}", status, url)
                    if accept and not ctype.startswith(accept):
                        raise FetchError(f"wrong content type {ctype or '(none)'}", status, url)
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > self.opts["max_bytes"]:
                        raise FetchError(f"too large: {declared} bytes over --max_bytes", status, url)
                    chunks = []
                    try:
                        for chunk in http_client.decoded(response.iter_raw(), response.headers.get_list(
                                "content-encoding"), self.opts["max_bytes"]):
                            chunks.append(chunk)
                    except http_client.BadBody as e:
                        raise FetchError(str(e), status, url) from None
                    if sum(map(len, chunks)) > self.opts["max_bytes"]:
                        raise FetchError(f"too large: over --max_bytes {self.opts['max_bytes']}", status, url)
                    return status, url, ctype, b"".join(chunks), charset
            except http_client.Refused as e:  # at connect time: the name now resolves somewhere it may not
                raise FetchError(str(e), None, url) from None
            except httpx.TimeoutException as e:
                if time.monotonic() >= started + time_left:
                    raise FetchError(f"timeout: not done within --max_time {self.opts['max_time']} s", None,
                                     url) from None
                raise FetchError(f"timeout ({type(e).__name__})", None, url) from None
            except httpx.HTTPError as e:
                raise FetchError(f"connection error: {type(e).__name__}: {e}"[:200], None, url) from None
            finally:
                self.deadline.set(None)
        raise FetchError(f"too many redirects (over --max_redirects {self.opts['max_redirects']})", None, url)

    # ------------------------------------------------------------ the two kinds of URL

    def fetch_page(self, url):
        status, final, ctype, body, charset = self.get(url)
        if ctype not in HTML_TYPES:
            raise FetchError(f"not an HTML page ({ctype or 'no content type'})", status, final)
        try:
            links, truncated = parse_page(body, final, charset, time.monotonic() + self.opts["max_time"],
                                          self.opts["max_links"])
        except ParseTimeout as e:
            raise FetchError(str(e), status, final) from None
        page = {"final_url": final, "status": status, "content_type": ctype, "bytes": len(body), "links": links}
        if truncated:
            page["links_truncated"] = f"only the first {self.opts['max_links']} links (--max_links)"
        return page

    def fetch_image(self, url):
        status, final, ctype, body, _ = self.get(url, accept="image/")
        info = {"final_url": final, "status": status, "content_type": ctype, "bytes": len(body),
                "sha256": hashlib.sha256(body).hexdigest()}
        try:  # decoded as the faces step will, so a cut-off or corrupt body fails here, not later
            _, decoded = load_rgb(io.BytesIO(body), self.opts["max_pixels"])
        except BadImage as e:
            reason = str(e) if str(e).startswith(("too large", "not an image")) else f"broken image: {e}"
            raise FetchError(reason[:200], status, final) from None
        info.update(format=decoded["format"], width=decoded["width"], height=decoded["height"])
        if info["format"] not in FORMATS:
            raise FetchError(f"unsupported image format {info['format']}", status, final)
        info["body"] = body
        return info


def run(out, seeds=(), image_urls=(), **options):
    """Crawl seeds (pages) and image_urls into out; returns the summary dict. Rerun to resume."""
    opts = default_options(**options)
    seeds = [u.strip() for u in seeds if u.strip()]
    image_urls = [u.strip() for u in image_urls if u.strip() and not u.strip().startswith("#")]
    if not seeds and not image_urls:
        raise ValueError("nothing to crawl: give seed pages (--seeds/--seeds_file) or image URLs (--urls_file)")
    os.makedirs(out, exist_ok=True)
    manifest_path = os.path.join(out, MANIFEST)
    records = read_manifest(manifest_path)

    # Which URLs are done, which stored images exist, and what an interrupted run still had to fetch.
    last = {}
    for rec in records:
        last[(rec["kind"], rec["url"])] = rec
    if opts["retry_failed"]:
        last = {k: r for k, r in last.items() if r.get("ok")}
    stored = {r["sha256"]: r["file"] for r in last.values() if r.get("ok") and r.get("file")
              and os.path.exists(os.path.join(out, r["file"]))}
    frontier = collections.deque()
    seen = set(last)
    pages_done = sum(1 for k in last if k[0] == "page")
    images_done = len(stored)  # --max_images counts stored files, not duplicate URLs

    def enqueue(kind, url, depth, page, site):
        if (kind, url) in seen:
            return
        seen.add((kind, url))
        frontier.append((kind, url, depth, page, site))

    bad_inputs = []
    for url in seeds:
        clean = clean_url(url)
        if clean is None:
            bad_inputs.append({"kind": "page", "url": url[:300], "page": None, "depth": 0, "ok": False,
                               "error": "refused (scheme): not an absolute http(s) URL"})
            continue
        enqueue("page", clean, 0, None, urlsplit(clean).hostname)
    for url in image_urls:
        clean = clean_url(url)
        if clean is None:
            bad_inputs.append({"kind": "image", "url": url[:300], "page": None, "ok": False,
                               "error": "refused (scheme): not an absolute http(s) URL"})
            continue
        enqueue("image", clean, 0, None, None)
    for rec in records:  # links found by pages of an earlier run that were never fetched
        if rec["kind"] == "page" and rec.get("ok"):
            site = rec.get("site") or urlsplit(rec["url"]).hostname
            for url in rec["links"]["images"]:
                enqueue("image", url, rec["depth"] + 1, rec["url"], None)
            for url in rec["links"]["next"]:
                if urlsplit(url).hostname == site:
                    enqueue("page", url, rec["depth"], rec["url"], site)
            if rec["depth"] < opts["max_depth"]:
                for url in rec["links"]["pages"]:
                    if urlsplit(url).hostname == site:
                        enqueue("page", url, rec["depth"] + 1, rec["url"], site)

    allowed = {urlsplit(u).hostname for u in map(clean_url, seeds + image_urls) if u}
    crawler = Crawler(opts, allowed)
    counts = collections.Counter()
    start = time.time()
    with manifest.open_for_append(manifest_path) as manifest_file, \
            ThreadPoolExecutor(opts["concurrency"]) as pool, \
            tqdm(unit="url", desc="crawl", disable=not opts["progress"]) as bar:

        def log(rec):
            manifest.append(manifest_file, rec)
            counts["ok " + rec["kind"] if rec.get("ok") else "failed " + rec["kind"]] += 1
            counts["duplicate"] += bool(rec.get("duplicate"))
            bar.update(1)
            bar.set_postfix(pages=counts["ok page"], images=counts["ok image"], dups=counts["duplicate"],
                            failed=counts["failed page"] + counts["failed image"], refresh=False)

        for rec in bad_inputs:
            if (rec["kind"], rec["url"]) not in last:
                log(rec)
        running, images_in_flight = {}, 0
        try:
            while frontier or running:
                while frontier and len(running) < opts["concurrency"]:
                    kind, url, depth, page, site = frontier.popleft()
                    if kind == "page" and pages_done >= opts["max_pages"]:
                        continue  # over the budget: left unfetched (and unrecorded) for a rerun with more
                    if kind == "image" and opts["max_images"]:
                        if images_done >= opts["max_images"]:
                            continue
                        if images_done + images_in_flight >= opts["max_images"]:
                            # Each image in flight may become a stored file: wait for them, so concurrency
                            # never stores more than --max_images (one that fails or is a duplicate frees a slot).
                            frontier.appendleft((kind, url, depth, page, site))
                            break
                    pages_done += kind == "page"
                    images_in_flight += kind == "image"
                    fn = crawler.fetch_page if kind == "page" else crawler.fetch_image
                    running[pool.submit(fn, url)] = (kind, url, depth, page, site)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    kind, url, depth, page, site = running.pop(future)
                    images_in_flight -= kind == "image"
                    rec = {"kind": kind, "url": url, "page": page}
                    if kind == "page":
                        rec.update(depth=depth, site=site)
                    try:
                        result = future.result()
                        rec.update(ok=True, error=None)
                    except FetchError as e:
                        rec.update(ok=False, error=str(e), status=e.status, final_url=e.final_url)
                        log(rec)
                        continue
                    except Exception as e:  # a bug or an odd server must not end the crawl: record it
                        rec.update(ok=False, error=f"error: {type(e).__name__}: {e}"[:300])
                        log(rec)
                        continue
                    if kind == "image":
                        body = result.pop("body")
                        rec.update(result)
                        sha = result["sha256"]
                        if sha in stored:
                            rec.update(file=stored[sha], duplicate=True)
                        else:
                            # Named by content hash with an extension from the decoded format: nothing the
                            # server says can steer the path, so nothing lands outside --out.
                            name = f"{sha}.{FORMATS[result['format']]}"
                            utils.atomic_write(os.path.join(out, name), lambda f: f.write(body))
                            stored[sha] = name
                            rec.update(file=name, duplicate=False)
                            images_done += 1
                    else:
                        rec.update(result)
                        links = result["links"]
                        for raw in links["refused"]:
                            if ("image", raw) not in seen:
                                seen.add(("image", raw))
                                log({"kind": "image", "url": raw, "page": url, "ok": False,
                                     "error": "refused (scheme): not an http(s) URL"})
                        for img in links["images"]:
                            enqueue("image", img, depth + 1, url, None)
                        for nxt in links["next"]:  # pagination: the same listing, so the same depth
                            if urlsplit(nxt).hostname == site:
                                enqueue("page", nxt, depth, url, site)
                        if depth < opts["max_depth"]:
                            for link in links["pages"]:
                                if urlsplit(link).hostname == site:
                                    enqueue("page", link, depth + 1, url, site)
                    log(rec)
        finally:
            for future in running:
                future.cancel()
            crawler.close()
    summary = summarize(read_manifest(manifest_path), time.time() - start, counts)
    utils.write_json(os.path.join(out, "crawl_summary.json"), summary)
    return summary


def summarize(records, seconds, counts):
    """Latest record per URL: pages and images fetched, stored files, duplicates and failures by reason."""
    last = {}
    for rec in records:
        last[(rec["kind"], rec["url"])] = rec
    failures = collections.Counter()
    for rec in last.values():
        if not rec.get("ok"):
            failures[f"{rec['kind']}: {rec['error'].split(':')[0]}"] += 1
    values = list(last.values())
    return {"pages_ok": sum(r["kind"] == "page" and bool(r.get("ok")) for r in values),
            "images_ok": sum(r["kind"] == "image" and bool(r.get("ok")) for r in values),
            "files_stored": len({r["file"] for r in values if r.get("file")}),
            "duplicates": sum(bool(r.get("duplicate")) for r in values),
            "failures": dict(failures.most_common()),
            "fetched_this_run": sum(counts[k] for k in ("ok page", "ok image", "failed page", "failed image")),
            "seconds": round(seconds, 2)}


def format_summary(s):
    lines = [f"pages {s['pages_ok']}, images {s['images_ok']} ({s['files_stored']} files, {s['duplicates']} "
             f"duplicates), {s['fetched_this_run']} URLs this run in {s['seconds']} s"]
    lines += [f"  failed {n:6d}  {reason}" for reason, n in s["failures"].items()]
    return "\n".join(lines)
