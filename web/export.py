"""Export the interactive web page: the page, the generator as raw weights, TF.js and a font from npm, the figures."""
import html
import importlib.metadata
import os
import re
import shutil
import subprocess

import numpy as np
from absl import logging

import model
import utils
from web import font

WEB_SRC = os.path.dirname(os.path.abspath(__file__))  # the page's files lie beside this module
PAGE_FILES = ("index.html", "text.js", "figures.js", "app.js", "generator.js", "style.css")
NPM_PACKAGES = ("@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm", font.FONT_PACKAGE)
MANIFEST_FILE = "model.json"
WEIGHTS_BIN = "weights.bin"
FIGURES_JSON = "figures.json"
FORMAT = "neuralface-web-1"
MEDIA_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".mp4", ".webm")
# TF.js files the page loads, from web/node_modules (installed from the committed package-lock.json).
TFJS_FILES = (
    ("@tensorflow/tfjs/dist/tf.min.js", "tf.min.js"),
    ("@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js", "tf-backend-wasm.min.js"),
    ("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm", "tfjs-backend-wasm.wasm"),
    ("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-simd.wasm"),
    ("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm", "tfjs-backend-wasm-threaded-simd.wasm"),
)
HIDDEN_FIGURES = ("pool",)  # the numbered sheet for choosing --arith_indices: a tool, not a figure to show
PER_FIGURE = 6  # files of one figure the page shows (options 1-3 write one per z dimension, up to 100 each)
WEB_EPOCHS = 5  # the training movie: the fixed-z grids of the first epochs, as the original page showed
CODE_BLOCK = re.compile(r"<!--code-->.*?<!--/code-->", re.S)  # index.html's link to this project's code
# The layer order the page runs; every Keras variable of the generator, by path.
LAYERS = ("g_h0_lin", "g_bn0", "g_h1", "g_bn1", "g_h2", "g_bn2", "g_h3", "g_bn3", "g_h4")


def stale_packages(web_src=WEB_SRC):
    """The npm packages whose installed version differs from package-lock.json's (or that are not installed)."""
    lock = utils.read_json(os.path.join(web_src, "package-lock.json"))["packages"]
    stale = []
    for name in NPM_PACKAGES:
        installed = os.path.join(web_src, "node_modules", name, "package.json")
        version = utils.read_json(installed)["version"] if os.path.isfile(installed) else None
        if version != lock[f"node_modules/{name}"]["version"]:
            stale.append(name)
    return stale


def _missing_files(web_src):
    needed = [src for src, _ in TFJS_FILES] + [f"{font.FONT_PACKAGE}/{src}" for src, _ in font.FONT_FILES]
    missing = [src for src in needed if not os.path.isfile(os.path.join(web_src, "node_modules", src))]
    return missing + stale_packages(web_src)


def ensure_node_modules(web_src=WEB_SRC):
    """Install TF.js and the font into web/node_modules with `npm ci` (exact versions from package-lock.json) when
    they are missing or another version is installed."""
    missing = _missing_files(web_src)
    if not missing:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError(f"{os.path.join(web_src, 'node_modules')} lacks {missing[0]} and npm is not "
                                "installed: install Node.js with npm (e.g. `apt-get install -y npm`) and run again")
    logging.info("installing the page's npm packages (TF.js, Noto Sans KR): npm ci in %s", web_src)
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=web_src,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise ValueError(f"`npm ci` in {web_src} failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    still = _missing_files(web_src)
    if still:
        raise FileNotFoundError(f"`npm ci` ran but {still[0]} is still missing or not the locked version under "
                                f"{web_src}/node_modules")


def weight_arrays(generator):
    """The generator's variables by Keras path, checked against the layers the page knows."""
    arrays = {v.path: np.asarray(v.numpy(), np.float32) for v in generator.weights}
    known = {p for p in arrays if p.split("/")[0] in LAYERS}
    if known != set(arrays):
        raise ValueError(f"the generator has variables the web page does not run: {sorted(set(arrays) - known)[:3]}")
    return arrays


def write_weights(generator, cfg, out_dir, dtype="float16", **meta):
    """Write weights.bin (every variable, little-endian, back to back) and model.json (shapes, byte offsets)."""
    if dtype not in ("float16", "float32"):
        raise ValueError(f"web weights dtype must be float16 or float32, got {dtype!r}")
    arrays = weight_arrays(generator)
    entries, chunks, offset = [], [], 0
    for path, a in arrays.items():
        if dtype == "float16" and np.abs(a).max(initial=0) > np.finfo(np.float16).max:
            raise ValueError(f"{path} overflows float16 (|w| > 65504): export with --web_dtype=float32")
        data = a.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
        entries.append({"name": path, "shape": list(a.shape), "offset": offset, "length": int(a.size)})
        chunks.append(data)
        offset += len(data)
    utils.atomic_write(os.path.join(out_dir, WEIGHTS_BIN), lambda f: [f.write(c) for c in chunks])
    lo, hi = model.z_range(cfg.z_dist)
    manifest = {"format": FORMAT, "model": cfg.to_dict(), "dtype": dtype, "weights": entries,
                "bytes": offset, "z_range": [lo, hi],
                "sizes": [list(s) for s in model.generator_sizes(cfg.output_height, cfg.output_width)], **meta}
    utils.write_json(os.path.join(out_dir, MANIFEST_FILE), manifest)
    return manifest


def read_web_generator(out_dir):
    """Build a Keras generator from an exported model.json + weights.bin (what the page runs, for checks)."""
    manifest = utils.read_json(os.path.join(out_dir, MANIFEST_FILE))
    cfg = model.ModelConfig.from_dict(manifest["model"])
    raw = np.fromfile(os.path.join(out_dir, WEIGHTS_BIN), np.uint8)
    dt = np.dtype(manifest["dtype"]).newbyteorder("<")
    arrays = {e["name"]: np.frombuffer(raw, dt, count=e["length"], offset=e["offset"]).reshape(e["shape"])
              for e in manifest["weights"]}
    generator = model.make_generator(cfg)
    model.assign_generator_weights(generator, arrays, os.path.join(out_dir, WEIGHTS_BIN))
    return generator, cfg, manifest


def copy_figures(figures_dir, out_dir):
    """Copy the figures that figures.json lists and that exist into out_dir/figures; returns the kept entries."""
    if not figures_dir:
        return []
    listing = os.path.join(figures_dir, FIGURES_JSON)
    if not os.path.isfile(listing):
        logging.warning("no %s in %s: the page gets no figure sections (run --visualize first)", FIGURES_JSON,
                        figures_dir)
        return []
    entries = utils.read_json(listing)
    if isinstance(entries, dict):  # visualize.py writes {..., "figures": [...], "skipped": [...]}
        entries = entries.get("figures", [])
    if not isinstance(entries, list):
        raise ValueError(f"{listing} must hold a list of {{file, kind, caption}} entries")
    root = os.path.realpath(figures_dir)
    kept, per_figure, left_out = [], {}, 0
    for e in entries:
        name = e.get("file") if isinstance(e, dict) else None
        if not isinstance(name, str) or not name:
            logging.warning("%s: skipping an entry without a file: %r", listing, e)
            continue
        stem, ext = os.path.splitext(name)
        if ext.lower() not in MEDIA_EXTENSIONS or e.get("figure") in HIDDEN_FIGURES:
            continue  # data files (the Turing test's answers.json, rankings) are not shown on the page
        src = os.path.realpath(os.path.join(figures_dir, name))
        if os.path.commonpath([root, src]) != root:
            logging.warning("%s: skipping %s, which lies outside %s", listing, name, figures_dir)
            continue
        if not os.path.isfile(src):
            logging.warning("%s lists %s but it does not exist; its section is left out", listing, name)
            continue
        shown = per_figure.setdefault(str(e.get("figure") or stem), set())
        if stem not in shown and len(shown) >= PER_FIGURE:  # the GIF and MP4 of one movie count once
            left_out += 1
            continue
        shown.add(stem)
        rel = os.path.relpath(src, root).replace(os.sep, "/")
        copy_file(src, os.path.join(out_dir, "figures", rel))
        entry = {"file": "figures/" + rel, "kind": str(e.get("kind", "")), "caption": str(e.get("caption", "")),
                 "figure": str(e.get("figure", ""))}
        if isinstance(e.get("epochs"), list):  # a training movie over epochs: one epoch number per frame
            entry["epochs"] = [int(x) for x in e["epochs"]]
        kept.append(entry)
    if left_out:
        logging.info("left %d figure files out of the page (at most %d files of one figure)", left_out, PER_FIGURE)
    logging.info("copied %d of %d figures from %s", len(kept), len(entries), figures_dir)
    return kept


def epoch_frames_dir(src, sample_dir):
    """Where a generator's per-epoch fixed-z grids (epoch_NNNN.png) lie: the training run's sample folder, or
    epochs/ beside generator weights (the shipped generator carries its first epochs' grids there)."""
    if src.run_dir:
        return src.output_dir((src.run_flags() or {}).get("sample_dir") or sample_dir)
    return os.path.join(src.weights_dir or ".", "epochs")


def copy_epoch_frames(folder, out_dir, epochs=WEB_EPOCHS):
    """Copy the grids of the first `epochs` epochs in folder to out_dir/epochs; returns the training movie's
    figures.json entry (kind "frames": the page plays them with the epoch on each frame), or None."""
    if not epochs or not folder or not os.path.isdir(folder):
        return None
    found = sorted((int(m.group(1)), name) for name in os.listdir(folder)
                   if (m := re.fullmatch(r"epoch_(\d+)\.png", name)) and os.path.isfile(os.path.join(folder, name)))
    if not found:
        return None
    frames = []
    for epoch, name in found[:epochs]:
        copy_file(os.path.join(folder, name), os.path.join(out_dir, "epochs", name))
        frames.append({"file": f"epochs/{name}", "epoch": epoch})
    logging.info("training movie: the fixed-z grids of epochs %d-%d from %s", frames[0]["epoch"], frames[-1]["epoch"],
                 folder)
    return {"file": frames[0]["file"], "kind": "frames", "figure": "training_epochs", "caption": "", "frames": frames}


def package_url():
    """The installed package's code address (setup.py's url or a Source project URL), or ''."""
    try:
        meta = importlib.metadata.metadata("neuralface")
    except importlib.metadata.PackageNotFoundError:
        return ""
    for entry in meta.get_all("Project-URL") or []:  # "Source, https://..."
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("source", "code", "repository"):
            return url.strip()
    return meta.get("Home-page") or ""


def page_html(repo_url):
    """index.html with the link to this project's code, or without that link when no address is known."""
    with open(os.path.join(WEB_SRC, "index.html"), encoding="utf-8") as f:
        page = f.read()
    if not repo_url:
        return CODE_BLOCK.sub("", page)
    if not re.fullmatch(r"https?://[^\s\"'<>]+", repo_url):
        raise ValueError(f"--web_repo_url must be an http:// or https:// address, got {repo_url!r}")
    name = re.sub(r"^https?://(www\.)?", "", repo_url).rstrip("/")
    return page.replace("{{repo_url}}", html.escape(repo_url, quote=True)).replace("{{repo_name}}", html.escape(name))


def copy_file(src, dst):
    with open(src, "rb") as f:
        utils.atomic_write(dst, lambda out: shutil.copyfileobj(f, out))


def export(generator, cfg, out_dir, figures_dir=None, dtype="float16", step=0, source="", repo_url=None,
           epochs_dir=None, epochs=WEB_EPOCHS):
    """Write the self-contained static site into out_dir: a new or empty folder, or an earlier export (updated).

    repo_url: the code link (None: the installed package's url, if any); epochs_dir: where the per-epoch grids of
    the training movie lie (its first `epochs` epochs are shown)."""
    if cfg.y_dim:  # checked first: nothing is written for a generator the page cannot run
        raise ValueError(f"--export_web: the page draws from z alone, but this generator is class-conditional (y_dim "
                         f"{cfg.y_dim}, the original's --dataset mnist model), which the page does not run. Sample it "
                         "(`python main.py --dataset mnist`) or make its figures (--visualize) instead")
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not os.path.isfile(os.path.join(out_dir, MANIFEST_FILE)):
        raise ValueError(f"{out_dir} holds other files and is no earlier web export; give a new or empty folder so "
                         "nothing in it is overwritten")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"{out_dir} is a file, not a folder")
    repo_url = package_url() if repo_url is None else repo_url
    index = page_html(repo_url)
    ensure_node_modules()
    os.makedirs(out_dir, exist_ok=True)
    utils.atomic_write(os.path.join(out_dir, "index.html"), lambda f: f.write(index.encode("utf-8")))
    for name in PAGE_FILES[1:]:
        copy_file(os.path.join(WEB_SRC, name), os.path.join(out_dir, name))
    for src, name in TFJS_FILES:
        copy_file(os.path.join(WEB_SRC, "node_modules", src), os.path.join(out_dir, "tfjs", name))
    figures = copy_figures(figures_dir, out_dir)
    movie = None if any("epochs" in e for e in figures) else copy_epoch_frames(epochs_dir, out_dir, epochs)
    figures = ([movie] if movie else []) + figures
    utils.write_json(os.path.join(out_dir, FIGURES_JSON), figures)
    text = font.page_text(WEB_SRC, PAGE_FILES, [e["caption"] for e in figures] + [repo_url or ""])
    font.write_fonts(os.path.join(WEB_SRC, "node_modules", font.FONT_PACKAGE), os.path.join(out_dir, "fonts"), text,
                     cache_dir=os.path.join(WEB_SRC, "node_modules", ".font-cache"))
    manifest = write_weights(generator, cfg, out_dir, dtype, step=int(step), source=source)
    logging.info("wrote the web page to %s (%s weights, %.1f MB, %d figures); serve it with "
                 "`python main.py --serve --serve_dir %s`", out_dir, dtype, manifest["bytes"] / 1e6, len(figures),
                 out_dir)
    if not repo_url:
        logging.info("the page links to the original's code only: give --web_repo_url for this project's")
    return {"dir": out_dir, "manifest": manifest, "figures": figures}


def export_from_flags(src, f):
    """main.py's --export_web: the page for src (a runs.GeneratorSource), with the run's figures when it has them."""
    figures_dir = f["web_figures"] or src.output_dir(f["sample_dir"])
    if f["web_figures"] and not os.path.isdir(figures_dir):
        raise FileNotFoundError(f"--web_figures={figures_dir} is not a folder (give the folder --visualize wrote, "
                                f"which holds {FIGURES_JSON})")
    if f["web_epochs"] < 0:
        raise ValueError(f"--web_epochs must be 0 (no training movie) or more, got {f['web_epochs']}")
    return export(src.generator, src.cfg, f["export_web"], figures_dir, f["web_dtype"], src.step, src.description,
                  f["web_repo_url"] or None, epoch_frames_dir(src, f["sample_dir"]), f["web_epochs"])
