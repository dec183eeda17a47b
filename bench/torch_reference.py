"""Benchmark: this project's training step against a PyTorch port of the same DCGAN, in one run, interleaved.

    python bench/torch_reference.py                  # 64x64, batch 64, 3 rounds of 10 steps per variant
    python bench/torch_reference.py --steps 2 --rounds 1 --size 16       # a quick look

torch is a benchmark-only dependency (pip install torch; the CPU wheel is enough); training never needs it.
The port is the reference a user would otherwise pick: model.py's default architecture layer for layer (G: linear
z -> 4x4x8gf, BN, ReLU, four 5x5 stride-2 transposed convs to 64x64x3 with BN + ReLU but the last, tanh; D: four
5x5 stride-2 convs, BN on all but the first, LeakyReLU 0.2, linear -> 1 logit), N(0, 0.02) weights, batch norm
decay 0.9 (torch momentum 0.1) and eps 1e-5, Adam 2e-4 / (0.5, 0.999) / eps 1e-8, and the same step: one D
update on a real batch and G(z), then 2 G updates with D frozen, BCE-with-logits losses, a new z every step; the
first G update reuses the D update's G(z), as this project's step does (--recompute_modes also times the port
recomputing it).
Padding gives TF's 'same' shapes (torch pads 2 on both sides where TF pads 1 before and 2 after: the same work,
the window shifted by one pixel). Its variants: float32, channels_last, bf16 autocast, bf16 autocast +
channels_last, each with 1 and 2 torch threads (torch.set_num_threads). The project's side: the default training
step (--precision auto, 2 G updates) and float32, each as one gan.train_loop of --steps steps over one uint8 batch
held in memory; torch gets the same batch. Every variant is timed once a round, the rounds in rotated orders.
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError:
    sys.exit("error: this benchmark needs PyTorch (pip install -e '.[bench]', or the CPU wheel: pip install torch "
             "--index-url https://download.pytorch.org/whl/cpu); training does not")

import common  # noqa: E402  (bench/common.py)

WEIGHT_STDDEV = 0.02


class Generator(nn.Module):
    def __init__(self, size=64, z_dim=100, gf_dim=64, c_dim=3):
        super().__init__()
        self.s16 = size // 16
        self.lin = nn.Linear(z_dim, gf_dim * 8 * self.s16 * self.s16)
        self.bn0 = nn.BatchNorm2d(gf_dim * 8, momentum=0.1, eps=1e-5)
        widths = [gf_dim * 8, gf_dim * 4, gf_dim * 2, gf_dim, c_dim]
        # kernel 5, stride 2, padding 2, output_padding 1: out = 2 * in, TF's 'same'
        self.deconvs = nn.ModuleList(nn.ConvTranspose2d(a, b, 5, stride=2, padding=2, output_padding=1)
                                     for a, b in zip(widths, widths[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm2d(b, momentum=0.1, eps=1e-5) for b in widths[1:-1])
        self.channels_last = False

    def forward(self, z):
        x = self.lin(z).view(len(z), -1, self.s16, self.s16)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu(self.bn0(x))
        for deconv, bn in zip(self.deconvs[:-1], self.bns):
            x = F.relu(bn(deconv(x)))
        return torch.tanh(self.deconvs[-1](x).float())


class Discriminator(nn.Module):
    def __init__(self, size=64, df_dim=64, c_dim=3):
        super().__init__()
        widths = [c_dim, df_dim, df_dim * 2, df_dim * 4, df_dim * 8]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 5, stride=2, padding=2) for a, b in zip(widths, widths[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm2d(b, momentum=0.1, eps=1e-5) for b in widths[2:])
        self.lin = nn.Linear(df_dim * 8 * (size // 16) ** 2, 1)

    def forward(self, x):
        x = F.leaky_relu(self.convs[0](x), 0.2)
        for conv, bn in zip(self.convs[1:], self.bns):
            x = F.leaky_relu(bn(conv(x)), 0.2)
        return self.lin(torch.flatten(x, 1)).float()  # the logit (and so the losses) in float32


def init_weights(module):
    """The original's initialisers: N(0, 0.02) (truncated at 2 sigma for D's convs, as TF's), zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.trunc_normal_(m.weight, std=WEIGHT_STDDEV, a=-2 * WEIGHT_STDDEV, b=2 * WEIGHT_STDDEV)
        elif isinstance(m, (nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, std=WEIGHT_STDDEV)
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.zeros_(m.bias)


def torch_counts(module):
    """(trainable parameters, batch-norm running statistics): the numbers Keras calls trainable / non-trainable."""
    stats = sum(b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var")))
    return sum(p.numel() for p in module.parameters()), stats


class TorchDCGAN:
    """The port with its optimisers and the step; mode: float32, channels_last, bf16, bf16_channels_last."""

    def __init__(self, mode, size, seed=0, reuse_fake=True):
        torch.manual_seed(seed)
        self.mode, self.reuse_fake = mode, reuse_fake
        self.G, self.D = Generator(size), Discriminator(size)
        init_weights(self.G)
        init_weights(self.D)
        self.channels_last = mode.endswith("channels_last")
        if self.channels_last:
            self.G.channels_last = True
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.g_adam = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
        self.d_adam = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
        self.autocast = mode.startswith("bf16")

    def _forward(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast)

    def step(self, images_uint8, g_updates=2):
        images = images_uint8.float() / 127.5 - 1.0
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        z = torch.rand(len(images), 100) * 2 - 1  # U(-1, 1), the default prior
        with self._forward():
            fake = self.G(z)
            real_logits, fake_logits = self.D(images), self.D(fake.detach())
            d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                      + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        self.d_adam.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_adam.step()
        self.D.requires_grad_(False)  # D frozen: the G step computes no gradients for D's weights
        for i in range(g_updates):
            with self._forward():
                # reuse_fake: the first G update takes the D update's G(z), whose graph is still there (as
                # pytorch/examples' DCGAN does, and this project's step since 1c2f9ba); else G(z) is redrawn.
                logits = self.D(fake if i == 0 and self.reuse_fake else self.G(z))
                g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            self.g_adam.zero_grad(set_to_none=True)
            g_loss.backward()
            self.g_adam.step()
        self.D.requires_grad_(True)
        return d_loss.item(), g_loss.item()


class TorchVariant:
    def __init__(self, mode, threads, size, batch, reuse_fake=True):
        self.mode, self.threads, self.batch = mode, threads, torch.from_numpy(batch).permute(0, 3, 1, 2)
        self.gan = TorchDCGAN(mode, size, reuse_fake=reuse_fake)
        self.seconds = []

    def name(self):
        fake = "" if self.gan.reuse_fake else ", G(z) recomputed"
        return (f"PyTorch {torch.__version__} {self.mode}, {self.threads} thread{'s' if self.threads > 1 else ''}"
                f"{fake}")

    def run(self, steps):
        torch.set_num_threads(self.threads)
        start = time.perf_counter()
        for _ in range(steps):
            self.gan.step(self.batch)  # .item() waits for the step
        return (time.perf_counter() - start) / steps


class TFVariant:
    def __init__(self, precision, cfg, batch, label, portable=False):
        import functools
        import keras
        import tensorflow as tf
        import model
        self.tf, self.label, self.precision = tf, label, precision
        keras.utils.set_random_seed(0)
        if not portable:
            self.gan = model.DCGAN(cfg, g_updates=2, precision=precision, seed=0)
        else:  # Keras's own layers (no fused batch norm, no wide layout): the project before them
            make_g, make_d = model.make_generator, model.make_discriminator
            model.make_generator = functools.partial(make_g, portable=True)
            model.make_discriminator = functools.partial(make_d, portable=True)
            try:
                self.gan = model.DCGAN(cfg, g_updates=2, precision=precision, seed=0)
            finally:
                model.make_generator, model.make_discriminator = make_g, make_d
        self.batches = iter(tf.data.Dataset.from_tensors(tf.constant(batch)).repeat())
        self.seconds = []

    def name(self):
        return f"this project, {self.label} ({self.precision})"

    def run(self, steps):
        start = time.perf_counter()
        self.gan.train_loop(self.batches, self.tf.constant(steps, self.tf.int32))[0].numpy()
        return (time.perf_counter() - start) / steps


def compare_counts(size):
    """Parameter counts of the TF model and the port, per network; they must be equal."""
    import model
    cfg = model.ModelConfig(output_height=size, output_width=size)
    rows = []
    for name, keras_net, torch_net in (("generator", model.make_generator(cfg), Generator(size)),
                                       ("discriminator", model.make_discriminator(cfg), Discriminator(size))):
        tf_counts = (sum(int(v.numpy().size) for v in keras_net.trainable_weights),
                     sum(int(v.numpy().size) for v in keras_net.non_trainable_weights))
        rows.append((name, tf_counts, torch_counts(torch_net)))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64, help="output size, a multiple of 16 [64]")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="steps per timed measurement [10]")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--modes", default="float32,channels_last,bf16,bf16_channels_last")
    p.add_argument("--threads", default="1,2", help="torch thread counts [1,2]")
    p.add_argument("--recompute_modes", default="bf16_channels_last",
                   help="modes also timed (2 threads) with G(z) recomputed for the first G update, as this project "
                        "did before 1c2f9ba; '' for none [bf16_channels_last]")
    p.add_argument("--keras_layers", action="store_true",
                   help="also time the default step built from Keras's own layers (no fused batch norm, no wide "
                        "layout)")
    args = p.parse_args()
    if args.size % 16:
        sys.exit(f"error: --size must be a multiple of 16 for the port, got {args.size}")
    modes = args.modes.split(",")
    recompute_modes = [m for m in args.recompute_modes.split(",") if m]
    for m in modes + recompute_modes:
        if m not in ("float32", "channels_last", "bf16", "bf16_channels_last"):
            sys.exit(f"error: unknown --modes entry {m!r}")
    from absl import logging
    logging.set_verbosity(logging.WARNING)
    import numpy as np
    import mixed_precision
    import model

    lines = common.header("PyTorch reference (bench/torch_reference.py)", ("tensorflow", "keras", "torch", "numpy"))
    counts = compare_counts(args.size)
    for name, tf_counts, th_counts in counts:
        same = "equal" if tf_counts == th_counts else "DIFFERENT"
        print(f"{name}: TF {tf_counts[0]:,} trainable + {tf_counts[1]:,} BN statistics, torch {th_counts[0]:,} + "
              f"{th_counts[1]:,}: {same}", flush=True)
    if any(t != th for _, t, th in counts):
        sys.exit("error: the port's parameter counts differ from the TF model's: fix the port before timing it")

    cfg = model.ModelConfig(output_height=args.size, output_width=args.size)
    batch = np.random.default_rng(0).integers(0, 256, (args.batch_size, args.size, args.size, 3), dtype=np.uint8)
    default_precision = mixed_precision.resolve_precision("auto")
    variants = [TFVariant(default_precision, cfg, batch, "default")]
    if args.keras_layers:
        variants.append(TFVariant(default_precision, cfg, batch, "default built from Keras's own layers", True))
    if default_precision != "float32":
        variants.append(TFVariant("float32", cfg, batch, "float32"))
    variants += [TorchVariant(m, t, args.size, batch) for m in modes for t in map(int, args.threads.split(","))]
    variants += [TorchVariant(m, 2, args.size, batch, reuse_fake=False) for m in recompute_modes]
    common.run_rounds(variants, args.rounds, args.steps, args.warmup, args.batch_size)

    def img_s(v, how=statistics.median):
        return args.batch_size / how(v.seconds)

    ours = variants[0]
    best = max((v for v in variants if isinstance(v, TorchVariant)), key=img_s, default=None)
    lines += [f"{args.size}x{args.size} DCGAN (gf/df 64, z 100), batch {args.batch_size}, 1 D + 2 G updates a step; "
              f"{args.rounds} interleaved rounds of {args.steps} steps per variant after {args.warmup} warm-up steps; "
              f"TensorFlow uses its default threads ({os.cpu_count()} here).", "",
              "Parameters (trainable + batch-norm statistics): " + "; ".join(
                  f"{n} TF {t[0]:,} + {t[1]:,}, torch {th[0]:,} + {th[1]:,}" for n, t, th in counts), "",
              "| variant | img/s (median) | range over rounds | ms/step | project default vs this |",
              "|---|---|---|---|---|"]
    for v in variants:
        lines.append(f"| {v.name()} | {img_s(v):.1f} | {img_s(v, max):.1f}-{img_s(v, min):.1f} | "
                     f"{1000 * statistics.median(v.seconds):.0f} | {img_s(ours) / img_s(v):.2f}x |")
    if best is not None:
        goal = "meets" if img_s(ours) >= 1.3 * img_s(best) else "misses"
        lines += ["", f"- best PyTorch variant: {best.name()}, {img_s(best):.1f} img/s; the project's default step "
                  f"runs {img_s(ours) / img_s(best):.2f}x its speed ({goal} the goal of >= 1.3x)"]
    lines.append(f"- load average at the end: {common.load_now():.2f}")
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
