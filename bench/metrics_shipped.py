"""FID, KID and precision/recall of a generator beside their real-vs-real floor: N samples and N other training
images, each against the same N-image reference, so generated and real sets of one size compare like with like.

    python bench/metrics_shipped.py --metrics_ref_num 1000 [main.py's generator and data flags, --seed]

The generator and the reference are found as `main.py --metrics ... --metrics_ref_num N` finds them (the shipped
one and its training set as it was trained, when no run matches), and the reference's features come from the same
cache; the second real set is N other training images drawn the same way. Prints a markdown table with times and
appends the generated side (fidN, kidN, prN, each row with its floor) to the metrics.jsonl `main.py --metrics`
writes for that generator.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app  # noqa: E402

import main  # noqa: E402  (main.py's flags)
import runs  # noqa: E402
from metrics import commands, fid, inception, kid, reference, runner  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run(argv):
    f = main.resolved_flags()
    if not f["metrics_ref_num"]:
        raise app.UsageError("give --metrics_ref_num N: the reference size (the samples and the floor set are N too)")
    typed = {k: f[k] for k in main.typed_reference_flags()}
    paths = runs.run_paths(f["out_dir"], f["out_name"], f["checkpoint_dir"], f["sample_dir"])
    src = runs.find_generator(paths, f["checkpoint_dir"] if main.FLAGS["checkpoint_dir"].present else None)
    out_dir = commands.output_dir(src, f)
    ref = commands.load_reference_for(src, f, typed, out_dir)
    trained, _ = reference.training_settings(src)
    settings = reference.resolve_settings(trained, f, typed)
    other = reference.load_reference(settings, src.cfg, os.path.join(out_dir, "metrics_cache"), f["metrics_ref"],
                                     len(ref.files), commands.run_dir_of(src), exclude=ref.files,
                                     heldout_names=reference.holdout_names(src))
    assert not set(other.files) & set(ref.files)
    n = len(ref.files)
    seed = commands.metrics_seed(f)
    job = runner.Job(src.generator, src.cfg, ref, seed, f["batch_size"], num_samples=n, num_inception=n)
    real, t_ref = timed(job.real_features)
    gen, t_gen = timed(lambda: job.features(n))
    floor, t_floor = timed(lambda: other.cached("inception", lambda: inception.features(other.pixels, what="floor")))
    count = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    names = runner.parse_names(f"fid{count},kid{count},pr{count}")
    # The generated side is measured exactly as `main.py --metrics` measures it and logged to the same metrics.jsonl
    # (so `python -m checkpoints.ship --metrics_from` can carry it into generator.json); the floor set goes through
    # the same functions with the features of real images in place of the samples.
    measured = runner.measure_job(job, names)
    floors = {"fid": {"fid": fid.fid(floor, real)},
              "kid": kid.kid(floor, real, np.random.default_rng([seed, 1])),
              "pr": runner.precision_recall_vs(floor, real[job.real_subset(n, "pr")])}
    meta = reference.weights_meta(src.weights_dir)
    rows = runner.rows_for(measured, ref, seed, src.step, generator=src.description, source="bench/metrics_shipped.py",
                           **{k: meta[k] for k in ("epoch", "images_seen") if k in meta})
    for row in rows:
        kind = runner.NAME_RE.match(row["metric"]).group(1)
        row["floor"] = dict(floors[kind], real_images=other.description, real_digest=other.digest)
    path = os.path.join(out_dir, runner.METRICS_FILE)
    runner.append_rows(path, rows)
    print(f"\n{src.description}, seed {seed}; reference {ref.description} ({ref.digest}); floor set "
          f"{len(other.files)} other images ({other.digest})")
    print(f"Inception features: samples {t_gen:.0f} s, reference {t_ref:.0f} s, floor set {t_floor:.0f} s "
          "(0 s: read from the cache)\n")
    print("| metric | generated vs reference | real vs reference (floor) | seconds (generated, from features) |\n"
          "| --- | --- | --- | ---: |")
    for row in rows:
        kind = runner.NAME_RE.match(row["metric"]).group(1)
        print(f"| {row['metric']} | {shown(kind, row['results'])} | {shown(kind, row['floor'])} | "
              f"{row['seconds']:.1f} |")
    print(f"\nappended {len(rows)} lines to {path}")


def shown(kind, r):
    if kind == "fid":
        return f"{r['fid']:.2f}"
    if kind == "kid":
        return f"{r['kid']:.4f} ± {r['kid_std']:.4f}"
    return f"precision {r['precision']:.3f}, recall {r['recall']:.3f}"


if __name__ == "__main__":
    app.run(run)
