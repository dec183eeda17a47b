"""Benchmark the web page in headless Chromium: model load time and warm draw time per TF.js backend.

    python bench/web_draw.py [--backends cpu,wasm,webgl] [--impls phase,transpose] [--dtype float16] [--draws 20]

Exports a default-size (64x64, gf_dim 64, z_dim 100) randomly initialised generator (speed does not depend on
training) with webexport, serves it on 127.0.0.1 and opens the page once per backend and implementation.
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
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import model  # noqa: E402
import webexport  # noqa: E402
import webserve  # noqa: E402
import webshot  # noqa: E402


def measure(browser, url, backend, impl, draws):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{url}?backend={backend}&impl={impl}")
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
                    first_draw_ms: s.timings.first_draw_ms, draw_ms: times, z: Array.from(window.__lastZ),
                    out: Array.from(window.__lastOutput), isolated: crossOriginIsolated,
                    threads: (s.backend === 'wasm' && tf.wasm.getThreadsCount) ? tf.wasm.getThreadsCount() : null};
        }""", draws)
        return info
    finally:
        page.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", default="cpu,wasm,webgl")
    p.add_argument("--impls", default="phase,transpose")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--size", type=int, default=64)
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    cfg = model.ModelConfig(output_height=args.size, output_width=args.size)
    generator = model.make_generator(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_generator_weights(generator, cfg, os.path.join(tmp, "gen"), args.dtype)
        generator, cfg, _ = model.load_generator_weights(os.path.join(tmp, "gen"))
        webexport.export(generator, cfg, os.path.join(tmp, "site"), dtype=args.dtype)
        server = webserve.make_server(os.path.join(tmp, "site"), port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
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
                    threads = f" ({r['threads']} threads)" if r["threads"] else ""
                    rows.append(f"| {r['backend']}{threads} | {r['impl']} | {r['load_ms']:.0f} | "
                                f"{r['first_draw_ms']:.1f} | {statistics.median(r['draw_ms']):.1f} | "
                                f"{min(r['draw_ms']):.1f} | {diff:.1e} |")
                    print(rows[-1], flush=True)
            browser.close()
        server.shutdown()
    print()
    print(f"{datetime.date.today()} · {platform.node() and platform.machine()} · {os.cpu_count()} cores · "
          f"Chromium {version} headless · {args.size}x{args.size} generator, {args.dtype} weights, "
          f"{args.draws} warm draws")
    print("| backend | conv | load ms | first face ms | draw ms (median) | draw ms (min) | max abs diff vs TF |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
