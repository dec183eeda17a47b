"""Subset the bundled Noto Sans KR (npm, OFL-1.1) to the characters the page shows, as small WOFF2 files."""
import hashlib
import io
import logging as pylogging
import os

from absl import logging

import utils

pylogging.getLogger("fontTools").setLevel(pylogging.WARNING)  # its subsetter logs every table at INFO

FONT_PACKAGE = "@expo-google-fonts/noto-sans-kr"
# (TTF in the npm package, file the page's style.css loads): the page's two weights.
FONT_FILES = (("400Regular/NotoSansKR_400Regular.ttf", "noto-sans-kr-400.woff2"),
              ("700Bold/NotoSansKR_700Bold.ttf", "noto-sans-kr-700.woff2"))
LICENSE_FILE = "LICENSE_FONT"  # the SIL Open Font License 1.1; it travels with the font files
ALWAYS = "".join(chr(c) for c in range(0x20, 0x7F)) + "\u00a0…←→×·–—−≈“”‘’"  # digits and Latin for any number


def page_text(page_dir, names, extra=()):
    """Every character the page can show: its files' text (both languages), extra strings (figure captions)
    and printable ASCII."""
    chars = set(ALWAYS)
    for name in names:
        with open(os.path.join(page_dir, name), encoding="utf-8") as f:
            chars.update(f.read())
    for s in extra:
        chars.update(s)
    return "".join(sorted(c for c in chars if c.isprintable()))


def subset_font(ttf_path, text):
    """WOFF2 bytes of ttf_path holding only the glyphs for text (with the layout features Korean needs)."""
    try:
        from fontTools import subset
        from fontTools.ttLib import TTFont
        import brotli  # noqa: F401  (WOFF2 compression; fontTools imports it lazily and fails late without it)
    except ImportError as e:
        raise FileNotFoundError(f"the page's font needs fonttools and brotli ({e.name} is missing): "
                                "pip install fonttools brotli") from e
    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = ["*"]
    options.name_IDs = ["*"]  # keep the copyright and licence names the OFL asks to keep
    font = TTFont(ttf_path)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    out = io.BytesIO()
    font.flavor = "woff2"
    font.save(out)
    return out.getvalue()


def write_fonts(package_dir, out_dir, text, cache_dir=None):
    """Write the page's subset fonts and the font licence into out_dir; returns the bytes written.

    A subset takes ~2 s (parsing a 6 MB TTF), so it is cached in cache_dir under a hash of font and text."""
    os.makedirs(out_dir, exist_ok=True)
    total = 0
    for src, name in FONT_FILES:
        ttf = os.path.join(package_dir, src)
        if not os.path.isfile(ttf):
            raise FileNotFoundError(f"{ttf} is missing: reinstall the page's npm packages (npm ci in "
                                    f"{os.path.dirname(os.path.dirname(package_dir))})")
        key = hashlib.sha256(f"{src}:{os.path.getsize(ttf)}:{text}".encode()).hexdigest()[:20]
        cached = os.path.join(cache_dir, f"{key}.woff2") if cache_dir else None
        if cached and os.path.isfile(cached):
            with open(cached, "rb") as f:
                data = f.read()
        else:
            data = subset_font(ttf, text)
            if cached:
                try:
                    os.makedirs(cache_dir, exist_ok=True)
                    utils.atomic_write(cached, lambda f: f.write(data))
                except OSError as e:  # a read-only install: subset again next time
                    logging.debug("cannot cache the font subset in %s: %s", cache_dir, e)
        utils.atomic_write(os.path.join(out_dir, name), lambda f: f.write(data))
        total += len(data)
    with open(os.path.join(package_dir, LICENSE_FILE), "rb") as f:
        licence = f.read()
    utils.atomic_write(os.path.join(out_dir, "OFL.txt"), lambda f: f.write(licence))
    logging.info("page font: Noto Sans KR subset to %d characters, %.0f KB", len(text), total / 1e3)
    return total
