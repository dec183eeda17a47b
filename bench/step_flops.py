"""Arithmetic for the GPU section: FLOPs of one training step of the default DCGAN (TensorFlow's own count of
the compiled step's graph), the gradient bytes a step all-reduces, and the step rates a GPU's peak would allow.

    python bench/step_flops.py                 # 64x64, batch 64, 2 G updates
    python bench/step_flops.py --size 128 --batch_size 128
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import model  # noqa: E402

# Dense (no sparsity) peak tensor-core rates in TFLOP/s from the vendors' data sheets, for the arithmetic only.
PEAKS = {"T4 (fp16)": 65, "A100 (bf16/fp16)": 312, "H100 SXM (bf16/fp16)": 989, "L4 (bf16/fp16)": 121}


def step_flops(cfg, batch_size, g_updates):
    gan = model.DCGAN(cfg, g_updates=g_updates)
    images = tf.TensorSpec([batch_size, cfg.output_height, cfg.output_width, cfg.c_dim], tf.float32)
    z = tf.TensorSpec([batch_size, cfg.z_dim], tf.float32)
    graph = tf.function(gan._train_step).get_concrete_function(images, z).graph
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=opts).total_float_ops, gan


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--g_updates", type=int, default=2)
    a = p.parse_args()
    cfg = model.ModelConfig(output_height=a.size, output_width=a.size)
    flops, gan = step_flops(cfg, a.batch_size, a.g_updates)
    g = sum(int(np.prod(v.shape)) for v in gan.generator.trainable_variables)
    d = sum(int(np.prod(v.shape)) for v in gan.discriminator.trainable_variables)
    grad_bytes = 4 * (d + a.g_updates * g)
    print(f"# python bench/step_flops.py --size {a.size} --batch_size {a.batch_size} --g_updates {a.g_updates}")
    print(f"one training step (1 D + {a.g_updates} G updates, batch {a.batch_size}, {a.size}x{a.size}): "
          f"{flops / 1e9:.1f} GFLOP ({flops / a.batch_size / 1e9:.2f} GFLOP an image)")
    print(f"G {g:,} and D {d:,} trainable parameters; a step all-reduces {grad_bytes / 2 ** 20:.1f} MiB of float32 "
          "gradients under tf.distribute")
    print("\n| GPU | peak TFLOP/s | steps/s at 100% | at 30% of peak | img/s at 30% |\n|---|---|---|---|---|")
    for name, peak in PEAKS.items():
        full = peak * 1e12 / flops
        print(f"| {name} | {peak} | {full:,.0f} | {0.3 * full:,.0f} | {0.3 * full * a.batch_size:,.0f} |")


if __name__ == "__main__":
    main()
