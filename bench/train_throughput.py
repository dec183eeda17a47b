"""Benchmark: training images/s of the default DCGAN step, from JPEG files through tf.data vs from memory, G x1 vs x2.

    python bench/train_throughput.py                      # ../shared/data/faces, batch 64, 64x64, 20 timed steps
    python bench/train_throughput.py --steps 50 --data path/to/folder

All configurations run in one process, one after another, so their ratios are comparable on a noisy machine.
"""
import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import dataset  # noqa: E402
import model  # noqa: E402


def time_steps(gan, batches, z, steps, warmup):
    """Seconds per step over `steps` timed steps after `warmup` untimed ones (the first traces the graph)."""
    it = iter(batches)
    for _ in range(warmup):
        float(gan.train_step(next(it), z)["d_loss"])
    start = time.perf_counter()
    for _ in range(steps):
        float(gan.train_step(next(it), z)["d_loss"])  # float() waits for the step to finish
    return (time.perf_counter() - start) / steps


def time_pipeline(batches, n):
    it = iter(batches)
    next(it)
    start = time.perf_counter()
    for _ in range(n):
        next(it).numpy()
    return (time.perf_counter() - start) / n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "faces"))
    p.add_argument("--pattern", default="*.jpg")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()

    files = dataset.list_images(os.path.dirname(os.path.abspath(args.data)), os.path.basename(os.path.abspath(args.data)),
                                args.pattern)
    need = (args.steps + args.warmup + 2) * args.batch_size
    if len(files) < need:
        sys.exit(f"{args.data} has {len(files)} images; this benchmark needs {need} (lower --steps)")
    cfg = model.ModelConfig(output_height=args.size, output_width=args.size)
    load_kwargs = dict(input_height=108, input_width=108, output_height=args.size, output_width=args.size,
                       crop=False, c_dim=3)
    z = tf.constant(model.sample_z(cfg.z_dist, args.batch_size, cfg.z_dim, np.random.default_rng(0)))
    files_ds = dataset.make_dataset(files, args.batch_size, load_kwargs, epoch=0, seed=0)
    in_memory = tf.constant(next(iter(files_ds)).numpy())
    memory_ds = tf.data.Dataset.from_tensors(in_memory).repeat()

    print(f"# {platform.node()} {os.cpu_count()} cores, TF {tf.__version__}, {time.strftime('%Y-%m-%d')}, "
          f"batch {args.batch_size}, {args.size}x{args.size}, {args.steps} timed steps")
    pipe = time_pipeline(files_ds, args.steps)
    print(f"tf.data alone (decode + resize {len(files)} JPEGs): {args.batch_size / pipe:.0f} img/s")
    rows = []
    for source, ds in (("JPEG files (tf.data)", files_ds), ("in memory", memory_ds)):
        for g_updates in (2, 1):
            tf.keras.backend.clear_session()
            gan = model.DCGAN(cfg, g_updates=g_updates)
            sec = time_steps(gan, ds, z, args.steps, args.warmup)
            rows.append((source, g_updates, sec, args.batch_size / sec))
            print(f"{source:22s} g_updates={g_updates}: {sec:.3f} s/step, {args.batch_size / sec:.1f} img/s", flush=True)
    base = rows[0][3]
    print("\n| data | G updates per D update | s/step | img/s | vs default |\n|---|---|---|---|---|")
    for source, g, sec, ips in rows:
        print(f"| {source} | {g} | {sec:.2f} | {ips:.1f} | {ips / base:.2f}x |")


if __name__ == "__main__":
    main()
