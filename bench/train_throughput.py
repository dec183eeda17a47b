"""Benchmark: training img/s by precision x G updates x data (decoded JPEGs through tf.data, or one batch in memory).

    python bench/train_throughput.py                  # ../shared/data/faces, 64x64, batch 64, 3 rounds of 20 steps
    python bench/train_throughput.py --images 2000 --steps 5 --rounds 1       # a quick look
    python bench/train_throughput.py --precisions float32,mixed_bfloat16 --g_updates 2 --float16_steps 0
    python bench/train_throughput.py --precisions mixed_bfloat16 --g_updates 2 --sources files --ema_kimgs 0,10
    python bench/train_throughput.py --precisions mixed_bfloat16 --g_updates 2 --sources memory --wide_max_widths 0,4,8,16

Every configuration is built once in this one process, then timed in --rounds interleaved rounds (each round in
a rotated order), so a machine that gets busier or quieter during the run affects all of them alike; the table
shows the median of the rounds and their range. One timed measurement = one gan.train_loop call of --steps steps,
the same compiled loop training runs (z drawn on the device, uint8 batches cast in the loop):
  files:  prepare_images' decoded uint8 set -> index_batches -> make_dataset (tf.data), exactly as training feeds it
  memory: one pre-made uint8 batch repeated (tf.data.Dataset.from_tensors), so no input pipeline at all
The default (the row every ratio is against) is what `python main.py --train` runs: --precision auto, 2 G updates,
files. Also timed: the input pipeline alone (tf.data batches pulled and read, no training) and decoding the set
once (prepare_images without a cache, then again from its cache).
mixed_float16 (the GPU policy) is tens of times slower than float32 on a CPU (TF has no fast float16 CPU kernels),
so it is not in the rounds: it is timed once after them for --float16_steps steps at the small --float16_size
(2 G updates, memory), beside float32 at that size, only to show that it runs and how slowly.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import logging  # noqa: E402

import dataset  # noqa: E402
import common  # noqa: E402  (bench/common.py: this script's folder is first on sys.path)
import mixed_precision  # noqa: E402
import model  # noqa: E402
import ops  # noqa: E402


def decode_times(files, load, cache_dir):
    """Seconds to decode the set into a fresh cache, then to load it again from that cache; the decoded set."""
    start = time.perf_counter()
    dataset.prepare_images(files, load, cache_dir)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    data = dataset.prepare_images(files, load, cache_dir)
    return cold, time.perf_counter() - start, data


def file_batches(pixels, batch_size, num_batches, seed=0):
    """An iterator of the training pipeline's uint8 batches (as many epochs as it takes for num_batches)."""
    per_epoch = len(pixels) // batch_size
    epochs = -(-num_batches // per_epoch)
    batches = dataset.index_batches(len(pixels), batch_size, seed, 0, 0, epochs, num_batches)
    return iter(dataset.make_dataset(pixels, batches, 3))


def memory_batches(pixels, batch_size):
    return iter(tf.data.Dataset.from_tensors(tf.constant(pixels[:batch_size])).repeat())


class Config:
    """One timed configuration: a freshly initialised DCGAN and its own batch iterator."""

    def __init__(self, precision, g_updates, source, cfg, pixels, args, total_steps, ema_kimg=0.0,
                 wide_max_width=ops.WIDE_MAX_WIDTH):
        self.precision, self.g_updates, self.source, self.ema_kimg = precision, g_updates, source, ema_kimg
        self.wide_max_width = wide_max_width
        keras.utils.set_random_seed(0)
        self.gan = model.DCGAN(cfg, g_updates=g_updates, precision=precision, seed=0, ema_kimg=ema_kimg,
                               batch_size=args.batch_size)
        self.batches = (file_batches(pixels, args.batch_size, total_steps) if source == "files"
                        else memory_batches(pixels, args.batch_size))
        self.seconds = []  # per step, one entry a round

    def run(self, steps):
        """Seconds per step over one compiled loop of `steps` steps (reading the losses waits for the last)."""
        # ops reads it when the loop traces (the first call); set for every call, so each config keeps its own.
        ops.WIDE_MAX_WIDTH = self.wide_max_width
        start = time.perf_counter()
        losses = self.gan.train_loop(self.batches, tf.constant(steps, tf.int32))[0].numpy()
        seconds = (time.perf_counter() - start) / steps
        if not np.isfinite(losses).all():
            print(f"note: {self.name()} had non-finite losses (speed is still measured)", file=sys.stderr)
        return seconds

    def name(self):
        ema = f", ema_kimg {self.ema_kimg:g}" if self.ema_kimg else ""
        return f"{self.precision}, g_updates {self.g_updates}, {self.source}{ema}, wide <= {self.wide_max_width}"


class Pipeline:
    """The input pipeline alone: training's tf.data batches pulled and read into numpy, nothing trained."""
    precision = g_updates = None
    source = "pipeline"

    def __init__(self, pixels, args, total_steps):
        self.batches = file_batches(pixels, args.batch_size, total_steps)
        self.seconds = []

    def run(self, steps):
        start = time.perf_counter()
        for _ in range(steps):
            next(self.batches).numpy()
        return (time.perf_counter() - start) / steps

    def name(self):
        return "input pipeline alone"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "faces"),
                   help="folder of training images [../shared/data/faces]")
    p.add_argument("--pattern", default="*.jpg")
    p.add_argument("--images", type=int, default=0, help="use the first N images only (0: all) [0]")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--size", type=int, default=64, help="output size (the model's default 64x64)")
    p.add_argument("--precisions", default="float32,mixed_bfloat16", help="precisions timed in the rounds")
    p.add_argument("--g_updates", default="2,1")
    p.add_argument("--sources", default="files,memory")
    p.add_argument("--ema_kimgs", default="0", help="--ema_kimg values timed (0: no moving average of G) [0]")
    p.add_argument("--wide_max_widths", default=str(ops.WIDE_MAX_WIDTH),
                   help="ops.WIDE_MAX_WIDTH values timed (0: no layer in the wide layout) "
                        f"[{ops.WIDE_MAX_WIDTH}, the default]")
    p.add_argument("--steps", type=int, default=20, help="steps in one timed loop (the default --steps_per_loop)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per configuration first (tracing)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--float16_steps", type=int, default=1, help="steps of the mixed_float16 check (0: skip) [1]")
    p.add_argument("--float16_size", type=int, default=16, help="output size of the mixed_float16 check [16]")
    args = p.parse_args()
    logging.set_verbosity(logging.WARNING)

    folder = os.path.abspath(args.data)
    try:
        files = dataset.list_images(os.path.dirname(folder), os.path.basename(folder), args.pattern)
    except FileNotFoundError as e:
        sys.exit(f"error: {e} (pass --data <folder of images>)")
    files = files[:args.images] if args.images else files
    if len(files) < args.batch_size:
        sys.exit(f"error: {folder} has {len(files)} images, fewer than one batch of {args.batch_size}")
    precisions = args.precisions.split(",")
    for prec in precisions:
        if prec not in mixed_precision.PRECISIONS[1:]:
            sys.exit(f"error: --precisions takes {', '.join(mixed_precision.PRECISIONS[1:])}, got {prec!r}")
    g_list = [int(g) for g in args.g_updates.split(",")]
    sources = args.sources.split(",")
    try:
        ema_list = [float(e) for e in args.ema_kimgs.split(",")]
    except ValueError:
        sys.exit(f"error: --ema_kimgs takes numbers separated by commas, got {args.ema_kimgs!r}")
    if any(e < 0 for e in ema_list):
        sys.exit(f"error: --ema_kimgs must be 0 or more, got {args.ema_kimgs!r}")
    try:
        wide_list = [int(w) for w in args.wide_max_widths.split(",")]
    except ValueError:
        sys.exit(f"error: --wide_max_widths takes whole numbers separated by commas, got {args.wide_max_widths!r}")
    if set(sources) - {"files", "memory"}:
        sys.exit(f"error: --sources takes files and memory, got {args.sources!r}")
    default_precision = mixed_precision.resolve_precision("auto")
    lines = common.header("Training throughput (bench/train_throughput.py)")

    load = dict(input_height=108, input_width=108, output_height=args.size, output_width=args.size, crop=False)
    with tempfile.TemporaryDirectory(prefix="nf_bench_cache_") as cache_dir:
        cold, warm, data = decode_times(files, load, cache_dir)
        pixels = np.ascontiguousarray(data.pixels)  # in memory, as training keeps a set this size
    print(f"decoded {len(data.files)} images ({len(data.skipped)} skipped) in {cold:.1f} s, from the cache in "
          f"{warm:.2f} s", flush=True)

    cfg = model.ModelConfig(output_height=args.size, output_width=args.size)
    total_steps = args.warmup + args.rounds * args.steps
    configs = [Pipeline(pixels, args, total_steps)]
    for prec in precisions:
        for g in g_list:
            for source in sources:
                for ema in ema_list:
                    for wide in wide_list:
                        configs.append(Config(prec, g, source, cfg, pixels, args, total_steps, ema, wide))
    common.run_rounds(configs, args.rounds, args.steps, args.warmup, args.batch_size)

    def img_s(c, how=statistics.median):
        return args.batch_size / how(c.seconds)

    pipeline, trained = configs[0], configs[1:]
    default = next((c for c in trained if (c.precision, c.g_updates, c.source, c.ema_kimg, c.wide_max_width)
                    == (default_precision, 2, "files", 0.0, ops.WIDE_MAX_WIDTH)), None)
    what = "what `main.py --train` runs here" if default else "the first row: the default is not in this run"
    default = default or trained[0]
    lines += [f"{args.size}x{args.size} model (gf/df 64, z 100), batch {args.batch_size}, {len(data.files)} images "
              f"from {args.data}; {args.rounds} interleaved rounds of one {args.steps}-step compiled loop each, "
              f"after {args.warmup} warm-up steps. Default = {default.name()} ({what}; "
              f"--precision auto resolves to {default_precision}).", "",
              "| precision | G updates | data | ema_kimg | wide max width | img/s (median) | range over rounds | "
              "ms/step | vs default |", "|---|---|---|---|---|---|---|---|---|"]
    for c in trained:
        lines.append(f"| {c.precision} | {c.g_updates} | {c.source} | {c.ema_kimg:g} | {c.wide_max_width} | "
                     f"{img_s(c):.1f} | "
                     f"{img_s(c, max):.1f}-{img_s(c, min):.1f} | {1000 * statistics.median(c.seconds):.0f} | "
                     f"{img_s(c) / img_s(default):.2f}x |")
    pipe_ms, step_ms = 1000 * statistics.median(pipeline.seconds), 1000 * statistics.median(default.seconds)
    lines += ["", f"- input pipeline alone: {img_s(pipeline):.0f} img/s ({pipe_ms:.1f} ms a batch), "
              f"{100 * pipe_ms / step_ms:.1f}% of the default step's {step_ms:.0f} ms (it runs in tf.data's "
              "threads, beside the step)"]
    for prec in precisions:
        for g in g_list:
            pair = {c.source: c for c in trained
                    if (c.precision, c.g_updates, c.ema_kimg, c.wide_max_width) == (prec, g, ema_list[0], wide_list[0])}
            if {"files", "memory"} <= set(pair):
                ratio = img_s(pair["files"]) / img_s(pair["memory"])
                lines.append(f"- {prec}, g_updates {g}: files run at {ratio:.3f}x the in-memory speed")
    for c in trained:
        if c.ema_kimg:
            plain = next((b for b in trained if (b.precision, b.g_updates, b.source, b.ema_kimg, b.wide_max_width)
                          == (c.precision, c.g_updates, c.source, 0.0, c.wide_max_width)), None)
            if plain is not None:
                lines.append(f"- {plain.name()}: keeping the moving average (ema_kimg {c.ema_kimg:g}) runs at "
                             f"{img_s(c) / img_s(plain):.3f}x the speed without it")
    if args.float16_steps:
        f16_cfg = model.ModelConfig(output_height=args.float16_size, output_width=args.float16_size)
        f16_pixels = np.stack([cv2.resize(im, (args.float16_size,) * 2, interpolation=cv2.INTER_AREA)
                               for im in pixels[:args.batch_size]])
        pair = [Config(prec, 2, "memory", f16_cfg, f16_pixels, args, 0) for prec in ("float32", "mixed_float16")]
        for c in pair:
            c.run(1)  # tracing
            c.seconds.append(c.run(args.float16_steps))
        lines.append(f"- mixed_float16 (2 G updates, memory, {args.float16_size}x{args.float16_size}, "
                     f"{args.float16_steps} step after one warm-up): {img_s(pair[1]):.2f} img/s, "
                     f"{img_s(pair[1]) / img_s(pair[0]):.3f}x float32's {img_s(pair[0]):.1f} img/s at that size")
    lines += [f"- decoding the set once (prepare_images, no cache yet): {cold:.1f} s "
              f"({len(files) / cold:.0f} img/s); loading it again from the cache: {warm:.2f} s",
              f"- load average at the end: {common.load_now():.2f}"]
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
