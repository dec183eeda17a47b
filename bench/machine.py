"""The machine a benchmark ran on, as Markdown lines: CPU model and its bf16 flags, cores, load, versions, date, command."""
import datetime
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys

FLAGS_OF_INTEREST = ("avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16", "amx_fp16", "amx_tile")


def cpu_model():
    """lscpu's model name (or /proc/cpuinfo's, or platform's when neither exists)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def header(title, packages=("tensorflow", "keras", "numpy")):
    """Lines to print above a benchmark's tables; the load average says how quiet the machine was."""
    flags = cpu_flags()
    shown = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in FLAGS_OF_INTEREST)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    command = " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable)] + sys.argv)
    return [f"## {title}", "",
            f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
            f"- command: `{command}`",
            f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
            f"- CPU flags: {shown}",
            f"- load average (1/5/15 min) at start: {load}",
            "- versions: " + ", ".join(f"{p} {version(p)}" for p in packages) + f", Python {platform.python_version()}",
            ""]


def load_now():
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
