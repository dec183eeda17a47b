"""Benchmark: training steps/s on 1 vs 2 logical CPU devices (mirrored) and 1 vs 2 local workers, and the
all-reduce volume of a step.

    python bench/distribute_scaling.py                    # 64x64, global batch 64, 20 timed steps a setting
    python bench/distribute_scaling.py --size 32 --steps 10

Each setting runs in fresh processes (a CPU split or a cluster must be set up before TensorFlow starts), one
after another; on a 2-core machine the replicas share the same cores, so this shows the cost of distributing,
not a speed-up.
"""
import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def worker(args):
    """One process of one setting: build the strategy, the DCGAN and the input pipeline, time train_loop."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    import dataset
    import distribute
    import model
    cluster = distribute.make_cluster(args.strategy, args.devices, 120.0)
    cfg = model.ModelConfig(output_height=args.size, output_width=args.size)
    gan = model.DCGAN(cfg, precision=args.precision, seed=0, batches_per_epoch=10 ** 6, strategy=cluster.strategy)
    pixels = np.random.default_rng(0).integers(0, 256, (args.batch_size * 8, args.size, args.size, 3), np.uint8)
    batches = dataset.index_batches(len(pixels), args.batch_size, 0, 0, 0, 10 ** 4,
                                    max_batches=args.steps * 3 + args.warmup * 2)

    def per_worker(ctx):
        local = ctx.num_replicas_in_sync // ctx.num_input_pipelines
        rows = dataset.replica_batches(batches, ctx.num_input_pipelines, ctx.input_pipeline_id, local)
        return dataset.make_dataset(pixels, rows, 3)
    it = iter(cluster.strategy.distribute_datasets_from_function(per_worker))
    gan.train_loop(it, tf.constant(args.warmup))[0].numpy()
    start = time.perf_counter()
    gan.train_loop(it, tf.constant(args.steps))[0].numpy()
    seconds = (time.perf_counter() - start) / args.steps
    g = sum(int(np.prod(v.shape)) for v in gan.generator.trainable_variables)
    d = sum(int(np.prod(v.shape)) for v in gan.discriminator.trainable_variables)
    print(json.dumps({"worker": cluster.worker, "replicas": cluster.replicas, "s_per_step": seconds,
                      "g_params": g, "d_params": d}), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_setting(base, strategy, devices="", workers=1):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", f"--strategy={strategy}", f"--devices={devices}",
           *base]
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    procs = []
    if workers == 1:
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True))
    else:
        hosts = [f"127.0.0.1:{free_port()}" for _ in range(workers)]
        for i in range(workers):
            config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}}
            procs.append(subprocess.Popen(cmd, env={**env, "TF_CONFIG": json.dumps(config)}, stdout=subprocess.PIPE,
                                          text=True))
    results = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            sys.exit(f"setting {strategy} {devices} x{workers} failed (exit {p.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return max(r["s_per_step"] for r in results), results[0]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch_size", type=int, default=64, help="the global batch")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--precision", default="float32")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--strategy", default="default", help=argparse.SUPPRESS)
    p.add_argument("--devices", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    base = [f"--size={args.size}", f"--batch_size={args.batch_size}", f"--steps={args.steps}",
            f"--warmup={args.warmup}", f"--precision={args.precision}"]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"# {cpu}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, {args.size}x{args.size}, global batch "
          f"{args.batch_size}, {args.precision}, {args.steps} timed steps: python bench/distribute_scaling.py "
          + " ".join(sys.argv[1:]))
    rows = []
    for name, strategy, devices, workers in (("default, 1 device", "default", "", 1),
                                             ("mirrored, 2 logical CPUs", "mirrored", "/cpu:0,/cpu:1", 1),
                                             ("multi_worker, 2 local workers", "multi_worker", "", 2)):
        seconds, info = run_setting(base, strategy, devices, workers)
        rows.append((name, seconds, info))
        print(f"{name}: {seconds:.3f} s/step, {args.batch_size / seconds:.1f} img/s", flush=True)
    info = rows[0][2]
    # Per step: D's gradients once, G's once per G update (2), all float32 whatever the compute precision.
    grad_bytes = 4 * (info["d_params"] + 2 * info["g_params"])
    print(f"\nG {info['g_params']:,} and D {info['d_params']:,} trainable parameters: a step all-reduces "
          f"{grad_bytes / 2 ** 20:.1f} MiB of gradients (D once, G twice)")
    print("\n| setting | s/step | img/s | vs 1 device |\n|---|---|---|---|")
    for name, seconds, _ in rows:
        print(f"| {name} | {seconds:.3f} | {args.batch_size / seconds:.1f} | {rows[0][1] / seconds:.2f}x |")


if __name__ == "__main__":
    main()
