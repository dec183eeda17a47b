"""Measure what the web page downloads: bytes before the first face is drawn, and in total once every figure has
been scrolled past, in headless Chromium.

    python bench/web_bytes.py [--figures assets] [--checkpoint checkpoints/faces_64] [--backend wasm]

Exports the generator (default: the shipped one) with the figures of --figures (a folder with figures.json;
default: the committed assets/) into a scratch folder, serves it on 127.0.0.1 and counts the response bodies.
"""
import argparse
import collections
import datetime
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import model  # noqa: E402
from web import export as webexport  # noqa: E402
from web import serve as webserve  # noqa: E402
from web import shot as webshot  # noqa: E402

def kind(path):
    if path.startswith(("figures/", "epochs/")):
        return "figures"
    if path.startswith("tfjs/"):
        return "TF.js"
    if path.startswith("fonts/"):
        return "font"
    if path in ("weights.bin", "model.json"):
        return "weights"
    return "page"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--figures", default=os.path.join(ROOT, "assets"))
    p.add_argument("--checkpoint", default=os.path.join(ROOT, "checkpoints", "faces_64"))
    p.add_argument("--backend", default="wasm")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    generator, cfg, meta = model.load_generator_weights(args.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        site = os.path.join(tmp, "site")
        webexport.export(generator, cfg, site, args.figures, "float16", int(meta.get("step", 0)),
                         epochs_dir=os.path.join(args.checkpoint, "epochs"))
        server, url = webserve.start_background(site)
        sizes = []
        with sync_playwright() as pw:
            browser = webshot.launch(pw)
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("requestfinished", lambda r: sizes.append((r.url[len(url):].split("?")[0] or "index.html",
                                                               r.sizes()["responseBodySize"])))
            page.goto(f"{url}?backend={args.backend}")
            if not page.evaluate("window.nf.ready"):
                sys.exit(f"error: the page did not load: {page.evaluate('window.nf.state.error')}")
            first = list(sizes)
            webshot.scroll_through(page)
            page.wait_for_timeout(3000)  # videos keep fetching while they play
            browser.close()
        server.shutdown()
    print(f"{datetime.date.today()} · Chromium headless, {args.backend} · generator {args.checkpoint} · figures "
          f"{args.figures}")
    print("| what | before the first face | in total (every figure scrolled past) |")
    print("|---|---|---|")
    before, total = collections.Counter(), collections.Counter()
    for path, n in first:
        before[kind(path)] += n
    for path, n in sizes:
        total[kind(path)] += n
    for k in ("page", "font", "TF.js", "weights", "figures"):
        print(f"| {k} | {before[k] / 1e6:.2f} MB | {total[k] / 1e6:.2f} MB |")
    print(f"| **all** | **{sum(before.values()) / 1e6:.2f} MB** ({len(first)} requests) | "
          f"**{sum(total.values()) / 1e6:.2f} MB** ({len(sizes)} requests) |")


if __name__ == "__main__":
    main()
