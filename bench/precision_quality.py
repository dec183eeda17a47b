"""Does bfloat16 train as well as float32? Two runs of the same seed and steps, side by side: the losses' course
(from their TensorBoard logs) and the metrics of their epoch snapshots (from their metrics.jsonl).

    python bench/precision_quality.py RUN_A RUN_B [--steps 768] [--window 128]

Train the two runs first, e.g. (the same flags but --precision, and --out_name):
    python main.py --dataset faces --train --seed 2026 --max_steps 768 --precision float32 --out_name a
    python main.py --dataset faces --train --seed 2026 --max_steps 768 --precision mixed_bfloat16 --out_name b
then measure their snapshots: python main.py --out_name a --metrics fid2k,detect1k --metrics_snapshots (and b).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import model  # noqa: E402
from metrics import plot, runner  # noqa: E402


def losses(run_dir, steps):
    scalars = plot.read_scalars(os.path.join(run_dir, "logs"), model.LOSS_NAMES)
    return {tag: np.array([(s, v) for s, v in points if s <= steps]) for tag, points in scalars.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs=2)
    p.add_argument("--steps", type=int, default=768, help="compare the losses up to this step")
    p.add_argument("--window", type=int, default=128, help="steps averaged in each row of the loss table")
    a = p.parse_args()
    names = [json.load(open(os.path.join(r, "flags.json")))["precision"] for r in a.runs]
    curves = [losses(r, a.steps) for r in a.runs]
    print(f"# python bench/precision_quality.py {' '.join(sys.argv[1:])}")
    print(f"\n| steps | d_loss {names[0]} | d_loss {names[1]} | g_loss {names[0]} | g_loss {names[1]} |")
    print("|---|---|---|---|---|")
    for start in range(0, a.steps, a.window):
        cells = []
        for tag in ("d_loss", "g_loss"):
            for c in curves:
                pts = c.get(tag, np.zeros((0, 2)))
                sel = pts[(pts[:, 0] > start) & (pts[:, 0] <= start + a.window)] if len(pts) else pts
                cells.append(f"{sel[:, 1].mean():.3f}" if len(sel) else "-")
        print(f"| {start + 1}-{start + a.window} | " + " | ".join(cells) + " |")
    d = [c["d_loss"] for c in curves]
    common = np.intersect1d(d[0][:, 0], d[1][:, 0])
    if len(common):
        diff = np.abs(d[0][np.isin(d[0][:, 0], common), 1] - d[1][np.isin(d[1][:, 0], common), 1])
        print(f"\nd_loss at the same {len(common)} logged steps: mean |difference| {diff.mean():.3f}")
    print(f"\n| snapshot | metric | {names[0]} | {names[1]} |\n|---|---|---|---|")
    rows = [{(r.get("snapshot"), r["metric"]): r for r in runner.read_rows(os.path.join(run, runner.METRICS_FILE))
             if r.get("snapshot")} for run in a.runs]
    for key in sorted(set(rows[0]) & set(rows[1])):
        values = [rows[i][key]["value"] for i in (0, 1)]
        print(f"| {key[0]} | {key[1]} | {values[0]:.4g} | {values[1]:.4g} |")


if __name__ == "__main__":
    main()
