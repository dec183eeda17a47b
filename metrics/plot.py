"""metrics.png: a run's losses (from its TensorBoard logs) and FID (from metrics.jsonl) against training step."""
import glob
import os

import numpy as np
import tensorflow as tf
from absl import logging

import model
import utils
from metrics import runner

PLOT_FILE = "metrics.png"


def read_scalars(log_dir, tags):
    """{tag: [(step, value)] sorted by step} from the TensorBoard event files in log_dir (the last write of a
    step wins, as when a resumed run logs a step again)."""
    found = {tag: {} for tag in tags}
    for path in sorted(glob.glob(os.path.join(glob.escape(log_dir), "events.out.tfevents.*"))):
        try:
            for record in tf.data.TFRecordDataset(path):
                event = tf.compat.v1.Event.FromString(record.numpy())
                for v in event.summary.value:
                    if v.tag in found:
                        value = v.simple_value if v.HasField("simple_value") else float(tf.make_ndarray(v.tensor))
                        found[v.tag][event.step] = value
        except tf.errors.DataLossError:  # a file still being written ends mid-record: keep what was read
            logging.warning("%s ends in a partial record; plotted up to it", path)
    return {tag: sorted(points.items()) for tag, points in found.items() if points}


def fid_series(rows):
    """{metric name: [(step, value)]} of the FID rows of metrics.jsonl, the last measurement of a step winning."""
    series = {}
    for r in rows:
        if r["metric"].startswith("fid") and r.get("step") is not None:
            series.setdefault(r["metric"], {})[r["step"]] = r["value"]
    return {name: sorted(points.items()) for name, points in series.items()}


def write_plot(run_dir):
    """Draw metrics.png in run_dir: losses on top, FID below, against step; returns its path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = read_scalars(os.path.join(run_dir, "logs"), model.LOSS_NAMES)
    fids = fid_series(runner.read_rows(os.path.join(run_dir, runner.METRICS_FILE)))
    if not losses and not fids:
        raise FileNotFoundError(f"nothing to plot in {run_dir}: no losses in logs/ and no FID in {runner.METRICS_FILE}")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    for tag, points in losses.items():
        steps, values = map(np.asarray, zip(*points))
        if tag not in ("d_loss", "g_loss"):
            top.plot(steps, values, label=tag, linewidth=0.6, alpha=0.6)
            continue
        line, = top.plot(steps, values, linewidth=0.6, alpha=0.35)
        width = max(1, len(values) // 50)  # a running mean over 2% of the points shows the trend through the noise
        smooth = np.convolve(values, np.ones(width) / width, mode="valid")
        top.plot(steps[width - 1:], smooth, color=line.get_color(), linewidth=1.6, label=f"{tag} (running mean)")
    top.set_ylabel("loss")
    top.set_title(f"{os.path.basename(os.path.normpath(run_dir))}: losses and FID against step")
    if losses:
        top.legend(fontsize=8)
    for name, points in fids.items():
        steps, values = zip(*points)
        bottom.plot(steps, values, marker="o", label=name)
    bottom.set_ylabel("FID (lower is better)")
    bottom.set_xlabel("step")
    if fids:
        bottom.legend(fontsize=8)
    else:
        bottom.text(0.5, 0.5, "no FID measured yet (--metrics fid2k --metrics_freq N)", ha="center",
                    transform=bottom.transAxes)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = os.path.join(run_dir, PLOT_FILE)
    with utils.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def write_plot_if_possible(run_dir, asked=True):
    """write_plot, logging instead of failing when matplotlib is missing or there is nothing to draw yet (the plot
    is a by-product of measuring and of the end of training); asked=False: a missing matplotlib is only noted."""
    try:
        logging.info("plot: %s", write_plot(run_dir))
    except ImportError:
        (logging.warning if asked else logging.info)(
            "matplotlib is missing, so %s was not drawn: pip install -e \".[metrics]\"", PLOT_FILE)
    except FileNotFoundError as e:
        logging.info("%s not drawn: %s", PLOT_FILE, e)
