"""The metrics commands: --metrics on one generator, --metrics_snapshots over a run's epochs, the training hook."""
import glob
import os

import tensorflow as tf
from absl import logging

import model
import runs
from metrics import plot, reference, runner


def metrics_seed(flags):
    """--seed, else 0: metrics default to one fixed draw of z, so two measurements compare like with like."""
    return flags["seed"] if flags.get("seed") is not None else 0


def run_dir_of(src):
    return src.run_dir or runs.snapshot_run_dir(src.weights_dir)


def output_dir(src, flags):
    """The run folder for a training run or one of its snapshots; otherwise (the shipped generator, an export) the
    sample folder, which git ignores: nothing is ever written next to checkpoints/faces_64."""
    return run_dir_of(src) or src.output_dir(flags["sample_dir"])


def load_reference_for(src, flags, typed, out_dir):
    trained, where = reference.training_settings(src)
    settings = reference.resolve_settings(trained, flags, typed)
    logging.info("reference preprocessing from %s%s", where, f", with {', '.join(typed)} as typed" if typed else "")
    ref = reference.load_reference(settings, src.cfg, os.path.join(out_dir, "metrics_cache"), flags["metrics_ref"],
                                   flags["metrics_ref_num"], run_dir_of(src),
                                   heldout_names=reference.holdout_names(src))
    logging.info("reference: %s (digest %s)", ref.description, ref.digest)
    return ref


def run(src, flags, typed):
    """--metrics: measure src (found as sample mode finds it) and append to metrics.jsonl; typed holds the data and
    crop flags the user typed, which override the training's recorded ones."""
    names = runner.parse_names(flags["metrics"])
    runner.check_ready(names)
    out_dir = output_dir(src, flags)
    ref = load_reference_for(src, flags, typed, out_dir)
    seed = metrics_seed(flags)
    path = os.path.join(out_dir, runner.METRICS_FILE)
    if flags["metrics_snapshots"]:
        rows = run_snapshots(src, flags, names, ref, seed, path)
    else:
        meta = reference.weights_meta(src.weights_dir)
        measured = runner.measure(src.generator, src.cfg, ref, names, seed, flags["batch_size"],
                                  flags.get("metrics_detector", "cnn"))
        rows = runner.rows_for(measured, ref, seed, src.step, generator=src.description, source="offline",
                               **{k: meta[k] for k in ("epoch", "images_seen") if k in meta})
        runner.append_rows(path, rows)
        print(runner.table(rows))
    print(f"appended {len(rows)} lines to {path} (seed {seed}, reference {ref.digest}: {ref.description})")
    if run_dir_of(src):
        plot.write_plot_if_possible(run_dir_of(src))
    return rows


def run_snapshots(src, flags, names, ref, seed, path):
    """Measure every snapshots/epoch_N of the run with the same z and reference, one line per snapshot and metric;
    those already in metrics.jsonl (same metric, snapshot, seed and reference) are skipped, so a stopped sweep
    resumes. Each snapshot's lines are written as soon as it is measured."""
    run_dir = run_dir_of(src)
    if not run_dir:
        raise ValueError(f"--metrics_snapshots measures a training run's snapshots, but {src.description} has no run "
                         "folder; pass --out_name (or --checkpoint_dir <run>/checkpoint) of a run")
    folders = sorted(p for p in glob.glob(os.path.join(glob.escape(run_dir), "snapshots", "epoch_*"))
                     if runs.is_weights_dir(p))
    if not folders:
        raise FileNotFoundError(f"no snapshots in {os.path.join(run_dir, 'snapshots')}: training keeps one per epoch "
                                "with --snapshot_freq 1 (the default)")
    # A detect line counts as done only for the same detector (lines from before the choice existed: HOG's).
    detector = flags.get("metrics_detector", "cnn")
    done = {(r["metric"], r.get("snapshot"), r["seed"], r["reference"],
             r["results"].get("detector", "hog") if r["metric"].startswith("detect") else None)
            for r in runner.read_rows(path)}
    rows = []
    for folder in folders:
        name = os.path.basename(folder)
        todo = [n for n in names if (n[0], name, seed, ref.digest, detector if n[1] == "detect" else None) not in done]
        if not todo:
            logging.info("%s: already measured", name)
            continue
        generator, cfg, meta = model.load_generator_weights(folder)
        if (cfg.output_height, cfg.output_width, cfg.c_dim) != (src.cfg.output_height, src.cfg.output_width,
                                                                src.cfg.c_dim):
            raise ValueError(f"{folder} makes {cfg.output_height}x{cfg.output_width}x{cfg.c_dim} images, the run's "
                             f"reference is {src.cfg.output_height}x{src.cfg.output_width}x{src.cfg.c_dim}")
        logging.info("%s (step %s)", name, meta.get("step"))
        measured = runner.measure(generator, cfg, ref, todo, seed, flags["batch_size"], detector)
        new = runner.rows_for(measured, ref, seed, meta.get("step"), generator=f"snapshot {folder}",
                              source="snapshot", snapshot=name, epoch=meta.get("epoch"),
                              images_seen=meta.get("images_seen"))
        runner.append_rows(path, new)
        print(f"{name} (epoch {meta.get('epoch')}, step {meta.get('step')})\n{runner.table(new)}")
        rows += new
    return rows


def training_hook(flags, generator, cfg, step, writer, final=False):
    """Called by train.py after every checkpoint it saves (final=True after the last one). With --metrics and
    --metrics_freq N it measures at the first checkpoint past each multiple of N, and at the end of training;
    it appends to the run's metrics.jsonl, writes TensorBoard scalars metrics/<name> and redraws metrics.png.
    A failing measurement is logged as an error and training goes on."""
    run_dir = os.path.join(flags["out_dir"], flags["out_name"])
    if not flags.get("metrics") or not flags.get("metrics_freq"):
        if final:  # the losses alone, when nothing is measured
            writer.flush()
            plot.write_plot_if_possible(run_dir, asked=False)
        return None
    path = os.path.join(run_dir, runner.METRICS_FILE)
    measured_steps = {r["step"] for r in runner.read_rows(path) if r.get("source") == "training"}
    last = max([s for s in measured_steps if s < step], default=0)
    freq = flags["metrics_freq"]
    if step in measured_steps or not (final or step // freq > last // freq):
        return None
    seed = metrics_seed(flags)
    try:
        names = runner.parse_names(flags["metrics"])
        settings = reference.resolve_settings(flags, flags, {})
        ref = reference.load_reference(settings, cfg, os.path.join(run_dir, "metrics_cache"), flags.get("metrics_ref"),
                                       flags.get("metrics_ref_num") or 0, run_dir)
        measured = runner.measure(generator, cfg, ref, names, seed, flags["batch_size"],
                                  flags.get("metrics_detector", "cnn"))
    except (OSError, ValueError, ImportError) as e:
        logging.error("metrics at step %d failed (training goes on): %s", step, e)
        return None
    rows = runner.rows_for(measured, ref, seed, step, generator=f"training step {step}", source="training")
    runner.append_rows(path, rows)
    with writer.as_default():
        for r in rows:
            tf.summary.scalar(f"metrics/{r['metric']}", r["value"], step=step)
            if "recall" in r["results"]:
                tf.summary.scalar(f"metrics/{r['metric']}_recall", r["results"]["recall"], step=step)
    writer.flush()
    logging.info("metrics at step %d:\n%s", step, runner.table(rows))
    plot.write_plot_if_possible(run_dir)
    return rows


def plot_command(src):
    """--metrics_plot: redraw <run>/metrics.png from the run's TensorBoard losses and metrics.jsonl."""
    run_dir = run_dir_of(src)
    if not run_dir:
        raise ValueError(f"--metrics_plot draws a training run's losses, but {src.description} has no run folder; "
                         "pass --out_name (or --checkpoint_dir <run>/checkpoint) of a run")
    path = plot.write_plot(run_dir)
    print(f"wrote {path}")
    return path
