"""Benchmark: wall time from `python main.py --train` starting to its first finished step, and `make demo`'s command.

    python bench/startup_time.py                      # all of ../shared/data/faces, 64x64 defaults
    python bench/startup_time.py --images 500 --rounds 1            # a quick look

Training: `main.py --train --max_steps 1` in a fresh process on a folder of --images images (links to the first
ones of --data), twice: a new run (which decodes every image into the run's cache) and then resuming it (cache
and checkpoint there). The first step counts as finished when the progress bar first moves past its starting
count on stderr; the run's log.txt timestamps split the time before it (import and flags -> 'new run' or
'resumed' logged after the data is decoded and the model built -> 'training on' -> first step). Also timed:
`python -c "import tensorflow"` alone. Demo: the command `make demo` runs (`main.py --sample_num 64 --seed 0`,
here with --sample_dir in a temporary folder), from the repository root, --rounds times; the virtual environment
`make` sets up first is not counted.
"""
import argparse
import datetime
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import common  # noqa: E402  (bench/common.py)

PROGRESS = re.compile(r"\|\s*(\d+)/\d+ \[")  # tqdm's "| 3/3640 [" on stderr


def run_training(argv, env):
    """Run main.py --train; returns (start time, time the progress bar first moved, end time, stderr text)."""
    start = time.time()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    chunks, moved = [], []

    def watch():
        first = None
        while True:
            data = os.read(proc.stderr.fileno(), 65536)
            if not data:
                return
            now = time.time()
            chunks.append(data)
            for count in PROGRESS.findall(data.decode("utf-8", "replace")):
                if first is None:
                    first = int(count)
                elif int(count) > first and not moved:
                    moved.append(now)

    reader = threading.Thread(target=watch)
    reader.start()
    proc.wait()
    end = time.time()
    reader.join()
    text = b"".join(chunks).decode("utf-8", "replace")
    if proc.returncode:
        sys.exit(f"error: {' '.join(argv)} exited {proc.returncode}:\n{text[-3000:]}")
    if not moved:
        sys.exit(f"error: the progress bar never moved past its start in:\n{text[-3000:]}")
    return start, moved[0], end, text


def log_times(log_path, *needles):
    """The time of the last log.txt line containing each needle (None when absent)."""
    found = {n: None for n in needles}
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            for n in needles:
                if n in line:
                    stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                    found[n] = stamp.timestamp()
    return [found[n] for n in needles]


def wall(argv, env):
    start = time.time()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"error: {' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return time.time() - start, done


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "faces"))
    p.add_argument("--pattern", default=".jpg", help="file name ending of the images [.jpg]")
    p.add_argument("--images", type=int, default=0, help="link only the first N images (0: all) [0]")
    p.add_argument("--rounds", type=int, default=3, help="times each command is run [3]")
    p.add_argument("--no_demo", action="store_true")
    p.add_argument("--no_train", action="store_true")
    args = p.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    py = sys.executable
    lines = common.header("Start-up and demo times (bench/startup_time.py)")
    scratch = tempfile.mkdtemp(prefix="nf_bench_start_")
    try:
        imports = [wall([py, "-c", "import tensorflow"], env)[0] for _ in range(args.rounds)]
        lines += [f"- `python -c \"import tensorflow\"`: {statistics.median(imports):.1f} s (median of "
                  f"{args.rounds}: {', '.join(f'{t:.1f}' for t in imports)})"]
        if not args.no_train:
            lines += time_training(args, py, env, scratch)
        if not args.no_demo:
            demo = []
            for r in range(args.rounds):
                seconds, done = wall([py, "main.py", "--sample_num", "64", "--seed", "0",
                                      "--sample_dir", os.path.join(scratch, f"demo_{r}")], env)
                demo.append(seconds)
            source = next((line.split("generator: ", 1)[1] for line in done.stderr.splitlines()
                           if "generator: " in line), "?")
            lines += [f"- `make demo` (`python main.py --sample_num 64 --seed 0`, from the repository root): "
                      f"{statistics.median(demo):.1f} s (median of {args.rounds}: "
                      f"{', '.join(f'{t:.1f}' for t in demo)}); generator: {source}"]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    lines.append(f"- load average at the end: {common.load_now():.2f}")
    print("\n".join(lines))


def time_training(args, py, env, scratch):
    folder = os.path.abspath(args.data)
    if not os.path.isdir(folder):
        sys.exit(f"error: {folder} is not a folder of images (pass --data)")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(args.pattern))
    names = names[:args.images] if args.images else names
    if len(names) < 64:
        sys.exit(f"error: {folder} has {len(names)} *{args.pattern} images, fewer than one batch of 64")
    data_dir = os.path.join(scratch, "data")
    os.makedirs(os.path.join(data_dir, "faces"))
    for n in names:
        os.symlink(os.path.join(folder, n), os.path.join(data_dir, "faces", n))
    rows = []
    for r in range(args.rounds):
        out_dir = os.path.join(scratch, f"out_{r}")
        argv = [py, "main.py", "--train", "--data_dir", data_dir, "--dataset", "faces", "--out_dir", out_dir,
                "--max_steps", "1", "--seed", "0"]
        for kind in ("new run", "resume"):
            start, first_step, end, _ = run_training(argv, env)
            logged, training_on = log_times(os.path.join(out_dir, "faces_64", "log.txt"),
                                            "new run in" if kind == "new run" else "resumed", "training on")
            rows.append((kind, first_step - start, logged - start, training_on - start, end - start))
            print(f"round {r + 1} {kind}: first step done after {first_step - start:.1f} s", flush=True)
    out = ["", f"`python main.py --train --max_steps 1 --seed 0` (64x64 defaults) on {len(names)} images from "
           f"{args.data}; seconds from the process start, median of {args.rounds}:", "",
           "| run | data decoded, model built | 'training on' logged | first step done | process exit |",
           "|---|---|---|---|---|"]
    for kind in ("new run", "resume"):
        cols = [statistics.median(row[i] for row in rows if row[0] == kind) for i in (2, 3, 1, 4)]
        out.append(f"| {kind} | " + " | ".join(f"{c:.1f}" for c in cols) + " |")
    return out + [""]


if __name__ == "__main__":
    main()
