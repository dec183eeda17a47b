"""`python -m preprocess download celebA|mnist`: the original's download.py, with checksums, resume, atomic renames."""
import gzip
import hashlib
import os
import re
import shutil
import socket
import threading
import time
import urllib.request
import zipfile
import zlib
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
from tqdm import tqdm

import utils
from preprocess import mnist

# Sources replace the built-in ones with <base URL>/<file name> when this is set (or --mirror is given): for tests and
# local mirrors. The checksums stay the published ones, so a mirror must serve the very same files.
MIRROR_ENV = "NEURALFACE_DOWNLOAD_MIRROR"
USER_AGENT = "NeuralFace-download/0.1"
CHUNK = 1 << 20

# MNIST, as the original's download_mnist: the four idx files, gzipped, gunzipped into data_dir/mnist. Tried in order.
MNIST_SOURCES = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # primary: PyTorch's copy (torchvision's mirror list)
    "https://storage.googleapis.com/cvdf-datasets/mnist/",  # Google's CVDF copy (TensorFlow Datasets downloads it)
    "http://yann.lecun.com/exdb/mnist/",  # the original's source, last: it has often refused downloads since 2023
]
# (name, bytes, sha256) from TensorFlow Datasets' tensorflow_datasets/url_checksums/mnist.txt; the md5 sums in
# torchvision/datasets/mnist.py (f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d...) name the same files.
MNIST_FILES = [
    ("train-images-idx3-ubyte.gz", 9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    ("train-labels-idx1-ubyte.gz", 28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    ("t10k-images-idx3-ubyte.gz", 1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    ("t10k-labels-idx1-ubyte.gz", 4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
]

# CelebA, as the original's download_celeb_a: img_align_celeba.zip from Google Drive, unzipped into data_dir/celebA.
CELEBA_DRIVE_ID = "0B7EVK8r0v71pZjFTYXZWM3FlRnM"  # the id in the original's download.py
# Size and sha256 from TensorFlow Datasets' tensorflow_datasets/datasets/celeb_a/checksums.tsv (the same Drive id);
# torchvision/datasets/celeba.py gives md5 00d2c5bc6d35e252742224ab0c1e8fcb for it.
CELEBA_FILE = ("img_align_celeba.zip", 1443490838, "46fb89443c578308acf364d7d379fe1b9efb793042c0af734b6112e4fd3a8c74")
CELEBA_SOURCES = [
    # primary: Drive's direct download endpoint, which answers Range requests; confirm=t skips the virus-scan page
    f"https://drive.usercontent.google.com/download?id={CELEBA_DRIVE_ID}&export=download&confirm=t",
    f"https://docs.google.com/uc?export=download&id={CELEBA_DRIVE_ID}",  # the original's; its confirm page is followed
]


class DownloadError(OSError):
    """A file could not be had from any source; the message says why and what to do."""


class Unreachable(DownloadError):
    """No answer at all from a source: no DNS, no route, connection refused or timed out."""


class Retry(Exception):
    """A cut connection or a stall: try the same source again, resuming from the bytes already written."""


def source_urls(name, sources, mirror):
    """URLs to try for a file: <mirror>/<name> alone when a mirror is set, else the built-in sources."""
    if not mirror:
        return [s + name if s.endswith("/") else s for s in sources]
    if urlsplit(mirror).scheme not in ("http", "https"):
        raise ValueError(f"--mirror / ${MIRROR_ENV} must be an http(s) URL, not {mirror!r}")
    return [mirror.rstrip("/") + "/" + name]


def check_resolves(url, timeout):
    """Fail fast, with a reason, when the host has no address: httpx's connect timeout does not cover DNS look-ups,
    which can hang for a long time on a machine without network. Skipped when a proxy resolves names for us."""
    host = urlsplit(url).hostname
    if not host or urllib.request.getproxies():
        return
    outcome = {}

    def resolve():
        try:
            socket.getaddrinfo(host, None)
        except OSError as e:
            outcome["error"] = e

    worker = threading.Thread(target=resolve, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise Unreachable(f"cannot resolve {host}: no answer within {timeout:g} s (no network or DNS here?)")
    if "error" in outcome:
        raise Unreachable(f"cannot resolve {host} ({outcome['error']}): this machine may have no internet access")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path, size, sha256):
    """None when the file has the published size and sha256, else what is wrong."""
    actual = os.path.getsize(path)
    if actual != size:
        return f"{actual} bytes where the published file has {size}"
    got = sha256_of(path)
    return None if got == sha256 else f"sha256 {got} is not the published {sha256}"


def keep_aside(path, final):
    """Rename a file that failed its checksum to <final>.bad[.N]: never used, never deleted."""
    target, n = final + ".bad", 1
    while os.path.exists(target):
        target, n = f"{final}.bad.{n}", n + 1
    os.replace(path, target)
    return target


def content_range(header):
    """(first byte, total size or None) of a 'bytes first-last/total' Content-Range header."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", header or "")
    if not match:
        raise DownloadError(f"unreadable Content-Range {header!r} in a 206 answer")
    return int(match.group(1)), None if match.group(2) == "*" else int(match.group(2))


class _FormFinder(HTMLParser):
    """The first download form of a page (its action and hidden fields) and the page's title, read with the stdlib."""

    def __init__(self):
        super().__init__()
        self.forms, self.title, self._in_form, self._in_title = [], "", False, False

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"id": attrs.get("id", ""), "action": attrs.get("action", ""), "fields": {}})
            self._in_form = True
        elif tag == "input" and self._in_form and attrs.get("name") and attrs.get("type", "").lower() == "hidden":
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value", "")
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def page_form_url(response):
    """The URL behind a download page's form (Google Drive's 'can't scan this file for viruses' page), or an error
    saying what the page is (Drive's 'too many users have viewed or downloaded this file' quota page)."""
    html = response.read()[:2_000_000]
    page = _FormFinder()
    page.feed(html.decode("utf-8", "replace") if isinstance(html, bytes) else html)
    forms = [f for f in page.forms if f["id"] == "download-form"] or \
            [f for f in page.forms if "download" in f["action"]]
    if forms and forms[0]["action"]:
        action = urljoin(str(response.url), forms[0]["action"])
        return action + ("&" if "?" in action else "?") + urlencode(forms[0]["fields"])
    title = " ".join(page.title.split()) or "untitled"
    raise DownloadError(f"got a web page ({title!r}) instead of the file: for Google Drive the download quota may be "
                        f"spent for today; try later, or fetch the file in a browser and put it in place")


def stream_once(client, url, part, size, deadline, max_time, progress, pages_left=2):
    """One GET of url appended to the .part file (Range from its length); returns when the body has been read."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    if have == size:
        return  # complete from an earlier run: only the checksum is left
    if have > size:
        print(f"{part} is longer than the file ({have} > {size} bytes): starting again")
        os.unlink(part)
        have = 0
    # identity: the bytes as stored (a .gz served with Content-Encoding: gzip must not be unpacked on the way)
    headers = {"Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    host = urlsplit(url).hostname
    try:
        with client.stream("GET", url, headers=headers) as r:
            if r.status_code == 416 and have:  # the .part is no prefix of what this server has
                print(f"{url}: the server cannot continue {part} ({have} bytes): starting again")
                os.unlink(part)
                raise Retry("range not satisfiable")
            if r.status_code in (429, 500, 502, 503, 504):
                raise Retry(f"HTTP {r.status_code} {r.reason_phrase}")
            if r.status_code not in (200, 206):
                raise DownloadError(f"HTTP {r.status_code} {r.reason_phrase}")
            if r.headers.get("content-type", "").lower().startswith("text/html"):
                if not pages_left:
                    raise DownloadError("got web page after web page instead of the file")
                next_url = page_form_url(r)
                return stream_once(client, next_url, part, size, deadline, max_time, progress, pages_left - 1)
            if r.status_code == 206:
                start, total = content_range(r.headers.get("content-range"))
                if start != have:
                    raise DownloadError(f"asked to resume at byte {have}, the server answered from byte {start}")
            else:
                start, length = 0, r.headers.get("content-length")
                total = int(length) if length and length.isdigit() else None
                if have:
                    print(f"{host} ignored the range request: downloading from byte 0 again")
            if total is not None and total != size:
                raise DownloadError(f"the server offers {total} bytes where the published file has {size}")
            written = start
            with open(part, "r+b" if start else "wb") as f, \
                    tqdm(total=size, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                         desc=os.path.basename(part)[:-len(".part")], disable=not progress, leave=False) as bar:
                f.seek(start)
                f.truncate()
                for chunk in r.iter_raw():  # as the network delivers: no partly filled buffer is lost on a cut
                    written += len(chunk)
                    if written > size:
                        raise DownloadError(f"the server sent more than the published {size} bytes")
                    f.write(chunk)
                    bar.update(len(chunk))
                    if time.monotonic() > deadline:
                        f.flush()
                        raise DownloadError(f"still downloading after --max_time {max_time:g} s "
                                            f"({written} of {size} bytes kept in {part}); run again to resume")
                f.flush()
                os.fsync(f.fileno())
            if written < size:  # a server that closes early without having promised a length
                raise Retry(f"the connection ended after {written} of {size} bytes")
    except httpx.ConnectTimeout:
        raise Unreachable(f"no connection to {host} within {client.timeout.connect:g} s (no network, or the host "
                          "is down)")
    except httpx.ConnectError as e:
        raise Unreachable(f"cannot connect to {host} ({e}): no network, or the host is down")
    except httpx.ReadTimeout:
        raise Retry(f"{host} sent nothing for {client.timeout.read:g} s (--read_timeout)")
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as e:
        raise Retry(f"connection to {host} cut ({str(e) or type(e).__name__})")
    except httpx.HTTPError as e:  # too many redirects, a bad URL, an unknown protocol...
        raise DownloadError(f"{type(e).__name__}: {e}")


def fetch_one(url, part, size, connect_timeout, read_timeout, max_time, retries, progress):
    """Download url into part, retrying cut connections and stalls (each retry resumes) within max_time seconds."""
    deadline = time.monotonic() + max_time
    check_resolves(url, connect_timeout)
    timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout)
    with httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=5,
                      headers={"User-Agent": USER_AGENT}) as client:
        for attempt in range(retries + 1):
            try:
                return stream_once(client, url, part, size, deadline, max_time, progress)
            except Retry as e:
                wait = min(0.5 * 2 ** attempt, 8.0)
                have = os.path.getsize(part) if os.path.exists(part) else 0
                if attempt == retries or time.monotonic() + wait > deadline:
                    kept = f" ({have} bytes kept in {part}; run again to resume)" if have else ""
                    tries = f"{attempt + 1} tries" if attempt else "1 try"
                    raise DownloadError(f"{e}; gave up after {tries}{kept}")
                print(f"{e}: trying again in {wait:g} s from byte {have}")
                time.sleep(wait)


def check_options(connect_timeout, read_timeout, max_time, retries):
    if connect_timeout <= 0 or read_timeout <= 0 or max_time <= 0 or retries < 0:
        raise ValueError("--connect_timeout, --read_timeout and --max_time must be > 0, --retries >= 0")


def fetch(name, size, sha256, urls, dest, connect_timeout=10.0, read_timeout=30.0, max_time=7200.0, retries=3,
          progress=True):
    """Download the published file `name` to dest from the first of urls that serves it whole and intact. Bytes go to
    dest.part (resumed with an HTTP Range request on the next try or run); only a file with the published size and
    sha256 is renamed to dest. A file that fails the checksum is kept aside as dest.bad and the next source tried."""
    check_options(connect_timeout, read_timeout, max_time, retries)
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    part, failures, unreachable = dest + ".part", [], 0
    for url in urls:
        print(f"downloading {name} from {url}")
        try:
            fetch_one(url, part, size, connect_timeout, read_timeout, max_time, retries, progress)
        except DownloadError as e:
            failures.append(f"{url}: {e}")
            unreachable += isinstance(e, Unreachable)
            continue
        problem = verify(part, size, sha256)
        if problem is None:
            os.replace(part, dest)
            return dest
        failures.append(f"{url}: {problem}; the download is kept as {keep_aside(part, dest)}, not used")
    hint = ""
    if unreachable == len(failures):
        hint = (f"\nno source answered: this machine seems to have no internet access. Download {name} elsewhere "
                f"and put it in {os.path.dirname(os.path.abspath(dest))} (or serve it and pass --mirror URL), then run "
                "this again")
    raise DownloadError(f"could not download {name}:\n  " + "\n  ".join(failures) + hint)


def existing_archive(path, size, sha256):
    """True when a complete archive from an earlier run (or put there by hand) is in place and intact; one that is
    not is kept aside, so that it is downloaded again."""
    if not os.path.exists(path):
        return False
    problem = verify(path, size, sha256)
    if problem is None:
        return True
    print(f"{path}: {problem}; kept as {keep_aside(path, path)}, downloading it again")
    return False


def check_space(folder, need):
    free = shutil.disk_usage(folder).free
    if free < need:
        raise DownloadError(f"{folder} has {free / 1e9:.1f} GB free; this needs {need / 1e9:.1f} GB")


def gunzip(archive, target):
    def write(f):
        try:
            with gzip.open(archive, "rb") as src:
                shutil.copyfileobj(src, f, CHUNK)
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise DownloadError(f"{archive} passed its checksum but does not gunzip ({e})") from None
    utils.atomic_write(target, write)


def download_mnist(data_dir, mirror=None, keep_archives=False, **fetch_options):
    """data_dir/mnist with the four idx files, gunzipped as the original left them for its load_mnist."""
    folder = os.path.join(data_dir, "mnist")
    os.makedirs(folder, exist_ok=True)
    for name, size, sha256 in MNIST_FILES:
        archive, target = os.path.join(folder, name), os.path.join(folder, name[:-len(".gz")])
        if os.path.exists(target):
            print(f"found {target}: skip")
            continue
        if not existing_archive(archive, size, sha256):
            check_space(folder, 2 * size)
            fetch(name, size, sha256, source_urls(name, MNIST_SOURCES, mirror), archive, **fetch_options)
        gunzip(archive, target)
        if not keep_archives:
            os.unlink(archive)
    images, labels = mnist.load_mnist(folder, shuffle_seed=None)  # checks every header and size
    print(f"MNIST ready in {folder}: {len(images)} images of {images.shape[1]}x{images.shape[2]}, "
          f"{len(set(labels.tolist()))} digits")
    return folder


def extract_zip(archive, target, progress=True):
    """Unzip into a hidden folder beside target, then rename its single top folder (img_align_celeba/) to target,
    as the original renamed zf.namelist()[0]; target appears whole or not at all."""
    staging = os.path.join(os.path.dirname(target), "." + os.path.basename(target) + ".extracting")
    if os.path.exists(staging):
        shutil.rmtree(staging)  # left by an interrupted extraction of ours
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in tqdm(zf.infolist(), desc="unzip", unit="file", disable=not progress, leave=False):
                zf.extract(member, staging)  # extract() drops absolute paths and '..' from member names
    except zipfile.BadZipFile as e:
        raise DownloadError(f"{archive} passed its checksum but does not unzip ({e})") from None
    entries = os.listdir(staging)
    root = staging
    if len(entries) == 1 and os.path.isdir(os.path.join(staging, entries[0])):
        root = os.path.join(staging, entries[0])
    if not any(n.lower().endswith(".jpg") for n in os.listdir(root)):
        raise DownloadError(f"{archive} holds no .jpg images at its top level; left unpacked in {staging}")
    os.replace(root, target)
    if root != staging:
        shutil.rmtree(staging)
    return len(os.listdir(target))


def download_celeba(data_dir, mirror=None, keep_archives=False, **fetch_options):
    """data_dir/celebA/*.jpg (202,599 aligned 178x218 photos), as the original's download_celeb_a made it."""
    target = os.path.join(data_dir, "celebA")
    if os.path.exists(target):
        print(f"found {target}: skip (remove it to download again)")
        return target
    os.makedirs(data_dir, exist_ok=True)
    name, size, sha256 = CELEBA_FILE
    archive = os.path.join(data_dir, name)
    if not existing_archive(archive, size, sha256):
        have = os.path.getsize(archive + ".part") if os.path.exists(archive + ".part") else 0
        check_space(data_dir, 2 * size - have)  # the rest of the zip, then about as much again unpacked
        fetch(name, size, sha256, source_urls(name, CELEBA_SOURCES, mirror), archive, **fetch_options)
    count = extract_zip(archive, target, progress=fetch_options.get("progress", True))
    if not keep_archives:
        os.unlink(archive)
    print(f"CelebA ready in {target}: {count} images")
    return target


def add_parser(sub):
    p = sub.add_parser("download", help="download celebA or MNIST (the original's download.py)",
                       description="Download the original's data sets into --data_dir: celebA (img_align_celeba.zip "
                                   "from Google Drive, unzipped into celebA/) and mnist (four idx files, gunzipped "
                                   "into mnist/). Every file is checked against its published sha256; partial "
                                   "downloads resume when run again.")
    p.add_argument("datasets", nargs="+", choices=["celebA", "mnist"],
                   type=lambda s: {"celeba": "celebA", "mnist": "mnist"}.get(s.lower(), s), help="celebA and/or mnist")
    p.add_argument("--data_dir", default="./data", help="folder for the data sets (main.py --data_dir) [./data]")
    p.add_argument("--mirror", default=os.environ.get(MIRROR_ENV) or None,
                   help=f"fetch <mirror>/<file name> instead of the built-in sources, checked against the same "
                        f"sums (local mirrors, tests); also ${MIRROR_ENV}")
    p.add_argument("--connect_timeout", type=float, default=10.0, help="seconds to resolve and connect [10]")
    p.add_argument("--read_timeout", type=float, default=30.0, help="seconds without data before retrying [30]")
    p.add_argument("--max_time", type=float, default=7200.0,
                   help="seconds for one file from one source; a rerun resumes [7200]")
    p.add_argument("--retries", type=int, default=3, help="tries again (resuming) after a cut connection [3]")
    p.add_argument("--keep_archives", action="store_true", help="keep the .zip/.gz files after unpacking them")
    p.add_argument("--noprogress", action="store_true", help="no progress bar")


def run_cli(a):
    options = dict(connect_timeout=a.connect_timeout, read_timeout=a.read_timeout, max_time=a.max_time,
                   retries=a.retries, progress=not a.noprogress)
    check_options(a.connect_timeout, a.read_timeout, a.max_time, a.retries)  # before any folder is made
    source_urls("", [], a.mirror)
    for name in dict.fromkeys(a.datasets):
        {"celebA": download_celeba, "mnist": download_mnist}[name](a.data_dir, mirror=a.mirror,
                                                                   keep_archives=a.keep_archives, **options)
