"""Benchmark the web page in headless Chromium: model load time and warm draw time per TF.js backend.

    python bench/web_draw.py [--backends cpu,wasm,webgl] [--impls phase,transpose] [--dtype float16] [--draws 20]

Exports a default-size (64x64, gf_dim 64, z_dim 100) randomly initialised generator (speed does not depend on
training) with web/export.py, serves it on 127.0.0.1 and opens the page once per backend and implementation.
load = backend start + fetching and decoding the weights + one warm-up run; draw = one face, z in -> pixels
read back, median of --draws warm runs; max|diff| = the page's output against Keras for the same z.
"""
import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import model  # noqa: E402
from web import export as webexport  # noqa: E402
from web import serve as webserve  # noqa: E402
from web import shot as webshot  # noqa: E402


def spread_weights(generator, seed=0):
    """Trained-looking weights (batch-norm statistics too), so the output spreads over [-1, 1] and the diff means
    something; speed does not depend on the values."""
    rng = np.random.default_rng(seed)
    for v in generator.weights:
        shape = tuple(v.shape)
        if v.path.endswith(("moving_variance", "gamma")):
            a = rng.uniform(0.5, 1.5, shape)
        elif v.path.endswith(("beta", "moving_mean", "bias")):
            a = rng.normal(0.0, 0.3, shape)
        else:
            a = rng.normal(0.0, 1.0 / np.sqrt(shape[0] if len(shape) == 2 else shape[3] * 25 / 4), shape)
        v.assign(a.astype(np.float32))


def measure(browser, url, backend, impl, draws):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{url}?backend={backend}" + ("" if impl == "default" else f"&impl={impl}"))
        if not page.evaluate("window.nf.ready"):
            return {"error": page.evaluate("window.nf.state.error") or "; ".join(errors)}
        info = page.evaluate("""async (draws) => {
            const s = window.nf.state, times = [];
            for (let i = 0; i < draws; i++) {
                const z = window.nf.sampleZ(), t0 = performance.now();
                await window.nf.drawFace(z);
                times.push(performance.now() - t0);
            }
            return {backend: s.backend, impl: s.gen.impl, load_ms: s.timings.load_ms,
                    first_draw_ms: s.timings.first_draw_ms, draw_ms: times, z: Array.from(window.nf.state.lastZ),
                    out: Array.from(window.nf.state.lastOutput)};
        }""", draws)
        return info
    finally:
        page.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", default="cpu,wasm,webgl")
    p.add_argument("--impls", default="phase,transpose", help="phase (conv2d + depthToSpace), transpose, or default "
                   "(what the page picks for the backend)")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--size", type=int, default=64)
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    cfg = model.ModelConfig(output_height=args.size, output_width=args.size)
    generator = model.make_generator(cfg)
    spread_weights(generator)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_generator_weights(generator, cfg, os.path.join(tmp, "gen"), args.dtype)
        generator, cfg, _ = model.load_generator_weights(os.path.join(tmp, "gen"))
        webexport.export(generator, cfg, os.path.join(tmp, "site"), dtype=args.dtype)
        server, url = webserve.start_background(os.path.join(tmp, "site"))
        rows = []
        with sync_playwright() as pw:
            browser = webshot.launch(pw)
            version = browser.version
            for backend in args.backends.split(","):
                for impl in args.impls.split(","):
                    r = measure(browser, url, backend, impl, args.draws)
                    if "error" in r:
                        rows.append(f"| {backend} | {impl} | unavailable: {r['error'][:80]} | | | | |")
                        continue
                    ref = model.generate_images(generator, np.array([r["z"]], np.float32))[0]
                    diff = float(np.abs(ref.ravel() - np.array(r["out"], np.float32)).max())
                    rows.append(f"| {r['backend']} | {r['impl']} | {r['load_ms']:.0f} | "
                                f"{r['first_draw_ms']:.1f} | {statistics.median(r['draw_ms']):.1f} | "
                                f"{min(r['draw_ms']):.1f} | {diff:.1e} |")
                    print(rows[-1], flush=True)
            browser.close()
        server.shutdown()
    print()
    print(f"{datetime.date.today()} · {platform.machine()} · {os.cpu_count()} cores · "
          f"Chromium {version} headless · {args.size}x{args.size} generator, {args.dtype} weights, "
          f"{args.draws} warm draws")
    print("| backend | conv | load ms | first face ms | draw ms (median) | draw ms (min) | max abs diff vs TF |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
