"""Command line: parse the original's absl flags and dispatch to train, sample, export or visualize."""
import math
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ INFO and WARNING lines stay out of the console
# Lines TensorFlow's C++ start-up prints whatever TF_CPP_MIN_LOG_LEVEL says (before its logging is set up); none
# matters to a user: the oneDNN notice, and on a machine without an NVIDIA driver the failed CUDA probe.
_STARTUP_NOISE = ("All log messages before absl::InitializeLog() is called", "oneDNN custom operations are on")
_NO_DRIVER = "Could not find cuda drivers on your machine"
_NO_DRIVER_NOISE = ("failed call to cuInit",)


def _import_tensorflow_quietly():
    """Import TensorFlow and probe its devices with stderr captured, then pass on every line but the known
    start-up noise above (all of it when the import fails)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_physical_devices("GPU")
            failed = False
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines(keepends=True)
            no_driver = any(_NO_DRIVER in line for line in lines)
            noise = _STARTUP_NOISE + ((_NO_DRIVER,) + _NO_DRIVER_NOISE if no_driver else ())
            sys.stderr.write("".join(line for line in lines if failed or not any(n in line for n in noise)))
            sys.stderr.flush()


_import_tensorflow_quietly()

from absl import app, flags, logging  # noqa: E402

import generate  # noqa: E402
import metrics  # noqa: E402
import mixed_precision  # noqa: E402
import model  # noqa: E402
import runs  # noqa: E402
import train  # noqa: E402
import tensorflow as tf  # noqa: E402

FLAGS = flags.FLAGS
_ABSL_FLAGS = set(FLAGS)  # absl's own (verbosity, logtostderr, ...), left out of the run's flags.json
# The original DCGAN-tensorflow flags, names and defaults unchanged (dataset: this project's faces, not celebA).
flags.DEFINE_integer("epoch", 25, "Epochs to train [25]")
flags.DEFINE_float("learning_rate", 0.0002, "Learning rate of Adam [0.0002]")
flags.DEFINE_float("beta1", 0.5, "Momentum term (beta1) of Adam [0.5]")
flags.DEFINE_float("train_size", math.inf, "Use at most this many images (a fixed random subset) [inf]")
flags.DEFINE_integer("batch_size", 64, "Images per batch [64]")
flags.DEFINE_integer("input_height", 108, "Height of the center crop taken when --crop [108]")
flags.DEFINE_integer("input_width", None, "Width of the center crop; None = input_height [None]")
flags.DEFINE_integer("output_height", 64, "Height of the generated images [64]")
flags.DEFINE_integer("output_width", None, "Width of the generated images; None = output_height [None]")
flags.DEFINE_string("dataset", "faces", "Name of the image folder under --data_dir [faces]")
flags.DEFINE_string("input_fname_pattern", "*.jpg", "Glob of the images, any letter case; commas for several [*.jpg]")
flags.DEFINE_string("data_dir", "./data", "Folder that holds the dataset folders [./data]")
flags.DEFINE_string("out_dir", "./out", "Root folder of the run folders [./out]")
flags.DEFINE_string("out_name", "", "Run folder under --out_dir; empty = <dataset>_<output size>, the same for "
                    "training and sampling (the original added a timestamp, so sampling lost the run) []")
flags.DEFINE_string("checkpoint_dir", "checkpoint", "Checkpoint folder, under the run folder [checkpoint]; "
                    "sampling also accepts an existing path (a run's checkpoint/ or a generator.npz folder)")
flags.DEFINE_string("sample_dir", "samples", "Sample folder, under the run folder [samples]")
flags.DEFINE_boolean("train", False, "Train (or resume) [False]")
flags.DEFINE_boolean("crop", False, "Center-crop input_height x input_width before resizing [False]")
flags.DEFINE_boolean("visualize", False, "Make the figures from a trained generator [False]")
flags.DEFINE_boolean("export", False, "Export the generator (.keras, SavedModel, generator.npz) [False]")
flags.DEFINE_integer("max_to_keep", 1, "Checkpoints to keep [1]")
flags.DEFINE_integer("sample_freq", 200, "Save a fixed-z sample grid every this many steps (0: never) [200]")
flags.DEFINE_integer("ckpt_freq", 200, "Save a checkpoint every this many steps (0: only at the end) [200]")
flags.DEFINE_integer("z_dim", 100, "Dimensions of z [100]")
flags.DEFINE_enum("z_dist", "uniform_signed", ["uniform_signed", "uniform_unsigned", "normal01"],
                  "Prior of z: U(-1,1), U(0,1) or N(0,1); sampling reuses the trained one [uniform_signed]")
flags.DEFINE_boolean("G_img_sum", False, "Also log generator images to TensorBoard [False]")
# Added by this project.
flags.DEFINE_integer("g_updates", 2, "Generator updates per discriminator update (the original ran 2) [2]")
flags.DEFINE_integer("seed", None, "Seed for data order, z and sampling; None = random, saved with the run [None]")
flags.DEFINE_integer("sample_num", 64, "Faces written by sample mode (any number) [64]")
flags.DEFINE_integer("gf_dim", 64, "Generator filters in the last transposed conv [64]")
flags.DEFINE_integer("df_dim", 64, "Discriminator filters in the first conv [64]")
flags.DEFINE_integer("c_dim", None, "Image channels (1 or 3); None = detect from the images [None]")
# The original's class-conditional DCGAN (its y_dim branch), which it trained on --dataset mnist.
flags.DEFINE_integer("y_dim", None, "Classes of the conditional model, one-hot y joined to z and to G's and D's layers: "
                     "10 (MNIST's digits) or 0 (the unconditional DCGAN); None = 10 for --dataset mnist, else 0 [None]")
flags.DEFINE_integer("gfc_dim", 1024, "Units of the conditional generator's fully connected layer [1024]")
flags.DEFINE_integer("dfc_dim", 1024, "Units of the conditional discriminator's fully connected layer [1024]")
flags.DEFINE_integer("max_steps", 0, "Stop after this many training steps in this invocation, across epochs "
                     "(0: no limit) [0]")
flags.DEFINE_enum("precision", "auto", list(mixed_precision.PRECISIONS),
                  "Training precision: float32 or a Keras mixed policy (tanh, D's logit and the losses stay float32; "
                  "float16 with loss scaling); auto = bfloat16 on CPUs with bf16 units, float16 on CUDA GPUs with "
                  "tensor cores, else float32; a resumed run keeps its own unless given [auto]")
flags.DEFINE_float("ema_kimg", 0.0, "Keep an exponential moving average of the generator with this half-life in "
                   "thousands of images (stylegan2-ada's G_ema; shortened early in training): it draws the grids, "
                   "snapshots, exports and metrics; 0 = none, as the original [0]")
flags.DEFINE_integer("steps_per_loop", 20, "Training steps per compiled loop (one trip to Python per loop) [20]")
flags.DEFINE_integer("log_freq", 10, "Write the losses to TensorBoard every this many steps (0: never) [10]")
flags.DEFINE_integer("hist_freq", 500, "Write D's outputs and z as histograms every this many steps [500]")
flags.DEFINE_integer("snapshot_freq", 1, "Every this many epochs keep the generator (snapshots/epoch_N) and the "
                     "epoch's fixed-z grid (samples/epoch_N.png) (0: never) [1]")
flags.DEFINE_float("holdout", 0.0, "Keep this fraction of the images (seeded) out of training, listed in the run's "
                   "holdout.txt, for the memorisation check [0]")
flags.DEFINE_integer("max_pixels", 40_000_000, "Skip training images with more pixels (decompression bombs) "
                     "[40000000]")
flags.DEFINE_boolean("progress", True, "Show a progress bar while training [True]")
flags.DEFINE_string("export_dir", "", "Where --export writes; empty = <run folder>/export []")
flags.DEFINE_enum("export_dtype", "float32", ["float32", "float16"], "dtype of the exported generator.npz [float32]")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "tf.distribute strategy: default (one device), mirrored (all local GPUs, or --devices), "
                  "multi_worker (the machines TF_CONFIG lists); --batch_size stays the global batch [default]")
flags.DEFINE_string("devices", "", "--strategy mirrored: comma list of devices, e.g. /gpu:0,/gpu:1; naming several "
                    "CPUs (/cpu:0,/cpu:1) splits the CPU into as many replicas []")
flags.DEFINE_boolean("sync_bn", False, "Batch norm over the global batch across replicas (default: each "
                     "replica's own share, as the original's one-GPU graph) [False]")
flags.DEFINE_float("collective_timeout", 300.0, "--strategy multi_worker: seconds a collective may wait for the "
                   "other workers before this one stops with an error (a dead worker) [300]")
# Web (issue 5)
flags.DEFINE_string("export_web", "", "Write the interactive web page with the generator into this folder []")
flags.DEFINE_string("web_figures", "", "Folder with figures.json (from --visualize) whose figures the page shows; "
                    "empty = the run's sample folder when it has figures.json []")
flags.DEFINE_enum("web_dtype", "float16", ["float16", "float32"], "dtype of the page's weights.bin [float16]")
flags.DEFINE_string("web_repo_url", "", "Address of this project's code the page links to; empty = the installed "
                    "package's url (setup.py), else the page links only to the original's code []")
flags.DEFINE_integer("web_epochs", 5, "The page's training movie: the fixed-z grids of this many first epochs "
                     "(samples/epoch_N.png of the run, or epochs/ beside the weights); 0 = none [5]")
flags.DEFINE_boolean("serve", False, "Serve --serve_dir (or the --export_web folder) over HTTP until Ctrl-C [False]")
flags.DEFINE_string("serve_dir", "", "Exported folder --serve serves; empty = the --export_web folder []")
flags.DEFINE_string("serve_host", "127.0.0.1", "Address --serve listens on (0.0.0.0: the whole network) [127.0.0.1]")
flags.DEFINE_integer("serve_port", 8000, "Port --serve listens on (0: any free port) [8000]")
# Visualize (issue 4)
flags.DEFINE_integer("option", None, "--visualize: only the original's visualize option 0-4 (0 samples, 1 per-dim "
                     "grids, 2 small-z GIFs, 3 sweeps from z=0, 4 merged GIF); None = all [None]")
flags.DEFINE_string("figures", "", "--visualize: comma list of options, page, paper, all or figure names "
                    "(average_face, turn_vector...); empty = all, or only --option when given []")
flags.DEFINE_integer("vis_dims", 0, "--visualize: z dimensions options 1-4 go through; 0 = all, as the original [0]")
flags.DEFINE_enum("z_center", "mean", ["mean", "zero"], "--visualize: the 'z = 0' of the average face, walks and "
                  "option 3: the prior's mean (0; 0.5 for uniform_unsigned) or literal zero [mean]")
flags.DEFINE_enum("average_face", "features", ["features", "center"], "--visualize: the average face as G's first "
                  "feature map averaged over draws of z and drawn by the rest of G (StyleGAN's G(w-bar)), or G(z) at "
                  "--z_center [features]")
flags.DEFINE_integer("walk_frames", 64, "--visualize: frames of the random walk [64]")
flags.DEFINE_integer("real_num", 32, "--visualize: real crops (and as many generated faces) in the Turing test [32]")
flags.DEFINE_integer("pool_num", 256, "--visualize: samples measured to pick exemplars for Figs. 7 and 8 [256]")
flags.DEFINE_string("arith_indices", "", "--visualize: exemplars for the vector arithmetic A - B + C as sample "
                    "numbers of pool_sheet.png, 'a,a,a;b,b,b;c,c,c'; empty = smiling - neutral + neutral by "
                    "landmarks []")
flags.DEFINE_integer("nn_num", 8, "--visualize: generated (and held-out real) faces in the memorisation check [8]")
flags.DEFINE_integer("nn_pool", 0, "--visualize: training crops searched for nearest neighbours; 0 = all [0]")
# Metrics (issue 12)
flags.DEFINE_string("metrics", "", "Comma list of metrics named with their sample count: fid10k, kid10k, pr10k, "
                    "detect1k, nn (= nn1k), fid2k...; alone: measure the generator sample mode would use, append to "
                    "metrics.jsonl and print a table; with --train: measure at checkpoints (--metrics_freq) []")
flags.DEFINE_string("metrics_ref", "", "--metrics: folder of real images to compare with; empty = the generator's "
                    "training images as its trainer saw them (its crop and size flags) []")
flags.DEFINE_integer("metrics_ref_num", 0, "--metrics: compare with a seeded subset of at most this many reference "
                     "images (0: all of them) [0]")
flags.DEFINE_enum("metrics_detector", "cnn", ["cnn", "hog"], "--metrics detect: dlib's CNN (mmod) face detector, "
                  "which finds a face in ~98% of real aligned crops, or its HOG one (~90%, 13-20x faster) [cnn]")
flags.DEFINE_integer("metrics_freq", 0, "--train --metrics: measure at the first checkpoint past every this many "
                     "steps, and at the end of training [0]")
flags.DEFINE_boolean("metrics_snapshots", False, "--metrics: measure every per-epoch snapshot of the run "
                     "(snapshots/epoch_N), one line each; those already measured are skipped [False]")
flags.DEFINE_boolean("metrics_plot", False, "Draw the run's losses and FID against step into <run>/metrics.png "
                     "[False]")
_OWN_FLAGS = set(FLAGS) - _ABSL_FLAGS
# The reference's data and crop flags: typed on the command line they override what the generator was trained with.
_REFERENCE_FLAGS = ("data_dir", "dataset", "input_fname_pattern", "input_height", "input_width", "crop", "max_pixels")


def flags_table():
    """The README's flags table, from the flag definitions themselves (tests/test_docs.py keeps them equal)."""
    rows = ["| flag | default | meaning |", "|---|---|---|"]
    for name in sorted(_OWN_FLAGS, key=list(FLAGS).index):
        flag = FLAGS[name]
        default = "None" if flag.default is None else (flag.default_as_str or "").strip("'") or '""'
        if isinstance(flag.default, bool):
            default = str(flag.default)
        text = flag.help.rsplit(" [", 1)[0] if flag.help.endswith("]") else flag.help
        if hasattr(flag.parser, "enum_values"):
            text = text.split(">: ", 1)[-1]  # absl puts <a|b|c>: in front of an enum's help
            text += f" ({', '.join(flag.parser.enum_values)})"
        text = text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        rows.append(f"| `--{name}` | `{default}` | {text} |")
    return "\n".join(rows)


def resolved_flags():
    """The flags as one plain dict, with the original's None-means-same-as defaults filled in."""
    f = {name: FLAGS[name].value for name in FLAGS if name in _OWN_FLAGS}
    f["input_width"] = f["input_width"] or f["input_height"]
    mnist_defaults(f)
    f["output_width"] = f["output_width"] or f["output_height"]
    f["train_size"] = None if math.isinf(f["train_size"]) else int(f["train_size"])
    f["out_name"] = f["out_name"] or runs.default_out_name(f["dataset"], f["output_height"], f["output_width"])
    f["data_dir"], f["out_dir"] = os.path.expanduser(f["data_dir"]), os.path.expanduser(f["out_dir"])
    f["no_progress"] = not f.pop("progress")
    f["precision_given"] = FLAGS["precision"].present
    if not 0 <= f["holdout"] < 1:
        raise ValueError(f"--holdout must be a fraction in [0, 1), got {f['holdout']}")
    for name in ("steps_per_loop", "batch_size", "epoch"):
        if f[name] < 1:
            raise ValueError(f"--{name} must be at least 1, got {f[name]}")
    check_metrics_flags(f)
    return f


def check_metrics_flags(f):
    """Refuse bad --metrics* flags (and a missing metrics extra) before any training or sampling starts."""
    for name in ("metrics_ref_num", "metrics_freq"):
        if f[name] < 0:
            raise ValueError(f"--{name} must be at least 0, got {f[name]}")
    if f["metrics_snapshots"] and not f["metrics"]:
        raise ValueError("--metrics_snapshots needs --metrics, e.g. --metrics fid2k --metrics_snapshots")
    if f["metrics"]:
        metrics.check_ready(metrics.parse_names(f["metrics"]))
        if f["train"] and not f["metrics_freq"]:
            raise ValueError("--train --metrics measures during training: add --metrics_freq N (steps)")


def typed_reference_flags():
    """The data and crop flags given on the command line (a typed --input_height brings its --input_width)."""
    typed = {name for name in _REFERENCE_FLAGS if FLAGS[name].present}
    if "input_height" in typed:
        typed.add("input_width")
    return typed


def mnist_defaults(f):
    """--dataset mnist as the original trained it: 28x28 single-channel digits, y_dim 10 (--y_dim 0: unconditional);
    its README passed --input_height=28 --output_height=28, which are the defaults here. y_dim needs MNIST's labels."""
    if f["dataset"] != "mnist":
        if f["y_dim"]:
            raise ValueError(f"--y_dim={f['y_dim']} trains a class-conditional model, which needs labels: only "
                             "--dataset mnist has them (image folders train the unconditional DCGAN)")
        f["y_dim"] = 0
        return
    for name in ("input_height", "input_width", "output_height", "output_width"):
        if not FLAGS[name].present:
            f[name] = 28
        elif f[name] != 28:
            raise ValueError(f"--{name}={f[name]}: MNIST's digits are 28x28, so --dataset mnist trains at 28 "
                             "(leave the size flags out, or give --input_height=28 --output_height=28 as the original)")
    if f["c_dim"] not in (None, 1):
        raise ValueError(f"--c_dim={f['c_dim']}: MNIST's digits have one channel (leave --c_dim out)")
    f["c_dim"] = 1
    f["y_dim"] = 10 if f["y_dim"] is None else f["y_dim"]
    if f["y_dim"] not in (0, 10):
        raise ValueError(f"--y_dim={f['y_dim']}: MNIST has 10 classes, so --y_dim is 10 (conditional, the default) "
                         "or 0 (the unconditional DCGAN on MNIST)")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.INFO)
        tf.get_logger().setLevel("WARNING")  # TF's own INFO lines (checkpoint sharding, SavedModel assets)
    try:
        f = resolved_flags()
        model.check_output_size(f["output_height"], f["output_width"])
        paths = runs.run_paths(f["out_dir"], f["out_name"], f["checkpoint_dir"], f["sample_dir"])
        if f["train"]:
            result = train.train(f)
            logging.info("run folder: %s", result["run_dir"])
        metrics_mode = bool(f["metrics"]) and not f["train"]  # with --train they are measured while training
        uses_generator = f["export"] or f["visualize"] or f["export_web"] or metrics_mode or f["metrics_plot"]
        sample_mode = not (f["train"] or uses_generator or f["serve"])  # no mode flag at all: sample faces
        if uses_generator or sample_mode:
            explicit = f["checkpoint_dir"] if FLAGS["checkpoint_dir"].present else None
            named = " ".join(f"--{n}={FLAGS[n].value}" for n in ("dataset", "out_name") if FLAGS[n].present)
            src = runs.find_generator(paths, explicit, run_named=named or None)
            logging.info("generator: %s", src.description)
            if f["export"]:
                generate.export(src, f["export_dir"] or os.path.join(src.run_dir or f["out_dir"], "export"),
                                f["export_dtype"])
            if f["visualize"]:
                import figures  # only this mode needs dlib and the video writers
                figures.run(src, f)
            if f["export_web"]:
                from web import export as webexport
                webexport.export_from_flags(src, f)
            if metrics_mode:
                metrics.run(src, f, {k: f[k] for k in typed_reference_flags()})
            if f["metrics_plot"]:
                metrics.plot_command(src)
            if sample_mode:
                sample_dir = src.output_dir(f["sample_dir"])
                out = generate.sample(src, sample_dir, f["sample_num"], f["seed"], f["batch_size"])
                print(f"wrote {out['grid']} and {out['num_faces']} images in {out['faces_dir']}")
        if f["serve"]:
            from web import serve as webserve
            webserve.serve(f["serve_dir"] or f["export_web"], f["serve_host"], f["serve_port"])
    except (OSError, ValueError, train.NonFiniteLossError, train.CheckpointSaveError, train.WorkerLostError,
            metrics.MissingExtraError) as e:
        # A user's mistake or the machine's state (a missing folder, a full disk): the message, not a traceback.
        logging.error("%s", e if not isinstance(e, OSError) or not e.filename else f"{e.strerror}: {e.filename}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


def run():
    """Entry point of `python main.py` and the installed `neuralface` command."""
    if any(a in ("-h", "--help", "-?", "--helpshort") for a in sys.argv[1:]):
        # absl prints only the main module's flags, which an installed entry point has none of, and exits 1.
        print(f"usage: {os.path.basename(sys.argv[0])} [flags]\n\n{FLAGS.module_help(sys.modules[__name__])}")
        sys.exit(0)
    app.run(main)

if __name__ == "__main__":
    run()
