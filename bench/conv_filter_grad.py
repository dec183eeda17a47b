"""Times the kernel gradient of each 5x5 stride-2 layer of the 64-px DCGAN: oneDNN's backward-weights kernel against
one matmul of patches (ops._matmul_filter_grad), in bfloat16 and float32, interleaved, to set
ops.MATMUL_FILTER_GRAD_MAX_POSITIONS."""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

# (input size, input channels, output channels) of D's convs; G's transposed convs are the same shapes reversed
# (G's g_h1 4x4x512 -> 8x8x256 has the kernel gradient of D's d_h3 8x8x256 -> 4x4x512).
SHAPES = ((64, 3, 64), (32, 64, 128), (16, 128, 256), (8, 256, 512))


class Variant:
    def __init__(self, tf, how, size, cin, cout, dtype, batch):
        import ops
        self.name_ = f"{size}x{size}x{cin} -> {size // 2}x{size // 2}x{cout}, {dtype}, {how}"
        self.how, self.dtype, self.size = how, dtype, size
        images = tf.cast(tf.random.stateless_normal([batch, size, size, cin], [0, 1]), dtype)
        grads = tf.cast(tf.random.stateless_normal([batch, size // 2, size // 2, cout], [0, 2]), dtype)
        shape = [5, 5, cin, cout]
        if how == "oneDNN":
            fn = tf.function(lambda x, dy: tf.compat.v1.nn.conv2d_backprop_filter(x, shape, dy, [1, 2, 2, 1], "SAME"))
        else:
            fn = tf.function(lambda x, dy: ops._matmul_filter_grad(x, dy, shape, [2, 2]))
        self.run_once = lambda: fn(images, grads).numpy()
        self.seconds = []

    def name(self):
        return self.name_

    def run(self, steps):
        start = time.perf_counter()
        for _ in range(steps):
            self.run_once()
        return (time.perf_counter() - start) / steps


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="gradients per timed measurement [10]")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    from absl import logging
    logging.set_verbosity(logging.WARNING)
    import tensorflow as tf

    lines = common.header("Kernel gradient: oneDNN against a matmul of patches (bench/conv_filter_grad.py)")
    variants = [Variant(tf, how, *shape, dtype, args.batch_size)
                for shape in SHAPES for dtype in ("bfloat16", "float32") for how in ("oneDNN", "matmul")]
    common.run_rounds(variants, args.rounds, args.steps, 2, args.batch_size)
    lines += [f"Batch {args.batch_size}; {args.rounds} interleaved rounds of {args.steps} gradients each; median ms "
              "(range over rounds).", "",
              "| layer (D's conv; G's transposed conv reversed) | positions of the small side | dtype | oneDNN ms | "
              "matmul ms | oneDNN / matmul |", "|---|---|---|---|---|---|"]
    for one, mm in zip(variants[::2], variants[1::2]):
        a, b = statistics.median(one.seconds) * 1000, statistics.median(mm.seconds) * 1000
        lines.append(f"| {one.name_.rsplit(', ', 2)[0]} | {(one.size // 2) ** 2} | {one.dtype} | "
                     f"{a:.1f} ({min(one.seconds) * 1000:.1f}-{max(one.seconds) * 1000:.1f}) | "
                     f"{b:.1f} ({min(mm.seconds) * 1000:.1f}-{max(mm.seconds) * 1000:.1f}) | {a / b:.2f}x |")
    lines.append(f"- load average at the end: {common.load_now():.2f}")
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
