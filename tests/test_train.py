"""Training runs a few steps on tiny images: run folder contents, exact resume, interrupts and bad losses."""
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import train


def _event_tags(log_dir):
    tags = set()
    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags.update(v.tag for v in event.summary.value)
    return tags


def _generator_weights(run_dir):
    reader = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoint"))
    names = sorted(n for n in reader.get_variable_to_shape_map() if n.startswith("generator/")
                   and "OPTIMIZER_SLOT" not in n)
    return {n: reader.get_tensor(n) for n in names}


def test_training_writes_a_self_describing_run_folder(tiny_flags):
    f = tiny_flags(train=None, epoch=1, sample_freq=2, ckpt_freq=3, G_img_sum=None)
    result = train.train(f)
    run = result["run_dir"]
    assert run.endswith("faces_16") and result["status"] == "complete"
    assert (result["step"], result["epoch"], result["batch_in_epoch"]) == (5, 1, 0)  # 40 images // 8
    samples = sorted(os.listdir(os.path.join(run, "samples")))
    assert samples == ["train_00000002.png", "train_00000004.png", "train_00000005.png"]
    grid = tf.io.decode_png(tf.io.read_file(os.path.join(run, "samples", samples[0]))).numpy()
    assert grid.shape == (16 * 2, 16 * 4, 3)  # 8 fixed z -> 2 x 4 grid of 16 px faces
    assert os.path.basename(result["checkpoint"]) == "ckpt-5"
    assert not glob.glob(os.path.join(run, "checkpoint", "ckpt-3.*"))  # max_to_keep 1
    flags = json.load(open(os.path.join(run, "flags.json")))
    assert flags["model"] == {"output_height": 16, "output_width": 16, "c_dim": 3, "z_dim": 10,
                              "z_dist": "uniform_signed", "gf_dim": 8, "df_dim": 8}
    assert flags["seed"] == 7 and flags["epoch"] == 1 and flags["num_images"] == 40
    assert np.load(os.path.join(run, "sample_z.npy")).shape == (8, 10)
    assert {"d_loss", "d_loss_real", "d_loss_fake", "g_loss", "d", "d_", "z", "G"} <= _event_tags(
        os.path.join(run, "logs"))
    assert "finished at step 5" in open(os.path.join(run, "log.txt")).read()


def test_resume_continues_at_the_same_step_epoch_and_batch(tiny_flags):
    first = train.train(tiny_flags(train=None, epoch=2, max_steps=3, sample_freq=0, ckpt_freq=0, out_name="a"))
    assert (first["step"], first["epoch"], first["batch_in_epoch"], first["status"]) == (3, 0, 3, "stopped")
    second = train.train(tiny_flags(train=None, epoch=2, max_steps=4, sample_freq=0, ckpt_freq=0, out_name="a"))
    assert (second["step"], second["epoch"], second["batch_in_epoch"]) == (7, 1, 2)
    straight = train.train(tiny_flags(train=None, epoch=2, max_steps=7, sample_freq=0, ckpt_freq=0, out_name="b"))
    assert (straight["step"], straight["epoch"], straight["batch_in_epoch"]) == (7, 1, 2)
    # Same batches, same z, same order: the resumed run ends where the uninterrupted one does.
    resumed, reference = _generator_weights(first["run_dir"]), _generator_weights(straight["run_dir"])
    assert resumed.keys() == reference.keys() and resumed
    for name in reference:
        np.testing.assert_allclose(resumed[name], reference[name], atol=1e-5, err_msg=name)
    # A finished run trains no further until --epoch is raised.
    done = train.train(tiny_flags(train=None, epoch=2, sample_freq=0, ckpt_freq=0, out_name="a"))
    assert (done["step"], done["epoch"], done["status"]) == (10, 2, "complete")
    again = train.train(tiny_flags(train=None, epoch=2, sample_freq=0, ckpt_freq=0, out_name="a"))
    assert again["step"] == 10
    more = train.train(tiny_flags(train=None, epoch=3, sample_freq=0, ckpt_freq=0, out_name="a"))
    assert (more["step"], more["epoch"]) == (15, 3)


def test_resume_refuses_other_model_settings(tiny_flags):
    train.train(tiny_flags(train=None, epoch=1, max_steps=1))
    with pytest.raises(ValueError, match="z_dim=10 \\(now 12\\)"):
        train.train(tiny_flags(train=None, epoch=1, z_dim=12))


def test_too_few_images_for_one_batch(tiny_flags):
    with pytest.raises(ValueError, match="fewer than one batch of --batch_size=64"):
        train.train(tiny_flags(train=None, batch_size=64))


def test_train_size_caps_the_images(tiny_flags):
    result = train.train(tiny_flags(train=None, epoch=1, train_size=16, sample_freq=0))
    assert result["step"] == 2
    assert json.load(open(os.path.join(result["run_dir"], "flags.json")))["num_images"] == 16


def test_corrupt_file_in_folder_is_skipped_and_recorded(tiny_flags, face_dir):
    with open(os.path.join(face_dir, "faces", "broken.jpg"), "wb") as fh:
        fh.write(b"\xff\xd8\xff\xe0 cut off")
    result = train.train(tiny_flags(train=None, epoch=1, sample_freq=0))
    assert result["step"] == 5
    skipped = open(os.path.join(result["run_dir"], "skipped_files.txt")).read()
    assert "broken.jpg" in skipped


def test_interrupt_saves_a_checkpoint_before_exiting(tiny_flags, monkeypatch):
    calls = {"n": 0}
    real_sample_z = train.model.sample_z

    def interrupting_sample_z(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # the first call draws the fixed sample z; then one per step
            raise KeyboardInterrupt
        return real_sample_z(*args, **kwargs)

    monkeypatch.setattr(train.model, "sample_z", interrupting_sample_z)
    f = tiny_flags(train=None, epoch=1, sample_freq=0, ckpt_freq=100)
    with pytest.raises(KeyboardInterrupt):
        train.train(f)
    ckpt = tf.train.latest_checkpoint(os.path.join(f["out_dir"], f["out_name"], "checkpoint"))
    assert os.path.basename(ckpt) == "ckpt-2"
    monkeypatch.setattr(train.model, "sample_z", real_sample_z)
    assert train.train(f)["step"] == 5  # resumes at batch 2 and finishes the epoch


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_flags, monkeypatch):
    f = tiny_flags(train=None, epoch=1, max_steps=2, sample_freq=0, ckpt_freq=1)
    train.train(f)
    real_load = train.dataset.load_image
    monkeypatch.setattr(train.dataset, "load_image", lambda *a, **k: real_load(*a, **k) * np.nan)
    with pytest.raises(train.NonFiniteLossError, match="non-finite loss at step 3.*ckpt-2"):
        train.train(tiny_flags(train=None, epoch=1, sample_freq=0, ckpt_freq=1))
    ckpt_dir = os.path.join(f["out_dir"], f["out_name"], "checkpoint")
    assert os.path.basename(tf.train.latest_checkpoint(ckpt_dir)) == "ckpt-2"
    assert all(np.isfinite(w).all() for w in _generator_weights(os.path.dirname(ckpt_dir)).values())
