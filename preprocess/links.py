"""The links of an HTML page (images, pagination, other pages) from one streaming pass: linear in the page's size,
bounded in links kept and in time."""
import codecs
import html
import re
import time
from urllib.parse import urldefrag, urljoin, urlsplit

IMAGE_PATH_ENDINGS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp")
NEXT_WORDS = {"next", "next page", "next »", "older", "more", "»", "›", ">", ">>"}
LINK_TAGS = ("a", "img", "source", "link", "base")
LINK_ATTRIBUTES = ("href", "src", "data-src", "srcset", "rel")
RAW_TEXT = {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "plaintext"}
RAW_TEXT_END = {}  # tag -> compiled "</tag" pattern
MAX_ATTRIBUTES = 256
TAG_OPEN = re.compile(r"<[A-Za-z/!?]")
NAME = re.compile(r"[^\t\n\f\r />]*")
SPACE = re.compile(r"[\t\n\f\r /]*")
ATTR_NAME = re.compile(r"[^\t\n\f\r />][^\t\n\f\r /=>]*")
EQUALS = re.compile(r"[\t\n\f\r ]*=[\t\n\f\r ]*")
UNQUOTED = re.compile(r"[^\t\n\f\r >]*")
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE)


class ParseTimeout(Exception):
    """The page was not parsed before its deadline."""


def clean_url(url, base=None):
    """Absolute http(s) URL without its #fragment, or None for other schemes (mailto:, javascript:, data:, file:)."""
    try:
        url = urljoin(base, url.strip()) if base else url.strip()
        url = urldefrag(url)[0]
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return None
    except ValueError:  # e.g. "http://[::1" (a bad IPv6 literal)
        return None
    return url


def largest_srcset(srcset):
    """The candidate URL with the biggest width (w) or density (x) descriptor in a srcset attribute."""
    best, best_size = None, -1.0
    for candidate in srcset.split(","):
        parts = candidate.split()
        if not parts:
            continue
        size = 1.0
        if len(parts) > 1 and parts[1][-1:] in ("w", "x"):
            try:
                size = float(parts[1][:-1])
            except ValueError:
                pass
        if size > best_size:
            best, best_size = parts[0], size
    return best


def page_text(body, charset=None):
    """The page as text: the Content-Type charset, else a BOM or <meta charset> near the top, else UTF-8; bytes
    that do not decode become U+FFFD (links are nearly always ASCII)."""
    if isinstance(body, str):
        return body
    if body.startswith(codecs.BOM_UTF8):
        charset = "utf-8-sig"
    elif body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        charset = "utf-16"
    elif not charset:
        found = META_CHARSET.search(body[:4096])
        charset = found.group(1).decode("ascii") if found else "utf-8"
    try:
        return body.decode(charset, "replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", "replace")


def tokens(text):
    """The tags of an HTML text as ("start", name, attributes), ("end", name, None) and ("text", start, end)
    events, in one pass: every search starts where the last one ended and the position only moves forward, so
    time is linear in the text whatever it holds (Python 3.11's html.parser goes quadratic on a page of "</" or
    "<a " repeated: minutes for 2 MB). What it skips as a browser would: comments, <!...> and <?...>,
    the content of <script>, <style> and the other raw-text elements, and a tag the text ends inside."""
    pos, n = 0, len(text)
    while pos < n:
        found = TAG_OPEN.search(text, pos)
        if found is None:
            yield "text", pos, n
            return
        lt = found.start()
        if lt > pos:
            yield "text", pos, lt
        kind = text[lt + 1]
        if text.startswith("<!--", lt):
            end = text.find("-->", lt + 4)
            if end < 0:
                return
            pos = end + 3
        elif kind in "!?" or (kind == "/" and not text[lt + 2:lt + 3].isalpha()):
            end = text.find(">", lt + 2)  # <!DOCTYPE ...>, <?xml ...?>, "</ 3>": skipped to the next ">"
            if end < 0:
                return
            pos = end + 1
        elif kind == "/":
            name = NAME.match(text, lt + 2)
            end = text.find(">", name.end())
            if end < 0:
                return
            yield "end", name.group().lower(), None
            pos = end + 1
        else:
            name = NAME.match(text, lt + 1)
            tag, p, attrs = name.group().lower(), name.end(), {}
            for _ in range(MAX_ATTRIBUTES):
                p = SPACE.match(text, p).end()
                if p >= n:
                    return  # the text ends inside the tag: browsers drop it
                if text[p] == ">":
                    break
                attr = ATTR_NAME.match(text, p)  # always at least one character: the loop moves on
                p, value = attr.end(), ""
                equals = EQUALS.match(text, p)
                if equals:
                    p = equals.end()
                    if p < n and text[p] in "\"'":
                        close = text.find(text[p], p + 1)
                        if close < 0:
                            return
                        value, p = text[p + 1:close], close + 1
                    else:
                        unquoted = UNQUOTED.match(text, p)
                        value, p = unquoted.group(), unquoted.end()
                attrs.setdefault(attr.group().lower(), value)  # a repeated attribute: the first counts
            else:  # a hostile tag: the attributes past MAX_ATTRIBUTES are skipped
                p = text.find(">", p)
                if p < 0:
                    return
            pos = p + 1
            yield "start", tag, attrs
            if tag in RAW_TEXT:
                if tag not in RAW_TEXT_END:
                    RAW_TEXT_END[tag] = re.compile(r"</" + tag + r"[\t\n\f\r />]", re.IGNORECASE)
                close = RAW_TEXT_END[tag].search(text, pos)
                if close is None:
                    return
                pos = close.start()


class LinkCollector:
    """The tags that carry links, as (tag, attributes, anchor text), at most max_links of them, and the first
    <base href>; memory grows with the links kept, not with the page."""

    def __init__(self, text, max_links):
        self.text, self.max_links, self.found = text, max_links, []
        self.base, self.anchor, self.full = None, None, False

    def start(self, tag, attrs):
        if tag not in LINK_TAGS:
            return
        attrs = {k: html.unescape(v) for k, v in attrs.items() if k in LINK_ATTRIBUTES}
        if tag == "base":
            if self.base is None and attrs.get("href"):
                self.base = attrs["href"]
        elif tag == "a":
            self.end_anchor()  # <a> does not nest: a new one ends the last
            if attrs.get("href"):
                self.anchor = (attrs, [], [0])
        elif tag != "link" or attrs.get("href"):
            self.add(tag, attrs, "")

    def text_between(self, start, end):
        if self.anchor and self.anchor[2][0] < 200:  # enough text to tell "Next »" from a caption
            self.anchor[1].append(self.text[start:min(end, start + 200)])
            self.anchor[2][0] += end - start

    def end_anchor(self):
        if self.anchor:
            attrs, pieces, _ = self.anchor
            self.anchor = None
            self.add("a", attrs, " ".join(html.unescape("".join(pieces)).split()))

    def add(self, tag, attrs, text):
        if len(self.found) >= self.max_links:
            self.full = True
        else:
            self.found.append((tag, attrs, text))


def parse_page(body, page_url, charset=None, deadline=None, max_links=20_000):
    """({"images", "next", "pages", "refused"}, truncated): image URLs, same-depth pagination URLs and other page
    links (absolute, http(s) only, each once, in page order), and the image sources refused for their scheme
    (file:, ftp:...; inline data: images are left alone). truncated: the page had more than max_links links (the
    first ones are kept). Raises ParseTimeout past deadline (time.monotonic())."""
    text = page_text(body, charset)
    collector = LinkCollector(text, max_links)
    for count, (event, a, b) in enumerate(tokens(text)):
        if event == "start":
            collector.start(a, b)
        elif event == "end" and a == "a":
            collector.end_anchor()
        elif event == "text":
            collector.text_between(a, b)
        if collector.full:
            break
        if deadline is not None and count % 1024 == 0 and time.monotonic() > deadline:
            raise ParseTimeout("timeout: page not parsed within --max_time")
    collector.end_anchor()
    base = clean_url(collector.base, page_url) or page_url if collector.base else page_url
    images, next_pages, pages, refused = {}, {}, {}, {}  # dicts as ordered sets: one lookup per link

    def add(bucket, raw):
        url = clean_url(raw, base) if raw else None
        if url:
            bucket.setdefault(url)
        elif raw and bucket is images and not raw.strip().lower().startswith("data:"):
            refused.setdefault(raw.strip()[:300])

    for tag, values, _ in collector.found:
        if tag == "img":
            for attr in ("src", "data-src"):
                if values.get(attr):
                    add(images, values[attr])
        if tag in ("img", "source") and values.get("srcset"):
            add(images, largest_srcset(values["srcset"]))
    for tag, values, text in collector.found:
        if tag not in ("a", "link"):
            continue
        url = clean_url(values["href"], base)
        if url is None:  # not http(s): refused when it names an image, as an <img src> would be
            try:
                if urlsplit(values["href"].strip()).path.lower().endswith(IMAGE_PATH_ENDINGS):
                    add(images, values["href"])
            except ValueError:
                pass
        elif urlsplit(url).path.lower().endswith(IMAGE_PATH_ENDINGS):
            images.setdefault(url)
        elif "next" in values.get("rel", "").lower().split() or (tag == "a" and text.lower() in NEXT_WORDS):
            next_pages.setdefault(url)
        elif tag == "a":
            pages.setdefault(url)
    links = {"images": list(images), "next": list(next_pages), "pages": [p for p in pages if p not in next_pages],
             "refused": list(refused)}
    return links, collector.full
