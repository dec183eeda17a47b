"""What the training benchmarks share: the machine header (CPU model and bf16 flags from lscpu, load, versions,
date, command) and timing configurations in interleaved rounds."""
import datetime
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
import time

FLAGS_OF_INTEREST = ("avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16", "amx_fp16", "amx_tile")


def lscpu():
    """lscpu's 'Key: value' lines as a dict (empty where there is no lscpu)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict((k.strip(), v.strip()) for k, v in (line.split(":", 1) for line in out.splitlines() if ":" in line))


def version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def load_now():
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def header(title, packages=("tensorflow", "keras", "numpy")):
    """Lines to print above a benchmark's tables; the load average says how quiet the machine was."""
    info = lscpu()
    flags = set(info.get("Flags", "").split())
    shown = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in FLAGS_OF_INTEREST)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    command = " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable)] + sys.argv)
    return [f"## {title}", "",
            f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
            f"- command: `{command}`",
            f"- machine: {info.get('Model name', platform.processor() or platform.machine())}, {os.cpu_count()} "
            f"logical CPUs, {platform.system()} {platform.release()}",
            f"- CPU flags: {shown}" if flags else "- CPU flags: unknown (no lscpu)",
            f"- load average (1/5/15 min) at start: {load}",
            "- versions: " + ", ".join(f"{p} {version(p)}" for p in packages) + f", Python {platform.python_version()}",
            ""]


def run_rounds(configs, rounds, steps, warmup, batch_size):
    """Warm each configuration up (tracing), then time each once a round, every round in a rotated order, so a
    machine getting busier or quieter affects all alike. A configuration has run(steps) -> seconds per step,
    name() and a seconds list, which gets one entry a round."""
    for c in configs:
        start = time.perf_counter()
        c.run(warmup)
        print(f"warm-up {c.name()}: {time.perf_counter() - start:.1f} s", flush=True)
    for r in range(rounds):
        shift = r * len(configs) // rounds
        for c in configs[shift:] + configs[:shift]:
            c.seconds.append(c.run(steps))
            print(f"round {r + 1}: {c.name()}: {batch_size / c.seconds[-1]:.1f} img/s (load {load_now():.1f})",
                  flush=True)
