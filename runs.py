"""Run folders: where a run lives, what it was trained with, and finding a generator to sample from."""
import dataclasses
import os

import tensorflow as tf
from absl import logging

import model
import utils

FLAGS_FILE = "flags.json"
SAMPLE_Z_FILE = "sample_z.npy"
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
        """The training run's flags.json, or None for a generator without a run folder (e.g. the shipped one)."""
        return read_run_flags(self.run_dir) if self.run_dir else None


def is_weights_dir(path):
    return os.path.isfile(os.path.join(path, model.META_FILE)) and os.path.isfile(os.path.join(path, model.WEIGHTS_FILE))


def load_from_checkpoint(checkpoint_dir, run_dir):
    """Restore only the generator of a training checkpoint; the model config comes from run_dir/flags.json."""
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if latest is None:
        return None
    flags = read_run_flags(run_dir)
    if flags is None or "model" not in flags:
        raise FileNotFoundError(f"found checkpoint {latest} but no {FLAGS_FILE} with its model settings in {run_dir}")
    cfg = model_config_from_flags(flags)
    generator = model.make_generator(cfg)
    step = tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(generator=generator, step=step).restore(latest).expect_partial()
    return GeneratorSource(generator, cfg, int(step.numpy()), f"checkpoint {latest} (step {int(step.numpy())})",
                           run_dir=run_dir)


def load_from_weights(weights_dir):
    generator, cfg, meta = model.load_generator_weights(weights_dir)
    step = int(meta.get("step", 0))
    return GeneratorSource(generator, cfg, step, f"generator weights {weights_dir} (step {step})",
                           weights_dir=weights_dir)


def find_generator(paths, checkpoint_dir_given=None, allow_shipped=True):
    """Load the generator for sample/visualize/export modes, trying in order:

    1. --checkpoint_dir when the user gave one that exists as typed (a training checkpoint folder or a
       generator.json/.npz folder such as checkpoints/faces_64);
    2. the run folder's checkpoint (out_dir/out_name/checkpoint), the one `--train` with the same flags wrote;
    3. the shipped generator in checkpoints/faces_64.
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
    if allow_shipped and not checkpoint_dir_given and is_weights_dir(SHIPPED_GENERATOR):
        logging.warning("no trained run in %s; using the shipped generator %s", paths.checkpoint_dir, SHIPPED_GENERATOR)
        return load_from_weights(SHIPPED_GENERATOR)
    if allow_shipped and not checkpoint_dir_given:
        looked.append(SHIPPED_GENERATOR)
    raise FileNotFoundError(
        "no trained generator found; looked in: " + ", ".join(looked) +
        ". Train one with `python main.py --dataset <name> --train` (the same --dataset/--output_height/--out_dir "
        "flags find it again), or pass --checkpoint_dir <run>/checkpoint")
