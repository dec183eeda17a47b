"""Benchmark: what the training loop costs per step on top of the bare compiled step, by --steps_per_loop K.

    python bench/loop_overhead.py                       # tiny (16x16, gf/df 8) and full (64x64, gf/df 64) sizes
    python bench/loop_overhead.py --sizes tiny --rounds 1 --tiny_steps 20    # a quick look

Three ways to run the same training step (batch 64, z 100, --precision auto unless given), for each size:
  bare:       gan.train_step(images, z) called back to back with fixed float tensors, read once at the end: the
              step alone, the floor every loop is measured against
  loop K:     gan.train_loop(iterator, K) over training's tf.data pipeline (the decoded uint8 set, make_dataset),
              the losses read after every call, as train.py does; "loop K, memory" over one repeated batch instead
  whole K:    train.train() itself (`main.py --train --max_steps M --steps_per_loop K` on a synthetic JPEG folder
              big enough that no epoch ends): progress bar, summaries every --log_freq, non-finite check, all of
              it. Timed from the start of its 2nd compiled loop to the start of its last (the 1st traces, the last
              is followed by the final checkpoint), so start-up and the final save are left out; a checkpoint
              and a sample grid (every --ckpt_freq / --sample_freq 200 steps) are timed on their own instead
Overhead = ms per step above bare (medians of the rounds; also the best rounds' difference). The goals (issue 10): <= 1 ms per step at the tiny size, and within 3% of the
bare step at 64x64. Every configuration is timed once per round, the rounds in rotated orders.
"""
import argparse
import contextlib
import io
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import main as cli  # noqa: E402  (first: it imports TensorFlow without its start-up noise)
import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import logging  # noqa: E402

import dataset  # noqa: E402
import common  # noqa: E402  (bench/common.py)
import mixed_precision  # noqa: E402
import model  # noqa: E402
import train  # noqa: E402
import utils  # noqa: E402

SIZES = {"tiny": dict(size=16, gf_dim=8, df_dim=8), "full": dict(size=64, gf_dim=64, df_dim=64)}
BATCH = 64


class Bare:
    def __init__(self, gan, pixels):
        self.name, self.k = "bare step", None
        self.gan = gan
        self.images = tf.constant(dataset.to_float(pixels[:BATCH]))
        self.z = gan.draw_z(BATCH, 1)
        self.seconds = []

    def run(self, steps):
        start = time.perf_counter()
        for _ in range(steps):
            out = self.gan.train_step(self.images, self.z)
        out["d_loss"].numpy()
        return (time.perf_counter() - start) / steps


class Loop:
    def __init__(self, gan, pixels, k, source, total_steps):
        self.name, self.k, self.gan = f"loop K={k}" + (", memory" if source == "memory" else ""), k, gan
        self.name += {"gather": ", tf.gather", "autotune": ", AUTOTUNE map"}.get(source, "")
        epochs = -(-total_steps // (len(pixels) // BATCH))
        rows = dataset.index_batches(len(pixels), BATCH, 0, 0, 0, epochs, total_steps)
        if source == "memory":
            self.batches = iter(tf.data.Dataset.from_tensors(tf.constant(pixels[:BATCH])).repeat())
        elif source == "gather":  # diagnostic: the same batches gathered by a TF op from the set held as a tensor
            table = tf.constant(pixels)
            self.batches = iter(tf.data.Dataset.from_tensor_slices(rows).map(lambda i: tf.gather(table, i))
                                .prefetch(tf.data.AUTOTUNE))
        elif source == "autotune":  # diagnostic: training's numpy gather as it was, on AUTOTUNE's map threads
            def gather(i):
                return pixels[np.asarray(i)]
            self.batches = iter(tf.data.Dataset.from_tensor_slices(rows).map(
                lambda i: tf.ensure_shape(tf.numpy_function(gather, [i], tf.uint8, stateful=False),
                                          (BATCH,) + pixels.shape[1:]),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE))
        else:
            self.batches = iter(dataset.make_dataset(pixels, rows, 3))
        self.seconds = []

    def run(self, steps):
        calls = -(-steps // self.k)
        start = time.perf_counter()
        for _ in range(calls):
            self.gan.train_loop(self.batches, tf.constant(self.k, tf.int32))[0].numpy()
        return (time.perf_counter() - start) / (calls * self.k)


class TimedDCGAN(model.DCGAN):
    """model.DCGAN noting when each train_loop call starts and how many steps it runs (train.py builds it as
    model.DCGAN, which run_whole swaps for this class while train.train runs)."""
    calls = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        compiled = self.train_loop

        def timed(iterator, num_steps, *args, **kwargs):
            TimedDCGAN.calls.append((time.perf_counter(), int(num_steps)))
            return compiled(iterator, num_steps, *args, **kwargs)
        self.train_loop = timed


def timed_calls(module, name, log):
    """Replace module.name with a wrapper that appends each call's seconds to log; returns the original."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            log.append(time.perf_counter() - start)
    setattr(module, name, wrapper)
    return original


class Whole:
    """train.train() on a synthetic folder, in its own run folder that keeps only the decoded cache between runs."""

    def __init__(self, k, shape, data_dir, out_dir, precision):
        self.name, self.k, self.shape = f"whole K={k}", k, shape
        self.data_dir, self.out_dir, self.precision = data_dir, out_dir, precision
        self.seconds, self.saves, self.grids = [], [], []

    def flags(self, max_steps):
        argv = ["main.py", "--train", f"--data_dir={self.data_dir}", "--dataset=faces", f"--out_dir={self.out_dir}",
                f"--out_name=k{self.k}", f"--output_height={self.shape['size']}", f"--gf_dim={self.shape['gf_dim']}",
                f"--df_dim={self.shape['df_dim']}", f"--batch_size={BATCH}", f"--max_steps={max_steps}",
                f"--steps_per_loop={self.k}", "--seed=0", f"--precision={self.precision}"]
        cli.FLAGS.unparse_flags()
        cli.FLAGS(argv)
        logging.set_verbosity(logging.WARNING)  # parsing resets absl's verbosity
        return cli.resolved_flags()

    def run(self, steps):
        calls = -(-steps // self.k)
        flags = self.flags((calls + 2) * self.k)
        run_dir = os.path.join(self.out_dir, f"k{self.k}")
        if os.path.isdir(run_dir):  # a new run each time; the decoded cache stays
            for entry in os.listdir(run_dir):
                if entry != "cache":
                    path = os.path.join(run_dir, entry)
                    shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
        TimedDCGAN.calls = []
        saves, grids = [], []
        original_dcgan, model.DCGAN = model.DCGAN, TimedDCGAN
        original_save = timed_calls(train, "_save", saves)
        original_grid = timed_calls(utils, "save_images", grids)
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # the progress bar still draws, out of sight
                train.train(flags)
        finally:
            model.DCGAN, train._save, utils.save_images = original_dcgan, original_save, original_grid
        self.saves += saves
        self.grids += grids
        starts = TimedDCGAN.calls
        if len(starts) < 3:
            raise RuntimeError(f"{self.name}: expected at least 3 compiled loops, got {len(starts)}")
        return (starts[-1][0] - starts[1][0]) / sum(n for _, n in starts[1:-1])


def write_jpegs(folder, n, size):
    """n noise JPEGs at the training size (speed does not depend on what they show)."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(os.path.join(folder, f"img_{i:05d}.jpg"), rng.integers(0, 256, (size, size, 3), np.uint8))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="tiny,full")
    p.add_argument("--ks", default="1,5,20,50", help="steps_per_loop values at the tiny size [1,5,20,50]")
    p.add_argument("--full_ks", default="20", help="steps_per_loop values at 64x64 (its steps take seconds) [20]")
    p.add_argument("--tiny_steps", type=int, default=100, help="timed steps per configuration, tiny size [100]")
    p.add_argument("--full_steps", type=int, default=20, help="timed steps per configuration, 64x64 [20]")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--precision", default="auto", choices=mixed_precision.PRECISIONS)
    p.add_argument("--no_whole", action="store_true", help="skip the train.train() runs")
    p.add_argument("--pipelines", action="store_true", help="also time two other input pipelines at K=20: "
                   "tf.gather from the set held as a tensor, and the numpy gather on AUTOTUNE's parallel map threads "
                   "(training's pipeline before it moved to one map thread)")
    args = p.parse_args()
    cli.FLAGS(["main.py"])  # define the flag values once, so unparse/parse works
    logging.set_verbosity(logging.WARNING)
    precision = mixed_precision.resolve_precision(args.precision)
    lines = common.header("Training loop overhead (bench/loop_overhead.py)")
    lines += [f"Batch {BATCH}, z 100, precision {precision}; {args.rounds} interleaved rounds; ms per step (median "
              "over rounds), overhead = ms per step above the bare step.", ""]
    scratch = tempfile.mkdtemp(prefix="nf_bench_loop_")
    try:
        for size_name in args.sizes.split(","):
            if size_name not in SIZES:
                sys.exit(f"error: --sizes takes {', '.join(SIZES)}, got {size_name!r}")
            lines += measure(size_name, args, precision, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    lines.append(f"- load average at the end: {common.load_now():.2f}")
    print("\n" + "\n".join(lines))


def measure(size_name, args, precision, scratch):
    shape = SIZES[size_name]
    steps = args.tiny_steps if size_name == "tiny" else args.full_steps
    ks = [int(k) for k in (args.ks if size_name == "tiny" else args.full_ks).split(",")]
    size = shape["size"]
    cfg = model.ModelConfig(output_height=size, output_width=size, gf_dim=shape["gf_dim"], df_dim=shape["df_dim"])
    keras.utils.set_random_seed(0)
    gan = model.DCGAN(cfg, precision=precision, seed=0)
    # enough images that a whole run of (calls + 2) loops of the largest K never reaches an epoch's end
    most = max((-(-steps // k) + 2) * k for k in ks)
    pixels = np.random.default_rng(0).integers(0, 256, (BATCH * (most + 2), size, size, 3), np.uint8)
    total = 2 * max(ks) + args.rounds * (steps + max(ks) + 2 * len(ks))
    configs = [Bare(gan, pixels)] + [Loop(gan, pixels, k, "files", total) for k in ks]
    configs.append(Loop(gan, pixels, 20 if 20 in ks else ks[-1], "memory", total))
    if args.pipelines:
        configs += [Loop(gan, pixels, 20 if 20 in ks else ks[-1], source, total) for source in ("gather", "autotune")]
    if not args.no_whole:
        data_dir = os.path.join(scratch, size_name)
        write_jpegs(os.path.join(data_dir, "faces"), len(pixels), size)
        configs += [Whole(k, shape, data_dir, os.path.join(scratch, f"out_{size_name}"), precision) for k in ks]
    def trace():
        """Trace train_step, then train_loop once per iterator (one step each). Again after every train.train():
        its keras.utils.set_random_seed (tf.random.set_seed) makes every tf.function trace anew."""
        configs[0].run(2)
        for c in configs[1:]:
            if isinstance(c, Loop):
                gan.train_loop(c.batches, tf.constant(1, tf.int32))[0].numpy()

    trace()
    for r in range(args.rounds):
        shift = r * len(configs) // args.rounds
        for c in configs[shift:] + configs[:shift]:
            c.seconds.append(c.run(steps))
            if isinstance(c, Whole):
                trace()
            print(f"{size_name} round {r + 1}: {c.name}: {1000 * c.seconds[-1]:.2f} ms/step "
                  f"(load {common.load_now():.1f})", flush=True)

    def ms(c):
        return 1000 * statistics.median(c.seconds)

    bare = ms(configs[0])
    out = [f"### {size_name}: {size}x{size}, gf/df {shape['gf_dim']}, {steps} timed steps per configuration", "",
           "| configuration | ms/step | range over rounds | overhead ms/step | vs bare | overhead, best rounds |",
           "|---|---|---|---|---|---|"]
    bare_best = 1000 * min(configs[0].seconds)
    for c in configs:  # a busy machine only ever adds time, so the best rounds' difference is the steadier one
        lo, hi = 1000 * min(c.seconds), 1000 * max(c.seconds)
        out.append(f"| {c.name} | {ms(c):.2f} | {lo:.2f}-{hi:.2f} | {ms(c) - bare:+.2f} | {ms(c) / bare:.3f}x | "
                   f"{lo - bare_best:+.2f} |")
    wholes = [c for c in configs if isinstance(c, Whole)]
    if wholes:
        saves = [s for c in wholes for s in c.saves]
        grids = [g for c in wholes for g in c.grids]
        save_ms, grid_ms = 1000 * statistics.median(saves), 1000 * statistics.median(grids)
        best = min(wholes, key=ms)
        goal = (f"goal <= 1 ms: {'met' if ms(best) - bare <= 1 else 'missed'}" if size_name == "tiny" else
                f"goal within 3%: {'met' if ms(best) <= 1.03 * bare else 'missed'}")
        out += ["", f"- a checkpoint write takes {save_ms:.0f} ms and a sample grid {grid_ms:.0f} ms (medians of "
                f"{len(saves)} and {len(grids)}): every 200 steps (the default --ckpt_freq, --sample_freq) they add "
                f"{(save_ms + grid_ms) / 200:.2f} ms a step",
                f"- fastest whole loop: {best.name}, {ms(best) - bare:+.2f} ms a step over bare ({goal})"]
    return out + [""]


if __name__ == "__main__":
    main()
