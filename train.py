"""The training loop: run folder, checkpoints and exact resume, fixed-z sample grids, snapshots, TensorBoard logs."""
import glob
import hashlib
import logging as pylogging
import os
import shutil
import signal
import tempfile
import threading
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from tqdm import tqdm

import dataset
import distribute
import metrics
import mixed_precision
import model
import runs
import utils

# What a collective op raises on the workers that are left when one dies or stops answering.
_WORKER_LOST = (tf.errors.DeadlineExceededError, tf.errors.UnavailableError, tf.errors.CancelledError,
                tf.errors.AbortedError)


class NonFiniteLossError(RuntimeError):
    pass


class CheckpointSaveError(RuntimeError):
    pass


class WorkerLostError(RuntimeError):
    pass


def _save(manager, number, keep=True):
    """manager.save, turning a failed write (a full disk) into one clear error: TensorFlow's half-written
    ckpt-N_temp folder goes, the earlier checkpoints stay, and rerunning the command resumes from the latest.
    keep=False (a worker other than the chief, which saves too, as TensorFlow's multi-worker saving expects,
    but into its scratch folder) deletes what it wrote."""
    try:
        path = manager.save(checkpoint_number=number)
        if not keep:
            shutil.rmtree(manager.directory, ignore_errors=True)
        return path
    except (OSError, tf.errors.OpError) as e:
        for temp in tf.io.gfile.glob(os.path.join(glob.escape(manager.directory), f"ckpt-{number}_temp*")):
            tf.io.gfile.rmtree(temp) if tf.io.gfile.isdir(temp) else tf.io.gfile.remove(temp)
        for part in tf.io.gfile.glob(os.path.join(glob.escape(manager.directory), f"ckpt-{number}.*")):
            tf.io.gfile.remove(part)  # a checkpoint that did not finish is no checkpoint
        reason = (getattr(e, "message", None) or str(e)).strip().splitlines()[0][:200]
        raise CheckpointSaveError(
            f"could not write checkpoint {number} into {manager.directory} ({reason}); the earlier checkpoints are "
            f"kept (latest: {manager.latest_checkpoint}). Free disk space and run the same command to resume.") from None


def _log_to_file(run_dir):
    """Mirror absl logging into run_dir/log.txt so the run folder keeps its own history."""
    handler = pylogging.FileHandler(os.path.join(run_dir, "log.txt"))
    handler.setFormatter(pylogging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    pylogging.getLogger("absl").addHandler(handler)
    return handler


def _check_resume(previous, cfg, paths):
    """Refuse to resume a run folder whose networks differ from the ones these flags build."""
    before = model.ModelConfig.from_dict(previous["model"]).to_dict()  # keys an older version did not write: defaults
    changed = {k: (before.get(k), v) for k, v in cfg.to_dict().items() if before.get(k) != v}
    if changed:
        raise ValueError(
            f"{paths.run_dir} holds a run trained with other model settings: "
            + ", ".join(f"{k}={a} (now {b})" for k, (a, b) in changed.items())
            + "; pass the same flags to resume it, or --out_name <new name> to start a new run")


def _check_ema(previous, flags, paths):
    """A run keeps a moving average of its generator from its first step or never: its checkpoints hold one or do
    not, so switching it on or off would leave a checkpoint that does not match (the half-life may change)."""
    before = previous.get("ema_kimg") or 0.0
    if bool(before) != bool(flags["ema_kimg"]):
        hint = f"--ema_kimg {before:g}" if before else "--ema_kimg 0"
        raise ValueError(f"{paths.run_dir} was trained {'with' if before else 'without'} a moving average of its "
                         f"generator; resume it with {hint}, or --out_name <new name> to start a new run")


def _choose_precision(flags, previous):
    """The resolved precision: --precision when given, else the run's own when resuming, else auto's choice.
    float16's loss scale lives in the checkpoint, so a run cannot move between float16 and the others."""
    asked = flags["precision"]
    if previous is not None and "precision" in previous and not flags.get("precision_given"):
        return previous["precision"]
    chosen = mixed_precision.resolve_precision(asked)
    if previous is not None and "precision" in previous and \
            (chosen == "mixed_float16") != (previous["precision"] == "mixed_float16"):
        raise ValueError(f"{previous['out_name']} was trained with --precision {previous['precision']}; float16's "
                         "loss scale is part of its checkpoints, so resume it with that precision")
    return chosen


def _files_digest(files):
    return hashlib.sha256("\n".join(files).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def train(flags):
    """Train (or resume) a DCGAN as configured by `flags`, a dict of the resolved command-line flags."""
    cluster = distribute.make_cluster(flags["strategy"], flags["devices"], flags["collective_timeout"])
    paths = runs.run_paths(flags["out_dir"], flags["out_name"], flags["checkpoint_dir"], flags["sample_dir"])
    handler = scratch = None
    if cluster.is_chief:
        for d in (paths.run_dir, paths.checkpoint_dir, paths.sample_dir, paths.log_dir):
            os.makedirs(d, exist_ok=True)
        handler = _log_to_file(paths.run_dir)
    else:  # the chief alone writes the run folder; this worker's own files go to a scratch folder
        scratch = tempfile.mkdtemp(prefix=f"neuralface-worker{cluster.worker}-")
    try:
        return _train(flags, paths, cluster, scratch)
    except _WORKER_LOST as e:
        if cluster.num_workers == 1:
            raise
        reason = (getattr(e, "message", None) or str(e)).strip().splitlines()[0][:200]
        raise WorkerLostError(
            f"worker {cluster.worker} of {cluster.num_workers}: another worker stopped answering ({reason}). "
            "Run the same commands on every worker again to resume from the last checkpoint.") from None
    finally:
        if handler:
            pylogging.getLogger("absl").removeHandler(handler)
            handler.close()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _load_data(flags, paths, seed, scratch):
    """The decoded training set (each file's fate decided once), and the indices of the images trained on."""
    if flags["dataset"] == dataset.MNIST:  # the four idx files and their labels, as the original's load_mnist
        data = dataset.prepare_mnist(os.path.join(flags["data_dir"], flags["dataset"]))
    else:
        all_files = dataset.list_images(flags["data_dir"], flags["dataset"], flags["input_fname_pattern"])
        load = dict(input_height=flags["input_height"], input_width=flags["input_width"],
                    output_height=flags["output_height"], output_width=flags["output_width"], crop=flags["crop"])
        data = dataset.prepare_images(all_files, load, os.path.join(scratch or paths.run_dir, "cache"),
                                      flags["max_pixels"])
    if data.skipped:
        for path, reason in data.skipped[:50]:
            logging.warning("skipping %s: %s", path, reason)
        if len(data.skipped) > 50:
            logging.warning("skipped %d more files (all are listed in skipped_files.txt)", len(data.skipped) - 50)
    if not scratch:
        utils.atomic_write(os.path.join(paths.run_dir, "skipped_files.txt"),
                           lambda f: f.write("".join(f"{p}\t{r}\n" for p, r in data.skipped).encode(
                               "utf-8", "surrogateescape")))
    index = np.arange(len(data.files))
    if flags["holdout"]:
        # A fixed, seeded slice never trained on: the real side of the memorisation check (metrics nn).
        count = round(flags["holdout"] * len(index))
        held = np.sort(np.random.default_rng([seed, 3]).permutation(len(index))[:count])
        if not scratch:
            utils.atomic_write(os.path.join(paths.run_dir, runs.HOLDOUT_FILE), lambda f: f.write(
                "".join(data.files[i] + "\n" for i in held).encode("utf-8", "surrogateescape")))
        index = np.setdiff1d(index, held)
    if flags["train_size"] and flags["train_size"] < len(index):
        # A fixed subset (seeded), so every epoch trains on the same train_size images.
        index = index[np.sort(np.random.default_rng(seed).permutation(len(index))[:flags["train_size"]])]
    return data, index


def _agree(cluster, value):
    """The chief's value of an int64, on every worker (a collective: each worker must call it)."""
    def mine():  # the chief's first replica contributes the value, every other replica zero
        first = tf.distribute.get_replica_context().replica_id_in_sync_group == 0
        return tf.where(first, tf.constant(value, tf.int64), tf.constant(0, tf.int64))
    return int(cluster.strategy.reduce(tf.distribute.ReduceOp.SUM, cluster.strategy.run(mine), axis=None))


def _train(flags, paths, cluster, scratch):
    chief = cluster.is_chief
    previous = runs.read_run_flags(paths.run_dir)
    if previous is not None:  # resuming: keep the seed, so the data order and z continue where they stopped
        seed = previous["seed"]
    elif flags["seed"] is not None:
        seed = flags["seed"]
    else:
        seed = int(np.random.SeedSequence().entropy % (2 ** 31))
    if cluster.num_workers > 1:
        seed = _agree(cluster, seed)  # a new run's random seed is the chief's
    batch_size = flags["batch_size"]
    distribute.check_batch(batch_size, cluster.replicas)
    data, index = _load_data(flags, paths, seed, scratch)
    files = [data.files[i] for i in index]
    if len(files) < batch_size:
        raise ValueError(f"only {len(files)} usable images in {os.path.join(flags['data_dir'], flags['dataset'])} "
                         f"({len(data.skipped)} skipped), fewer than one batch of --batch_size={batch_size}; "
                         "add images or lower --batch_size")
    c_dim = flags["c_dim"] or data.channels()
    pixels = data.pixels if len(index) == len(data.files) else data.pixels[index]
    labels = None if data.labels is None or not flags["y_dim"] else data.labels[index]
    cfg = model.ModelConfig(output_height=flags["output_height"], output_width=flags["output_width"], c_dim=c_dim,
                            z_dim=flags["z_dim"], z_dist=flags["z_dist"], gf_dim=flags["gf_dim"],
                            df_dim=flags["df_dim"], y_dim=flags["y_dim"], gfc_dim=flags["gfc_dim"],
                            dfc_dim=flags["dfc_dim"])
    if cfg.y_dim and labels is None:
        raise ValueError(f"--y_dim={cfg.y_dim} trains a class-conditional model, which needs labels: only "
                         f"--dataset {dataset.MNIST} has them (use --y_dim 0 for an image folder)")
    precision = _choose_precision(flags, previous)
    if precision == "mixed_float16" and not tf.config.list_logical_devices("GPU"):
        logging.warning("--precision mixed_float16 on a CPU runs ~40x slower than float32 (CPUs have no float16 "
                        "matrix units; measured in BENCHMARKS.md): use it on a GPU, or --precision auto here")
    digest = _files_digest(files)
    if previous is not None:
        _check_resume(previous, cfg, paths)
        _check_ema(previous, flags, paths)
        if previous.get("files_digest") != digest:
            logging.warning("the image list differs from the one this run last trained on; "
                            "batches from here on follow the new list")
    batches_per_epoch = len(files) // batch_size
    if chief:
        utils.write_json(paths.flags_file, {**{k: v for k, v in flags.items() if k != "precision_given"},
                                            "seed": seed, "model": cfg.to_dict(), "precision": precision,
                                            "precision_flag": flags["precision"], "files_digest": digest,
                                            "num_images": len(files), "num_skipped": len(data.skipped),
                                            "batches_per_epoch": batches_per_epoch, "replicas": cluster.replicas,
                                            "workers": cluster.num_workers})

    keras.utils.set_random_seed(seed)  # the initial weights too, so a run is repeatable from its seed
    gan = model.DCGAN(cfg, flags["learning_rate"], flags["beta1"], flags["g_updates"], precision, seed,
                      batches_per_epoch, cluster.strategy, flags["sync_bn"], flags["ema_kimg"], batch_size)
    ckpt = tf.train.Checkpoint(**gan.checkpoint_objects())
    restored = runs.restore_checkpoint(ckpt, paths.checkpoint_dir, set_aside=chief)
    manager = tf.train.CheckpointManager(ckpt, paths.checkpoint_dir if chief else os.path.join(scratch, "checkpoint"),
                                         max_to_keep=flags["max_to_keep"], checkpoint_name="ckpt")
    if restored:
        logging.info("resumed %s: step %d, epoch %d, batch %d", restored, int(gan.step.numpy()),
                     int(gan.epoch.numpy()), int(gan.batch_in_epoch.numpy()))
    else:
        logging.info("new run in %s", paths.run_dir)

    sample_z_path = os.path.join(paths.run_dir, runs.SAMPLE_Z_FILE)
    if os.path.isfile(sample_z_path):
        sample_z = np.load(sample_z_path)
    else:
        # The original's fixed z for training grids: one batch (capped at 64 so grids stay readable).
        sample_z = model.sample_z(cfg.z_dist, min(batch_size, 64), cfg.z_dim, np.random.default_rng([seed, 1]))
        if chief:
            utils.atomic_write(sample_z_path, lambda f: np.save(f, sample_z))
    # The conditional model's fixed labels for those grids: the original's sample_labels, the first images' classes.
    sample_y = runs.sample_labels(paths.run_dir, data.labels, len(sample_z), chief) if cfg.y_dim else None
    grid_size = utils.image_manifold_size(len(sample_z))
    writer = tf.summary.create_file_writer(paths.log_dir) if chief else tf.summary.create_noop_writer()
    logging.info("training on %d images (%d batches of %d per epoch), model %s, precision %s, seed %d, "
                 "%d replica(s) on %d worker(s)", len(files), batches_per_epoch, batch_size, cfg, precision, seed,
                 cluster.replicas, cluster.num_workers)

    def save_samples(name, current_step):
        if not chief:
            return None
        inputs = [tf.constant(sample_z)] + ([] if sample_y is None else [tf.one_hot(sample_y, cfg.y_dim)])
        images = gan.generate(*inputs).numpy()  # the moving average, when the run keeps one
        path = os.path.join(paths.sample_dir, name)
        utils.save_images(images, grid_size, path)
        if flags["G_img_sum"]:
            with writer.as_default():
                tf.summary.image("G", utils.inverse_transform(images), step=current_step, max_outputs=16)
        return path

    def end_of_epoch(epoch, current_step):
        """Every --snapshot_freq epochs: the epoch's fixed-z grid (the training movie's frame) and the generator
        weights (for metrics and choosing an epoch), under samples/ and snapshots/."""
        if chief and flags["snapshot_freq"] and epoch % flags["snapshot_freq"] == 0:
            save_samples(f"epoch_{epoch:04d}.png", current_step)
            model.save_generator_weights(gan.sampler, cfg, os.path.join(paths.run_dir, "snapshots",
                                                                        f"epoch_{epoch:04d}"),
                                         step=current_step, epoch=epoch, images_seen=current_step * batch_size,
                                         ema_kimg=flags["ema_kimg"])

    def batches_iterator(batches):
        """A distributed iterator over the index rows `batches`: each worker reads its own replicas' share."""
        def per_worker(ctx):
            local = ctx.num_replicas_in_sync // ctx.num_input_pipelines
            rows = dataset.replica_batches(batches, ctx.num_input_pipelines, ctx.input_pipeline_id, local)
            if labels is not None:
                return dataset.make_labelled_dataset(pixels, labels, rows)
            return dataset.make_dataset(pixels, rows, cfg.c_dim)
        return iter(cluster.strategy.distribute_datasets_from_function(per_worker))

    with _deferred_interrupts() as stop:
        try:
            status = _loop(flags, gan, len(pixels), seed, manager, writer, save_samples, end_of_epoch, stop,
                           batches_iterator, keep_checkpoints=chief)
        finally:
            writer.close()
    return {"run_dir": paths.run_dir, "step": int(gan.step.numpy()), "epoch": int(gan.epoch.numpy()),
            "batch_in_epoch": int(gan.batch_in_epoch.numpy()), "status": status,
            "checkpoint": manager.latest_checkpoint, "precision": precision}


class _deferred_interrupts:
    """Ctrl-C and SIGTERM (a cluster pre-empting the job) set a flag the loop reads at its next boundary, where
    the weights and the position agree; a second signal stops at once (still consistent: both change together
    inside the compiled loop)."""

    def __enter__(self):
        self.signum = None
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt(f"signal {signum}")
        self.signum = signum
        logging.warning("signal %d: stopping at the end of this loop of steps (again to stop at once)", signum)

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False


def _next_multiple(step, freq):
    return (step // freq + 1) * freq if freq else None


def _loop(flags, gan, num_images, seed, manager, writer, save_samples, end_of_epoch, stop, batches_iterator,
          keep_checkpoints=True):
    batch_size, num_epochs, max_steps = flags["batch_size"], flags["epoch"], flags["max_steps"]
    per_epoch = gan.batches_per_epoch
    start_step, start_epoch = int(gan.step.numpy()), int(gan.epoch.numpy())
    if start_epoch >= num_epochs:
        logging.info("this run already finished %d epochs (--epoch=%d); raise --epoch to train further",
                     start_epoch, num_epochs)
        return "complete"
    batches = dataset.index_batches(num_images, batch_size, seed, start_epoch, int(gan.batch_in_epoch.numpy()),
                                    num_epochs, max_steps or None)
    iterator = batches_iterator(batches)
    last_saved = start_step if manager.latest_checkpoint else -1
    end_step = start_step + len(batches)
    bar = tqdm(total=num_epochs * per_epoch, initial=start_epoch * per_epoch + int(gan.batch_in_epoch.numpy()),
               unit="batch", dynamic_ncols=True, disable=flags["no_progress"] or not keep_checkpoints)
    t_last, step_last, epoch_losses = time.perf_counter(), start_step, []
    hist_next = start_step  # histograms on the first loop of every invocation, then every --hist_freq steps
    try:
        step = start_step
        while step < end_step:
            # A loop ends at the next grid, checkpoint or epoch boundary, so those land on their exact steps.
            bounds = [step + flags["steps_per_loop"], end_step, (step // per_epoch + 1) * per_epoch,
                      _next_multiple(step, flags["sample_freq"]), _next_multiple(step, flags["ckpt_freq"])]
            n = min(b for b in bounds if b is not None) - step
            losses, d_real, d_fake, z, stopped = gan.train_loop(iterator, tf.constant(n, tf.int32),
                                                                tf.constant(stop.signum is not None))
            if bool(stopped):  # this worker or another was asked to stop: all stop here, at the same step
                stop.signum = stop.signum or signal.SIGTERM
                break
            losses = losses.numpy()
            if not np.isfinite(losses).all():
                bad = int(np.argmin(np.isfinite(losses).all(axis=1)))
                shown = ", ".join(f"{k}={v:.4g}" for k, v in zip(model.LOSS_NAMES, losses[bad]))
                raise NonFiniteLossError(
                    f"non-finite loss at step {step + bad + 1} ({shown}); nothing was saved after it, the last good "
                    f"checkpoint is {manager.latest_checkpoint}. Lower --learning_rate or check the images, then "
                    "rerun to resume from that checkpoint.")
            first, step = step, step + n
            with writer.as_default():
                for i in range(n):
                    if flags["log_freq"] and (first + i + 1) % flags["log_freq"] == 0:
                        for name, value in zip(model.LOSS_NAMES, losses[i]):
                            tf.summary.scalar(name, value, step=first + i + 1)
                if step > hist_next:
                    tf.summary.histogram("d", d_real, step=step)
                    tf.summary.histogram("d_", d_fake, step=step)
                    tf.summary.histogram("z", z, step=step)
                    hist_next = _next_multiple(step, flags["hist_freq"]) if flags["hist_freq"] else end_step
            epoch_losses.append(losses)
            now = time.perf_counter()
            bar.set_postfix(step=step, d_loss=f"{losses[-1, 0]:.3f}", g_loss=f"{losses[-1, 3]:.3f}",
                            img_s=f"{(step - step_last) * batch_size / max(now - t_last, 1e-9):.1f}", refresh=False)
            bar.update(n)
            if now - t_last > 30:
                t_last, step_last = now, step
            if flags["sample_freq"] and step % flags["sample_freq"] == 0:
                logging.info("step %d: d_loss %.4f g_loss %.4f, samples %s", step, losses[-1, 0], losses[-1, 3],
                             save_samples(f"train_{step:08d}.png", step))
            epoch_done = step % per_epoch == 0
            if (flags["ckpt_freq"] and step % flags["ckpt_freq"] == 0) or epoch_done:
                _save(manager, step, keep_checkpoints)
                last_saved = step
                if keep_checkpoints:  # the chief measures (--metrics_freq)
                    metrics.training_hook(flags, gan.sampler, gan.cfg, step, writer)
            if epoch_done:
                epoch = step // per_epoch
                d_mean, g_mean = np.concatenate(epoch_losses)[:, [0, 3]].mean(axis=0)
                epoch_losses = []
                logging.info("epoch %d/%d done at step %d: mean d_loss %.4f, g_loss %.4f", epoch, num_epochs, step,
                             d_mean, g_mean)
                end_of_epoch(epoch, step)
    except KeyboardInterrupt:
        stop.signum = stop.signum or signal.SIGINT
    finally:
        bar.close()
    current = int(gan.step.numpy())
    if current != last_saved:
        _save(manager, current, keep_checkpoints)
    writer.flush()
    if stop.signum is not None:
        logging.warning("interrupted at step %d; saved %s. Run the same command to resume.", current,
                        manager.latest_checkpoint if keep_checkpoints else "a checkpoint (the chief's copy)")
        raise KeyboardInterrupt(f"signal {stop.signum}")
    if not flags["sample_freq"] or current % flags["sample_freq"]:
        save_samples(f"train_{current:08d}.png", current)
    if keep_checkpoints:
        metrics.training_hook(flags, gan.sampler, gan.cfg, current, writer, final=True)  # end of training
    done = int(gan.epoch.numpy()) >= num_epochs
    logging.info("%s at step %d (epoch %d, batch %d); checkpoint %s", "finished" if done else "stopped",
                 current, int(gan.epoch.numpy()), int(gan.batch_in_epoch.numpy()), manager.latest_checkpoint)
    return "complete" if done else "stopped"
