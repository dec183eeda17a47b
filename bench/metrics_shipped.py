"""FID, KID and precision/recall of a generator beside their real-vs-real floor: N samples and N other training
images, each against the same N-image reference, so generated and real sets of one size compare like with like.

    python bench/metrics_shipped.py --metrics_ref_num 1000 [main.py's generator and data flags, --seed]

The generator and the reference are found as `main.py --metrics ... --metrics_ref_num N` finds them (the shipped
one and its training set as it was trained, when no run matches), and the reference's features come from the same
cache; the second real set is N other training images drawn the same way. Prints a markdown table with times.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app  # noqa: E402

import main  # noqa: E402  (main.py's flags)
import runs  # noqa: E402
from metrics import commands, fid, inception, kid, pr, reference, runner  # noqa: E402


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
                                     len(ref.files), commands.run_dir_of(src), exclude=ref.files)
    assert not set(other.files) & set(ref.files)
    n = len(ref.files)
    job = runner.Job(src.generator, src.cfg, ref, commands.metrics_seed(f), f["batch_size"], num_samples=n,
                     num_inception=n)
    real, t_ref = timed(job.real_features)
    gen, t_gen = timed(lambda: job.features(n))
    floor, t_floor = timed(lambda: other.cached("inception", lambda: inception.features(other.pixels, what="floor")))
    print(f"\n{src.description}, seed {job.seed}; reference {ref.description} ({ref.digest}); floor set "
          f"{len(other.files)} other images ({other.digest})")
    print(f"Inception features: samples {t_gen:.0f} s, reference {t_ref:.0f} s, floor set {t_floor:.0f} s "
          "(0 s: read from the cache)\n")
    print(f"| metric | generated vs reference | real vs reference (floor) | seconds (generated, from features) |\n"
          "| --- | --- | --- | ---: |")
    for name, fn in [("fid", lambda x: f"{fid.fid(x, real):.2f}"),
                     ("kid", lambda x: "{kid:.4f} ± {kid_std:.4f}".format(**kid.kid(x, real, np.random.default_rng(1)))),
                     ("pr", lambda x: "precision {precision:.3f}, recall {recall:.3f}".format(
                         **pr.precision_recall(x, real)))]:
        shown, seconds = timed(lambda: fn(gen))
        print(f"| {name}{n} | {shown} | {fn(floor)} | {seconds:.1f} |")


if __name__ == "__main__":
    app.run(run)
