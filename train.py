"""The training loop: run folder, checkpoints and exact resume, fixed-z sample grids, TensorBoard logs."""
import hashlib
import logging as pylogging
import os
import signal
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from tqdm import tqdm

import dataset
import model
import runs
import utils

class NonFiniteLossError(RuntimeError):
    pass


def _log_to_file(run_dir):
    """Mirror absl logging into run_dir/log.txt so the run folder keeps its own history."""
    handler = pylogging.FileHandler(os.path.join(run_dir, "log.txt"))
    handler.setFormatter(pylogging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    pylogging.getLogger("absl").addHandler(handler)
    return handler


def _check_resume(previous, cfg, paths):
    """Refuse to resume a run folder whose networks differ from the ones these flags build."""
    changed = {k: (previous["model"].get(k), v) for k, v in cfg.to_dict().items() if previous["model"].get(k) != v}
    if changed:
        raise ValueError(
            f"{paths.run_dir} holds a run trained with other model settings: "
            + ", ".join(f"{k}={a} (now {b})" for k, (a, b) in changed.items())
            + "; pass the same flags to resume it, or --out_name <new name> to start a new run")


def _files_digest(files):
    return hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]


def train(flags):
    """Train (or resume) a DCGAN as configured by `flags`, a dict of the resolved command-line flags."""
    paths = runs.run_paths(flags["out_dir"], flags["out_name"], flags["checkpoint_dir"], flags["sample_dir"])
    for d in (paths.run_dir, paths.checkpoint_dir, paths.sample_dir, paths.log_dir):
        os.makedirs(d, exist_ok=True)
    handler = _log_to_file(paths.run_dir)
    try:
        return _train(flags, paths)
    finally:
        pylogging.getLogger("absl").removeHandler(handler)
        handler.close()


def _train(flags, paths):
    all_files = dataset.list_images(flags["data_dir"], flags["dataset"], flags["input_fname_pattern"])
    files, skipped = dataset.scan_images(all_files)
    if skipped:
        utils.atomic_write(os.path.join(paths.run_dir, "skipped_files.txt"),
                           lambda f: f.write("".join(f"{p}\t{r}\n" for p, r in skipped)), mode="w")
    previous = runs.read_run_flags(paths.run_dir)
    if previous is not None:  # resuming: keep the seed, so the data order and z continue where they stopped
        seed = previous["seed"]
    elif flags["seed"] is not None:
        seed = flags["seed"]
    else:
        seed = int(np.random.SeedSequence().entropy % (2 ** 31))
    if flags["train_size"] and flags["train_size"] < len(files):
        # A fixed subset (seeded), so every epoch trains on the same train_size images.
        keep = np.sort(np.random.default_rng(seed).permutation(len(files))[:flags["train_size"]])
        files = [files[i] for i in keep]
    batch_size = flags["batch_size"]
    if len(files) < batch_size:
        raise ValueError(f"only {len(files)} usable images in {os.path.join(flags['data_dir'], flags['dataset'])} "
                         f"({len(skipped)} skipped), fewer than one batch of --batch_size={batch_size}; "
                         "add images or lower --batch_size")
    c_dim = flags["c_dim"] or dataset.detect_channels(files)
    cfg = model.ModelConfig(output_height=flags["output_height"], output_width=flags["output_width"], c_dim=c_dim,
                            z_dim=flags["z_dim"], z_dist=flags["z_dist"], gf_dim=flags["gf_dim"],
                            df_dim=flags["df_dim"])
    digest = _files_digest(files)
    if previous is not None:
        _check_resume(previous, cfg, paths)
        if previous.get("files_digest") != digest:
            logging.warning("the image list differs from the one this run last trained on; "
                            "batches from here on follow the new list")
    utils.write_json(paths.flags_file, {**flags, "seed": seed, "model": cfg.to_dict(), "files_digest": digest,
                                        "num_images": len(files), "num_skipped": len(skipped)})

    keras.utils.set_random_seed(seed)  # the initial weights too, so a run is repeatable from its seed
    gan = model.DCGAN(cfg, flags["learning_rate"], flags["beta1"], flags["g_updates"])
    step = tf.Variable(0, dtype=tf.int64, name="step")
    epoch_var = tf.Variable(0, dtype=tf.int64, name="epoch")
    batch_var = tf.Variable(0, dtype=tf.int64, name="batch_in_epoch")  # next batch to train within epoch_var
    ckpt = tf.train.Checkpoint(generator=gan.generator, discriminator=gan.discriminator,
                               g_optimizer=gan.g_optimizer, d_optimizer=gan.d_optimizer,
                               step=step, epoch=epoch_var, batch_in_epoch=batch_var)
    manager = tf.train.CheckpointManager(ckpt, paths.checkpoint_dir, max_to_keep=flags["max_to_keep"],
                                         checkpoint_name="ckpt")
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        logging.info("resumed %s: step %d, epoch %d, batch %d", manager.latest_checkpoint,
                     int(step.numpy()), int(epoch_var.numpy()), int(batch_var.numpy()))
    else:
        logging.info("new run in %s", paths.run_dir)

    sample_z_path = os.path.join(paths.run_dir, runs.SAMPLE_Z_FILE)
    if os.path.isfile(sample_z_path):
        sample_z = np.load(sample_z_path)
    else:
        # The original's fixed z for training grids: one batch (capped at 64 so grids stay readable).
        sample_z = model.sample_z(cfg.z_dist, min(batch_size, 64), cfg.z_dim, np.random.default_rng([seed, 1]))
        utils.atomic_write(sample_z_path, lambda f: np.save(f, sample_z))
    grid_size = utils.image_manifold_size(len(sample_z))

    load_kwargs = dict(input_height=flags["input_height"], input_width=flags["input_width"],
                       output_height=cfg.output_height, output_width=cfg.output_width,
                       crop=flags["crop"], c_dim=cfg.c_dim)
    batches_per_epoch = len(files) // batch_size
    writer = tf.summary.create_file_writer(paths.log_dir)
    logging.info("training on %d images (%d batches of %d per epoch), model %s, seed %d",
                 len(files), batches_per_epoch, batch_size, cfg, seed)

    def save_samples(current_step):
        images = gan.generate(tf.constant(sample_z)).numpy()
        path = os.path.join(paths.sample_dir, f"train_{current_step:08d}.png")
        utils.save_images(images, grid_size, path)
        if flags["G_img_sum"]:
            with writer.as_default():
                tf.summary.image("G", utils.inverse_transform(images), step=current_step, max_outputs=16)
        return path

    # Ctrl-C and SIGTERM (a cluster pre-empting the job) both end the loop through KeyboardInterrupt.
    previous_sigterm = signal.getsignal(signal.SIGTERM)
    in_main_thread = hasattr(signal, "SIGTERM") and _is_main_thread()
    if in_main_thread:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        status = _loop(flags, gan, files, seed, load_kwargs, step, epoch_var, batch_var, manager,
                       writer, save_samples, batches_per_epoch)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_sigterm)
        writer.close()
    return {"run_dir": paths.run_dir, "step": int(step.numpy()), "epoch": int(epoch_var.numpy()),
            "batch_in_epoch": int(batch_var.numpy()), "status": status, "checkpoint": manager.latest_checkpoint}


def _is_main_thread():
    import threading
    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _loop(flags, gan, files, seed, load_kwargs, step, epoch_var, batch_var, manager, writer, save_samples,
          batches_per_epoch):
    batch_size, num_epochs = flags["batch_size"], flags["epoch"]
    max_steps = flags["max_steps"]
    start_epoch = int(epoch_var.numpy())
    if start_epoch >= num_epochs:
        logging.info("this run already finished %d epochs (--epoch=%d); raise --epoch to train further",
                     start_epoch, num_epochs)
        return "complete"
    last_saved = int(step.numpy()) if manager.latest_checkpoint else -1
    steps_this_call = 0
    try:
        for epoch in range(start_epoch, num_epochs):
            start_batch = int(batch_var.numpy()) if epoch == start_epoch else 0
            data = dataset.make_dataset(files, batch_size, load_kwargs, epoch, seed, start_batch)
            bar = tqdm(total=batches_per_epoch, initial=start_batch, desc=f"epoch {epoch + 1}/{num_epochs}",
                       unit="batch", dynamic_ncols=True, leave=False, disable=flags["no_progress"])
            t_last, images_since, epoch_losses = time.perf_counter(), 0, []
            for idx, images in enumerate(data, start=start_batch):
                current = int(step.numpy()) + 1
                z = model.sample_z(gan.cfg.z_dist, batch_size, gan.cfg.z_dim, np.random.default_rng([seed, 2, current]))
                out = gan.train_step(images, tf.constant(z))
                losses = {k: float(out[k]) for k in ("d_loss", "d_loss_real", "d_loss_fake", "g_loss")}
                if not all(np.isfinite(v) for v in losses.values()):
                    raise NonFiniteLossError(
                        f"non-finite loss at step {current} (epoch {epoch + 1}, batch {idx + 1}): "
                        + ", ".join(f"{k}={v:.4g}" for k, v in losses.items())
                        + f"; nothing was saved after it, the last good checkpoint is {manager.latest_checkpoint}. "
                        "Lower --learning_rate or check the images, then rerun to resume from that checkpoint.")
                # Position after this batch: the next one to train.
                step.assign(current)
                if idx + 1 == batches_per_epoch:
                    epoch_var.assign(epoch + 1)
                    batch_var.assign(0)
                else:
                    batch_var.assign(idx + 1)
                with writer.as_default(step=current):
                    for k, v in losses.items():
                        tf.summary.scalar(k, v)
                    tf.summary.histogram("d", out["d_real"])
                    tf.summary.histogram("d_", out["d_fake"])
                    tf.summary.histogram("z", z)
                images_since += batch_size
                now = time.perf_counter()
                bar.set_postfix(step=current, d_loss=f"{losses['d_loss']:.3f}", g_loss=f"{losses['g_loss']:.3f}",
                                img_s=f"{images_since / max(now - t_last, 1e-9):.1f}", refresh=False)
                bar.update(1)
                if now - t_last > 10:
                    t_last, images_since = now, 0
                if flags["sample_freq"] and current % flags["sample_freq"] == 0:
                    logging.info("step %d: d_loss %.4f g_loss %.4f, samples %s", current, losses["d_loss"],
                                 losses["g_loss"], save_samples(current))
                if flags["ckpt_freq"] and current % flags["ckpt_freq"] == 0:
                    manager.save(checkpoint_number=current)
                    last_saved = current
                steps_this_call += 1
                epoch_losses.append((losses["d_loss"], losses["g_loss"]))
                if max_steps and steps_this_call >= max_steps:
                    break
            bar.close()
            if max_steps and steps_this_call >= max_steps and int(epoch_var.numpy()) == epoch:
                break
            # Also reached when a file failed to decode and the epoch came up a batch short.
            epoch_var.assign(epoch + 1)
            batch_var.assign(0)
            if epoch_losses:
                d_mean, g_mean = np.mean(epoch_losses, axis=0)
                logging.info("epoch %d/%d done at step %d: mean d_loss %.4f, g_loss %.4f", epoch + 1, num_epochs,
                             int(step.numpy()), d_mean, g_mean)
            if max_steps and steps_this_call >= max_steps:
                break
    except KeyboardInterrupt:
        current = int(step.numpy())
        if current != last_saved:
            manager.save(checkpoint_number=current)
        logging.warning("interrupted at step %d; saved %s. Run the same command to resume.", current,
                        manager.latest_checkpoint)
        writer.flush()
        raise
    current = int(step.numpy())
    if current != last_saved:
        manager.save(checkpoint_number=current)
    if not flags["sample_freq"] or current % flags["sample_freq"]:
        save_samples(current)
    done = int(epoch_var.numpy()) >= num_epochs
    logging.info("%s at step %d (epoch %d, batch %d); checkpoint %s", "finished" if done else "stopped",
                 current, int(epoch_var.numpy()), int(batch_var.numpy()), manager.latest_checkpoint)
    return "complete" if done else "stopped"
