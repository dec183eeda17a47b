"""Run named metrics (fid10k, kid10k, pr10k, detect1k, nn) on a generator against a reference; log and print them."""
import dataclasses
import datetime
import json
import os
import re
import time

import numpy as np
from absl import logging

import model
import utils
from metrics import detect, fid, inception, kid, nn, pr
from metrics.reference import Reference

KINDS = ("fid", "kid", "pr", "detect", "nn")
INCEPTION_KINDS = ("fid", "kid", "pr")
DEFAULT_COUNT = {"nn": 1000}  # a bare "nn" means nn1k
METRICS_FILE = "metrics.jsonl"
NAME_RE = re.compile(r"^(fid|kid|pr|detect|nn)(?:(\d+)(k?))?$")


def parse_names(text):
    """'fid10k,kid10k,nn' -> [("fid10k", "fid", 10000), ("kid10k", "kid", 10000), ("nn", "nn", 1000)]."""
    out = []
    for name in [x.strip() for x in (text or "").split(",") if x.strip()]:
        m = NAME_RE.match(name)
        if not m or (m.group(2) is None and m.group(1) not in DEFAULT_COUNT):
            raise ValueError(f"--metrics: unknown metric {name!r}; use {', '.join(KINDS)} with a sample count, "
                             "e.g. fid10k, kid10k, pr10k, detect1k, fid2k, nn (= nn1k), fid500")
        count = DEFAULT_COUNT[m.group(1)] if m.group(2) is None else int(m.group(2)) * (1000 if m.group(3) else 1)
        least = {"pr": pr.K + 1, "kid": 4}.get(m.group(1), 2)
        if count < least:
            raise ValueError(f"--metrics: {name} measures {count} samples; {m.group(1)} needs at least {least}")
        if name not in [n for n, _, _ in out]:
            out.append((name, m.group(1), count))
    return out


def check_ready(names):
    """Fail before any work when a requested metric needs the metrics extra and it is missing."""
    if any(kind in INCEPTION_KINDS for _, kind, _ in names):
        inception.check_available()


@dataclasses.dataclass
class Job:
    """One generator measured against one reference; generated images and their features are made once."""
    generator: object
    cfg: model.ModelConfig
    reference: Reference
    seed: int
    batch_size: int = 64
    num_samples: int = 0  # the most any requested metric needs
    num_inception: int = 0  # the most any Inception metric needs (their features are computed once)
    detector: str = "cnn"  # detect's face detector (--metrics_detector)
    _samples: np.ndarray = None
    _features: np.ndarray = None
    _real_features: np.ndarray = None

    def samples(self, n):
        """uint8 (n, H, W, c_dim) generated images: the first n of one seeded draw of z."""
        if self._samples is None:
            z = model.sample_z(self.cfg.z_dist, self.num_samples, self.cfg.z_dim, np.random.default_rng(self.seed))
            # A class-conditional generator draws sample i as class i % y_dim, as sample mode does: balanced classes.
            y = np.eye(self.cfg.y_dim, dtype=np.float32)[np.arange(self.num_samples) % self.cfg.y_dim] \
                if self.cfg.y_dim else None
            images = model.generate_images(self.generator, z, self.batch_size, y=y)
            self._samples = np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
        return self._samples[:n]

    def features(self, n):
        if self._features is None or len(self._features) < n:
            self._features = inception.features(self.samples(self.num_inception), what="generated images")
        return self._features[:n]

    def real_features(self):
        """Inception features of every reference image, computed once per reference digest (kept on disk)."""
        if self._real_features is None:
            ref = self.reference
            self._real_features = ref.cached("inception", lambda: inception.features(ref.pixels, what="reference"))
        return self._real_features

    def real_subset(self, n, purpose):
        """Indices of a seeded subset of n reference images, the same for every --seed (so it can be cached)."""
        rng = np.random.default_rng([0, sum(map(ord, purpose))])
        return np.sort(rng.permutation(len(self.reference.pixels))[:n])


def measure_fid(job, n):
    return {"fid": fid.fid(job.features(n), job.real_features())}


def measure_kid(job, n):
    return kid.kid(job.features(n), job.real_features(), np.random.default_rng([job.seed, 1]))


def measure_pr(job, n):
    real = job.real_features()
    return precision_recall_vs(job.features(n), real[job.real_subset(n, "pr")])


def precision_recall_vs(gen, real):
    out = pr.precision_recall(gen, real)
    out["features"] = "Inception pool3"
    out["real_count"] = len(real)
    return out


class Skipped(Exception):
    """A metric that does not apply to this generator; str(e) is the reason recorded."""


def measure_detect(job, n):
    if job.cfg.y_dim:
        raise Skipped(f"detect counts faces; this generator is class-conditional (y_dim {job.cfg.y_dim}, the "
                      "original's MNIST model) and draws digits")
    ref = job.reference
    index = job.real_subset(n, "detect")
    real_found = ref.cached(f"detect_{job.detector}{len(index)}",
                            lambda: detect.faces_found(ref.pixels[index], job.detector))
    found = detect.faces_found(job.samples(n), job.detector)
    return {"rate": float(found.mean()), "real_rate": float(real_found.mean()), "real_count": len(index),
            "detector": job.detector}


def measure_nn(job, n):
    ref = job.reference
    if ref.heldout_pixels is not None and len(ref.heldout_pixels) >= 2:
        rng = np.random.default_rng([0, 4])
        held = ref.heldout_pixels[np.sort(rng.permutation(len(ref.heldout_pixels))[:n])]
        out = nn.memorisation(job.samples(n), held, ref.pixels)
        out["heldout_source"] = "the run's holdout.txt (never trained on)"
    else:
        # No holdout: a seeded slice of the reference stands in; it was trained on, but is left out of the search.
        sliced = job.real_subset(min(n, len(ref.pixels) // 2), "nn")
        pool = np.setdiff1d(np.arange(len(ref.pixels)), sliced)
        out = nn.memorisation(job.samples(n), ref.pixels[sliced], ref.pixels, pool)
        out["heldout_source"] = "a seeded slice of the reference, left out of the search (it was trained on)"
    return out


MEASURES = {"fid": (measure_fid, "fid"), "kid": (measure_kid, "kid"), "pr": (measure_pr, "precision"),
            "detect": (measure_detect, "rate"), "nn": (measure_nn, "ratio")}


def measure(generator, cfg, reference, names, seed, batch_size=64, detector="cnn"):
    """[(name, kind, count, value, results dict, seconds)] for every parsed metric name."""
    if detector not in detect.DETECTORS:
        raise ValueError(f"--metrics_detector must be one of {', '.join(detect.DETECTORS)}, got {detector!r}")
    job = Job(generator, cfg, reference, seed, batch_size, num_samples=max(c for _, _, c in names),
              num_inception=max([c for _, k, c in names if k in INCEPTION_KINDS], default=0), detector=detector)
    return measure_job(job, names)


def measure_job(job, names):
    """measure() on a Job made already (its samples and features are shared with whoever made it)."""
    out = []
    for name, kind, count in names:
        start = time.perf_counter()
        fn, headline = MEASURES[kind]
        try:
            results = fn(job, count)
        except Skipped as e:
            logging.warning("%s skipped: %s", name, e)
            continue
        seconds = time.perf_counter() - start
        logging.info("%s = %.6g (%.1f s)", name, results[headline], seconds)
        out.append((name, kind, count, results[headline], results, seconds))
    return out


def rows_for(measured, reference, seed, step, **fields):
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return [{"metric": name, "value": value, "results": results, "step": step, "num_samples": count,
             "num_reference": len(reference.pixels), "seed": seed, "reference": reference.digest,
             "reference_images": reference.description, "seconds": round(seconds, 2), "time": now, **fields}
            for name, kind, count, value, results, seconds in measured]


def append_rows(path, rows):
    """Append JSON lines to path atomically (the old content plus the new lines replace the file in one rename)."""
    old = b""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            old = f.read()
    if old and not old.endswith(b"\n"):
        old += b"\n"
    new = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()
    utils.atomic_write(path, lambda f: f.write(old + new))


def read_rows(path):
    """The rows of a metrics.jsonl (a damaged line is skipped with a warning, never the whole file)."""
    rows = []
    if not os.path.isfile(path):
        return rows
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    logging.warning("%s line %d is not JSON; ignored", path, number)
    return rows


def describe(kind, r):
    """The details column of the table."""
    if kind == "kid":
        return f"std {r['kid_std']:.5f} over {r['subsets']} subsets of {r['subset_size']}"
    if kind == "pr":
        return f"precision {r['precision']:.3f} recall {r['recall']:.3f} (k={r['k']}, {r['features']}, " \
               f"{r['real_count']} real)"
    if kind == "detect":
        return (f"faces found in {r['rate']:.1%} of samples, {r['real_rate']:.1%} of {r['real_count']} real crops "
                f"({r.get('detector', 'hog')})")
    if kind == "nn":
        return (f"nearest training crop {r['sample_nn_mean']:.4f} (samples) / {r['heldout_nn_mean']:.4f} "
                f"(held-out) over {r['searched']}; near-duplicates {r['dup_rate']:.1%} of samples, "
                f"{r['real_dup_rate']:.1%} of held-out (RMS < {r['dup_threshold']})")
    return ""


def table(rows):
    lines = [f"{'metric':<12}{'value':>12}  {'samples':>8}{'seconds':>9}  details"]
    for r in rows:
        kind = NAME_RE.match(r["metric"]).group(1)
        lines.append(f"{r['metric']:<12}{r['value']:>12.5g}  {r['num_samples']:>8}{r['seconds']:>9.1f}  "
                     f"{describe(kind, r['results'])}")
    return "\n".join(lines)
