"""Replace the shipped generator with an epoch snapshot of a run: float16 weights, portable flags, the epoch grids.

    python -m checkpoints.ship RUN_DIR EPOCH [--dest checkpoints/faces_64] [--grid 4]
    python -m checkpoints.ship --metrics_from METRICS_JSONL [--dest checkpoints/faces_64]

A maintainer's command (it rewrites the tracked checkpoints/faces_64 on purpose; nothing else writes there). It
reads RUN_DIR/snapshots/epoch_EPOCH (exported by `main.py --export` first, so the weights, the run's flags, the
epoch, the images seen and what metrics.jsonl measured of that step travel as `--export` writes them), then:
- makes it portable: the machine's data_dir becomes "data" (where `make dataset` builds the set) and its out_dir
  "out", wherever they appear (flags, metrics' reference descriptions, source);
- adds the training set's summary (the preprocess stage's summary.json) and the held-out file names;
- copies the fixed-z grid of every epoch up to EPOCH, cut to its top-left GRID x GRID faces (small PNGs), into
  epochs/ for the page's training movie.
Everything is written into a temporary folder beside DEST first and swapped in by renames, so an interrupted
ship leaves the old generator whole.

--metrics_from adds what was measured of the shipped weights later (`main.py --metrics` or
bench/metrics_shipped.py on DEST log to samples/metrics.jsonl) to DEST's generator.json: only rows of DEST's step
and of DEST itself, the newest per metric and seed 0 when there is one; the weights are not touched.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys

import imageio.v3 as iio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORTABLE = {"data_dir": "data", "out_dir": "out"}


def epoch_dir(run_dir, epoch):
    path = os.path.join(run_dir, "snapshots", f"epoch_{epoch:04d}")
    if not os.path.isfile(os.path.join(path, "generator.npz")):
        raise SystemExit(f"error: {path} holds no generator.npz: is {run_dir} a run with --snapshot_freq snapshots, "
                         f"and did it reach epoch {epoch}?")
    return path


def export(snapshot, out):
    """`main.py --export` of the snapshot into out (float16 generator.npz + generator.json)."""
    cmd = [sys.executable, os.path.join(ROOT, "main.py"), "--checkpoint_dir", snapshot, "--export",
           "--export_dtype", "float16", "--export_dir", out]
    subprocess.run(cmd, check=True, cwd=ROOT)


def portable_meta(meta, run_dir):
    """generator.json with this machine's paths replaced by portable ones everywhere (flags, metrics, source),
    plus the dataset summary and the held-out names."""
    flags = meta.get("train_flags") or {}
    data = os.path.join(flags.get("data_dir", ""), flags.get("dataset", ""))
    summary = os.path.join(data, "summary.json")
    if os.path.isfile(summary):
        with open(summary) as f:
            meta["dataset_summary"] = json.load(f)
    holdout = os.path.join(run_dir, "holdout.txt")
    if os.path.isfile(holdout):
        with open(holdout, encoding="utf-8", errors="surrogateescape") as f:
            meta["holdout_files"] = sorted(os.path.basename(line.rstrip("\n")) for line in f if line.strip())
    meta["source"] = f"epoch {meta.get('epoch')} snapshot of run {os.path.basename(os.path.normpath(run_dir))} " \
                     f"(step {meta.get('step')})"
    text = json.dumps(meta)
    for key, portable in PORTABLE.items():
        if flags.get(key):
            text = text.replace(json.dumps(os.path.normpath(flags[key]))[1:-1], portable)
    return json.loads(text)


def small_grids(run_dir, last_epoch, out, grid, cell):
    """samples/epoch_NNNN.png (epochs 1..last_epoch) cut to their top-left grid x grid faces, into out."""
    os.makedirs(out, exist_ok=True)
    written = 0
    for path in sorted(glob.glob(os.path.join(run_dir, "samples", "epoch_*.png"))):
        epoch = int(os.path.basename(path)[6:10])
        if epoch > last_epoch:
            continue
        image = iio.imread(path)
        iio.imwrite(os.path.join(out, os.path.basename(path)), image[:grid * cell, :grid * cell], optimize=True)
        written += 1
    return written


def add_metrics(metrics_file, dest):
    """Merge the rows of metrics_file measured on dest's weights (same step, same folder) into its generator.json."""
    meta_path = os.path.join(dest, "generator.json")
    if not os.path.isfile(meta_path):
        raise SystemExit(f"error: {dest} holds no generator.json: is it a shipped generator folder?")
    if not os.path.isfile(metrics_file):
        raise SystemExit(f"error: no {metrics_file}: measure first, e.g. python main.py --checkpoint_dir "
                         f"{os.path.relpath(dest, ROOT)} --metrics fid10k --metrics_ref_num 10000")
    from metrics import runner  # here only: it loads TensorFlow, which shipping a run does not need
    import utils

    meta = utils.read_json(meta_path)
    where = os.path.relpath(dest, ROOT)  # a row names its generator's folder as typed, relative or absolute
    # "generator weights <folder> (step N)", or "the shipped generator <folder> (step N; ...)" when found by default
    mine = [f"{name} (step {meta.get('step')}" for name in (where, dest)]
    rows = [r for r in runner.read_rows(metrics_file) if r.get("step") == meta.get("step") and
            any(m in r.get("generator", "") for m in mine)]
    if not rows:
        raise SystemExit(f"error: {metrics_file} has no row measured on {where} at its step {meta.get('step')}")
    chosen = {}
    for r in rows:  # later rows win, but a seed-0 row (the metrics' default draw) beats any other seed
        old = chosen.get(r["metric"])
        if old is None or r.get("seed") == 0 or old.get("seed") != 0:
            chosen[r["metric"]] = r
    metrics = meta.setdefault("metrics", {})
    for name, r in chosen.items():
        metrics[name] = {k: r[k] for k in ("value", "results", "seed", "reference_images", "floor") if k in r}
    utils.write_json(meta_path, meta)
    print(f"added {', '.join(sorted(chosen))} to {meta_path}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", nargs="?")
    p.add_argument("epoch", type=int, nargs="?")
    p.add_argument("--dest", default=os.path.join(ROOT, "checkpoints", "faces_64"))
    p.add_argument("--grid", type=int, default=4, help="faces per side kept of each epoch's grid [4]")
    p.add_argument("--metrics_from", help="a metrics.jsonl measured on DEST: add its rows to DEST's generator.json")
    args = p.parse_args()
    if args.metrics_from:
        if args.run_dir or args.epoch is not None:
            p.error("--metrics_from adds metrics to DEST as it is; give no RUN_DIR or EPOCH with it")
        return add_metrics(args.metrics_from, os.path.abspath(args.dest))
    if not args.run_dir or args.epoch is None:
        p.error("give RUN_DIR and EPOCH (or --metrics_from)")
    snapshot = epoch_dir(args.run_dir, args.epoch)
    dest = os.path.abspath(args.dest)
    staging, old = dest + ".shipping", dest + ".old"
    for path in (staging, old):
        shutil.rmtree(path, ignore_errors=True)
    export(snapshot, staging)
    for extra in ("generator.keras", "saved_model"):  # the folder ships the compact format only
        target = os.path.join(staging, extra)
        shutil.rmtree(target) if os.path.isdir(target) else os.path.exists(target) and os.unlink(target)
    meta_path = os.path.join(staging, "generator.json")
    with open(meta_path) as f:
        meta = portable_meta(json.load(f), args.run_dir)
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    cell = meta["model"]["output_height"]
    n = small_grids(args.run_dir, args.epoch, os.path.join(staging, "epochs"), args.grid, cell)
    if os.path.isdir(dest):
        os.replace(dest, old)
    os.replace(staging, dest)
    shutil.rmtree(old, ignore_errors=True)
    print(f"shipped epoch {args.epoch} of {args.run_dir} (step {meta.get('step')}, {meta.get('images_seen')} images "
          f"seen) into {dest}, with {n} epoch grids")


if __name__ == "__main__":
    main()
