"""Times each 5x5 stride-2 layer of the 64-px DCGAN in the plain layout against the wide one (ops.batch_to_width:
the batch side by side along the width), forward and forward + backward, in bfloat16 and float32, interleaved, to
set ops.WIDE_MAX_WIDTH.

    python bench/conv_layouts.py                      # batch 64, 3 rounds of 10 calls per variant
    python bench/conv_layouts.py --dtypes bfloat16 --rounds 1 --steps 3      # a quick look
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

# (big side, input channels, output channels) of D's convs, big -> big / 2; G's transposed convs are the same
# shapes reversed (G's g_h1 4x4x512 -> 8x8x256 is D's d_h3 8x8x256 -> 4x4x512 backwards).
SHAPES = ((64, 3, 64), (32, 64, 128), (16, 128, 256), (8, 256, 512))
WHAT = ("conv", "conv + gradients", "transposed conv", "transposed conv + gradients")


def layer_fn(tf, ops, what, layout, big, cin, cout):
    """fn(x, w, dy): the layer's output (and its gradients wrt input and kernel) in this layout."""
    small = big // 2

    def conv(x, w):
        if layout == "plain":
            return tf.nn.conv2d(x, w, 2, "SAME")
        return ops.width_to_batch(tf.nn.conv2d(ops.batch_to_width(x, ops.WIDE_GAP), w, 2, "SAME"), small,
                                  (big + ops.WIDE_GAP) // 2)

    def conv_transpose(y, w):
        n = tf.shape(y)[0]
        if layout == "plain":
            return tf.nn.conv2d_transpose(y, w, tf.stack([n, big, big, cin]), 2, "SAME")
        shape = tf.stack([1, big, n * (big + ops.WIDE_GAP), cin])
        out = tf.nn.conv2d_transpose(ops.batch_to_width(y, ops.WIDE_GAP // 2), w, shape, 2, "SAME")
        return ops.width_to_batch(out, big, big + ops.WIDE_GAP)

    forward = conv if what.startswith("conv") else conv_transpose

    def fn(x, w, dy):
        if "gradients" not in what:
            return [forward(x, w)]
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            out = forward(x, w)
        return [out, *tape.gradient(out, [x, w], output_gradients=dy)]
    return fn


class Variant:
    def __init__(self, tf, ops, what, layout, shape, dtype, batch):
        big, cin, cout = shape
        self.what, self.layout, self.shape, self.dtype = what, layout, shape, dtype
        small = big // 2
        x_shape, y_shape = [batch, big, big, cin], [batch, small, small, cout]
        if what.startswith("transposed"):
            x_shape, y_shape = y_shape, x_shape
        x = tf.cast(tf.random.stateless_normal(x_shape, [0, 1]), dtype)
        dy = tf.cast(tf.random.stateless_normal(y_shape, [0, 2]), dtype)
        w = tf.cast(tf.random.stateless_normal([5, 5, cin, cout], [0, 3]) * 0.02, dtype)
        fn = tf.function(layer_fn(tf, ops, what, layout, big, cin, cout))
        self.run_once = lambda: [t.numpy() for t in fn(x, w, dy)]
        self.seconds = []

    def name(self):
        big, cin, cout = self.shape
        return f"{self.what}, {big}x{big}x{cin} <-> {big // 2}x{big // 2}x{cout}, {self.dtype}, {self.layout}"

    def run(self, steps):
        start = time.perf_counter()
        for _ in range(steps):
            self.run_once()
        return (time.perf_counter() - start) / steps


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="calls per timed measurement [10]")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dtypes", default="bfloat16,float32")
    args = p.parse_args()
    from absl import logging
    logging.set_verbosity(logging.WARNING)
    import tensorflow as tf
    import ops

    lines = common.header("Convolution layouts: plain against wide (bench/conv_layouts.py)")
    variants = [Variant(tf, ops, what, layout, shape, dtype, args.batch_size)
                for shape in SHAPES for dtype in args.dtypes.split(",") for what in WHAT
                for layout in ("plain", "wide")]
    common.run_rounds(variants, args.rounds, args.steps, 2, args.batch_size)
    lines += [f"Batch {args.batch_size}; {args.rounds} interleaved rounds of {args.steps} calls each; median ms "
              f"(range over rounds). ops.WIDE_MAX_WIDTH is {ops.WIDE_MAX_WIDTH}.", "",
              "| layer (D's conv; G's transposed conv reversed) | small side | dtype | what | plain ms | wide ms | "
              "plain / wide |", "|---|---|---|---|---|---|---|"]
    for plain, wide in zip(variants[::2], variants[1::2]):
        a, b = (statistics.median(v.seconds) * 1000 for v in (plain, wide))
        big, cin, cout = plain.shape
        lines.append(f"| {big}x{big}x{cin} <-> {big // 2}x{big // 2}x{cout} | {big // 2} | {plain.dtype} | "
                     f"{plain.what} | {a:.1f} ({min(plain.seconds) * 1000:.1f}-{max(plain.seconds) * 1000:.1f}) | "
                     f"{b:.1f} ({min(wide.seconds) * 1000:.1f}-{max(wide.seconds) * 1000:.1f}) | {a / b:.2f}x |")
    lines.append(f"- load average at the end: {common.load_now():.2f}")
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
