"""Run folders: where a run lives, what it was trained with, and finding a generator to sample from."""
import dataclasses
import glob
import os

import numpy as np
import tensorflow as tf
from absl import logging

import model
import utils

FLAGS_FILE = "flags.json"
SAMPLE_Z_FILE = "sample_z.npy"
SAMPLE_Y_FILE = "sample_y.npy"  # a conditional run's labels of the fixed-z grids (class numbers, one per z row)
HOLDOUT_FILE = "holdout.txt"  # the training images --holdout kept out of training, one path a line
# The generator shipped in the repository, used when the user has trained nothing yet.
SHIPPED_GENERATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoints", "faces_64")


def default_out_name(dataset, output_height, output_width):
    """A stable folder name, so training and later sampling with the same flags meet in the same folder.

    The original stamped the time into the name, so sampling never found the run it had trained.
    """
    size = str(output_height) if output_height == output_width else f"{output_height}x{output_width}"
    return f"{os.path.basename(os.path.normpath(dataset))}_{size}"


@dataclasses.dataclass
class RunPaths:
    run_dir: str
    checkpoint_dir: str
    sample_dir: str
    log_dir: str

    @property
    def flags_file(self):
        return os.path.join(self.run_dir, FLAGS_FILE)


def run_paths(out_dir, out_name, checkpoint_dir, sample_dir):
    """Paths of one run: checkpoint_dir and sample_dir are relative to the run folder unless absolute."""
    run_dir = os.path.join(out_dir, out_name)
    return RunPaths(run_dir=run_dir,
                    checkpoint_dir=os.path.join(run_dir, checkpoint_dir),
                    sample_dir=os.path.join(run_dir, sample_dir),
                    log_dir=os.path.join(run_dir, "logs"))


def read_run_flags(run_dir):
    path = os.path.join(run_dir, FLAGS_FILE)
    return utils.read_json(path) if os.path.isfile(path) else None


def model_config_from_flags(flags):
    """The ModelConfig recorded in a run's flags.json."""
    return model.ModelConfig.from_dict(flags["model"])


def sample_labels(run_dir, labels, n, chief):
    """The training grids' labels (SAMPLE_Y_FILE, kept for resumes): the classes of the first n images in the
    data's order, as the original's sample_labels = data_y[0:sample_num]."""
    path = os.path.join(run_dir, SAMPLE_Y_FILE)
    if os.path.isfile(path):
        return np.load(path)
    sample_y = np.asarray(labels[:n], np.int64)
    if chief:
        utils.atomic_write(path, lambda f: np.save(f, sample_y))
    return sample_y


@dataclasses.dataclass
class GeneratorSource:
    """A trained generator and where it came from."""
    generator: object
    cfg: model.ModelConfig
    step: int
    description: str
    run_dir: str = None  # set for a training run (it has train_*.png grids and the fixed sample z)
    weights_dir: str = None  # set for a generator.npz/.json folder (e.g. the shipped one)

    def output_dir(self, sample_dir):
        """Where samples and figures go: sample_dir under the run folder for a training run, else as given."""
        return os.path.join(self.run_dir, sample_dir) if self.run_dir else sample_dir

    def run_flags(self):
        """The training run's flags.json (a checkpoint's run, or the run of a snapshots/epoch_N folder), or None
        for a generator without a run folder (e.g. the shipped one)."""
        run_dir = self.run_dir or snapshot_run_dir(self.weights_dir)
        return read_run_flags(run_dir) if run_dir else None


def snapshot_run_dir(weights_dir):
    """The run folder of a per-epoch snapshot (<run>/snapshots/epoch_N), or None for any other weights folder."""
    if not weights_dir:
        return None
    parent = os.path.dirname(os.path.normpath(os.path.abspath(weights_dir)))
    run_dir = os.path.dirname(parent)
    if os.path.basename(parent) == "snapshots" and os.path.isfile(os.path.join(run_dir, FLAGS_FILE)):
        return run_dir
    return None


def is_weights_dir(path):
    return os.path.isfile(os.path.join(path, model.META_FILE)) and os.path.isfile(os.path.join(path, model.WEIGHTS_FILE))


def restore_checkpoint(ckpt, checkpoint_dir, set_aside=False, partial=False):
    """Restore the newest readable checkpoint of checkpoint_dir into ckpt and return its path (None: none there).

    A checkpoint that fails to load (cut off by a crash or a full disk) is skipped with a warning naming it, and
    the previous one is tried; set_aside=True (training) also moves the bad one's files into unreadable/ and
    drops it from the folder's checkpoint list, so the run goes on from the good one and nothing is deleted."""
    state = tf.train.get_checkpoint_state(checkpoint_dir)
    candidates = list(state.all_model_checkpoint_paths) if state else []
    if state and state.model_checkpoint_path and state.model_checkpoint_path not in candidates:
        candidates.append(state.model_checkpoint_path)
    bad = []
    for path in reversed(candidates):
        try:
            status = ckpt.restore(path)
            status.expect_partial() if partial else status.assert_existing_objects_matched()
        except (tf.errors.OpError, ValueError, AssertionError, IndexError, KeyError) as e:  # a cut-off file: IndexError
            reason = (getattr(e, "message", None) or str(e)).strip().splitlines()[0][:200]
            logging.warning("checkpoint %s cannot be read (%s); trying the one before it", path, reason)
            bad.append(path)
            continue
        if bad and set_aside:
            _set_aside(checkpoint_dir, bad)
            good = [p for p in candidates if p not in bad]
            tf.compat.v1.train.update_checkpoint_state(checkpoint_dir, path, all_model_checkpoint_paths=good)
        return path
    if candidates:
        raise ValueError(f"no checkpoint in {checkpoint_dir} can be read ({', '.join(os.path.basename(p) for p in bad)}"
                         "); move the folder aside to start over, or restore it from a backup")
    return None


def _set_aside(checkpoint_dir, paths):
    aside = os.path.join(checkpoint_dir, "unreadable")
    os.makedirs(aside, exist_ok=True)
    for prefix in paths:
        for f in tf.io.gfile.glob(glob.escape(prefix) + ".*"):
            os.replace(f, os.path.join(aside, os.path.basename(f)))
        logging.warning("moved the unreadable checkpoint %s into %s", os.path.basename(prefix), aside)


def load_from_checkpoint(checkpoint_dir, run_dir):
    """Restore only the generator of a training checkpoint (its moving average when the run keeps one); the model
    config comes from run_dir/flags.json."""
    if tf.train.get_checkpoint_state(checkpoint_dir) is None:
        return None
    flags = read_run_flags(run_dir)
    if flags is None or "model" not in flags:
        raise FileNotFoundError(f"found checkpoints in {checkpoint_dir} but no {FLAGS_FILE} with their model "
                                f"settings in {run_dir}")
    cfg = model_config_from_flags(flags)
    generator = model.make_generator(cfg)
    step = tf.Variable(0, dtype=tf.int64)
    # A run that keeps a moving average of its generator is sampled from the average, as its grids and snapshots are.
    kept = {"generator_ema" if flags.get("ema_kimg") else "generator": generator}
    path = restore_checkpoint(tf.train.Checkpoint(**kept, step=step), checkpoint_dir, partial=True)
    if path is None:
        return None
    return GeneratorSource(generator, cfg, int(step.numpy()), f"checkpoint {path} (step {int(step.numpy())})",
                           run_dir=run_dir)


def load_from_weights(weights_dir):
    generator, cfg, meta = model.load_generator_weights(weights_dir)
    step = int(meta.get("step", 0))
    return GeneratorSource(generator, cfg, step, f"generator weights {weights_dir} (step {step})",
                           weights_dir=weights_dir)


def find_generator(paths, checkpoint_dir_given=None, allow_shipped=True, run_named=None):
    """Load the generator for sample/visualize/export modes, trying in order:

    1. --checkpoint_dir when the user gave one that exists as typed (a training checkpoint folder or a
       generator.json/.npz folder such as checkpoints/faces_64);
    2. the run folder's checkpoint (out_dir/out_name/checkpoint), the one `--train` with the same flags wrote;
    3. the shipped generator in checkpoints/faces_64, only when the user named no run (run_named: the flag that
       named one, such as "--dataset=celebA"), so a mistyped name is an error rather than someone else's faces.
    Raises FileNotFoundError listing every place it looked.
    """
    looked = []
    if checkpoint_dir_given:
        if is_weights_dir(checkpoint_dir_given):
            return load_from_weights(checkpoint_dir_given)
        if os.path.isdir(checkpoint_dir_given):
            parent = os.path.dirname(os.path.normpath(checkpoint_dir_given))
            src = load_from_checkpoint(checkpoint_dir_given, parent)
            if src:
                return src
        looked.append(checkpoint_dir_given)
    src = load_from_checkpoint(paths.checkpoint_dir, paths.run_dir) if os.path.isdir(paths.checkpoint_dir) else None
    if src:
        return src
    looked.append(paths.checkpoint_dir)
    if run_named and not checkpoint_dir_given:
        raise FileNotFoundError(
            f"no trained run for {run_named}: {paths.checkpoint_dir} holds no checkpoint. Check the name, train it "
            f"with `python main.py {run_named} --train`, or leave the flag out to use the shipped generator")
    if allow_shipped and not checkpoint_dir_given and is_weights_dir(SHIPPED_GENERATOR):
        src = load_from_weights(SHIPPED_GENERATOR)
        src.description = f"the shipped generator {SHIPPED_GENERATOR} (step {src.step}; no run in {paths.run_dir})"
        return src
    if allow_shipped and not checkpoint_dir_given:
        looked.append(SHIPPED_GENERATOR)
    raise FileNotFoundError(
        "no trained generator found; looked in: " + ", ".join(looked) +
        ". Train one with `python main.py --dataset <name> --train` (the same --dataset/--output_height/--out_dir "
        "flags find it again), or pass --checkpoint_dir <run>/checkpoint")
