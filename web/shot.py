"""Screenshot an exported web page in headless Chromium (Debian's chromium, driven by PyPI playwright).

    python -m web.shot SITE_DIR assets/web_page.png [--faces 8] [--lang en] [--backend auto]
"""
import argparse
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # utils imports TensorFlow; keep its start-up lines out

import utils  # noqa: E402
from web import serve as webserve  # noqa: E402

# Headless Chromium has no GPU: SwiftShader gives WebGL a software implementation.
CHROMIUM_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]


def launch(playwright):
    """Chromium from PATH (never a downloaded browser); raises FileNotFoundError when it is not installed."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise FileNotFoundError("no chromium on PATH: install it with `apt-get install -y chromium`")
    return playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)


def scroll_through(page):
    """Scroll to the bottom in half screens, as a reader would, so every lazily loaded figure comes into view once;
    returns when all figure images have loaded."""
    page.evaluate("""async () => {
        for (let y = 0; y < document.body.scrollHeight; y += innerHeight / 2) {
            scrollTo(0, y);
            await new Promise((r) => setTimeout(r, 60));
        }
    }""")
    page.wait_for_function("Array.from(document.querySelectorAll('#figures img')).every("
                           "i => i.getAttribute('src') && i.complete)")


def screenshot(page, path, faces=8, full_page=False):
    """Draw a few random faces on an opened page, then save a PNG of the viewport (or the full page) at path."""
    if not page.evaluate("window.nf.ready"):
        raise ValueError(f"the page failed to load its model: {page.evaluate('window.nf.state.error')}")
    for _ in range(max(faces - 1, 0)):
        page.click("#random")
        page.evaluate("window.nf.idle()")
    if full_page:  # figures load as they scroll into view
        scroll_through(page)
        page.evaluate("scrollTo(0, 0)")
    page.evaluate("document.querySelectorAll('video').forEach(v => v.pause())")
    with utils.atomic_path(path) as tmp:
        page.screenshot(path=tmp, full_page=full_page)
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("site_dir", help="a folder written by `python main.py --export_web DIR`")
    p.add_argument("out", help="PNG to write, e.g. assets/web_page.png")
    p.add_argument("--faces", type=int, default=8, help="faces to draw into the strip first [8]")
    p.add_argument("--lang", default="en", choices=["en", "ko"])
    p.add_argument("--backend", default="auto", choices=["auto", "wasm", "webgl", "cpu"])
    p.add_argument("--width", type=int, default=1100)
    p.add_argument("--height", type=int, default=900, help="viewport height: the demo part of the page [900]")
    p.add_argument("--full_page", action="store_true", help="the whole page, figures included")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright
    try:
        server, url = webserve.start_background(args.site_dir)
        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.goto(f"{url}?lang={args.lang}&backend={args.backend}")
            print("wrote", screenshot(page, args.out, args.faces, args.full_page))
            browser.close()
        server.shutdown()
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
