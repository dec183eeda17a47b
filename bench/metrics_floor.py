"""The real-vs-real floor of FID, KID and precision/recall: a second, disjoint set of training images measured
against the same reference --metrics uses, so generated and real sets of one size compare like with like.

    python bench/metrics_floor.py --metrics_ref_num 1000 [main.py's generator and data flags]

The generator is found as --metrics finds it (only its size and recorded training flags matter here); the
reference is the seeded --metrics_ref_num subset that `main.py --metrics ... --metrics_ref_num N` compares with
(its features come from the same cache), the second set N other images drawn the same way.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app  # noqa: E402

import main  # noqa: E402  (main.py's flags)
import runs  # noqa: E402
from metrics import commands, fid, inception, kid, pr, reference  # noqa: E402


def run(argv):
    f = main.resolved_flags()
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
    start = time.perf_counter()
    a = ref.cached("inception", lambda: inception.features(ref.pixels, what="reference"))
    b = other.cached("inception", lambda: inception.features(other.pixels, what="second real set"))
    t_features = time.perf_counter() - start
    rows = []
    for name, fn in [("fid", lambda: {"fid": fid.fid(b, a)}),
                     ("kid", lambda: kid.kid(b, a, np.random.default_rng([0, 1]))),
                     ("pr", lambda: pr.precision_recall(b, a))]:
        start = time.perf_counter()
        rows.append((name, fn(), time.perf_counter() - start))
    print(f"real vs real: {len(other.files)} images ({other.digest}) against the reference {ref.description} "
          f"({ref.digest}); features {t_features:.0f} s (cached ones are read)")
    print("| metric | real vs real | seconds |\n| --- | --- | ---: |")
    for name, out, seconds in rows:
        shown = ", ".join(f"{k} {v:.5g}" for k, v in out.items() if isinstance(v, float))
        print(f"| {name}{len(other.files)} | {shown} | {seconds:.1f} |")


if __name__ == "__main__":
    app.run(run)
