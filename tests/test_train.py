"""Training runs a few steps on tiny images: run folder contents, exact resume, interrupts and bad losses."""
import glob
import json
import os
import signal

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
    f = tiny_flags(train=None, epoch=1, sample_freq=2, ckpt_freq=3, G_img_sum=None, log_freq=1)
    result = train.train(f)
    run = result["run_dir"]
    assert run.endswith("faces_16") and result["status"] == "complete"
    assert (result["step"], result["epoch"], result["batch_in_epoch"]) == (5, 1, 0)  # 40 images // 8
    samples = sorted(os.listdir(os.path.join(run, "samples")))
    assert samples == ["epoch_0001.png", "train_00000002.png", "train_00000004.png", "train_00000005.png"]
    snapshot = json.load(open(os.path.join(run, "snapshots", "epoch_0001", "generator.json")))
    assert (snapshot["step"], snapshot["epoch"], snapshot["images_seen"]) == (5, 1, 40)
    grid = tf.io.decode_png(tf.io.read_file(os.path.join(run, "samples", samples[0]))).numpy()
    assert grid.shape == (16 * 2, 16 * 4, 3)  # 8 fixed z -> 2 x 4 grid of 16 px faces
    assert os.path.basename(result["checkpoint"]) == "ckpt-5"
    assert not glob.glob(os.path.join(run, "checkpoint", "ckpt-3.*"))  # max_to_keep 1
    flags = json.load(open(os.path.join(run, "flags.json")))
    assert flags["model"] == {"output_height": 16, "output_width": 16, "c_dim": 3, "z_dim": 10,
                              "z_dist": "uniform_signed", "gf_dim": 8, "df_dim": 8}
    assert flags["seed"] == 7 and flags["epoch"] == 1 and flags["num_images"] == 40
    assert flags["precision"] == result["precision"] in ("float32", "mixed_bfloat16")  # auto's choice, recorded
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


def _interrupt_at(monkeypatch, batches, signals=1):
    """Send SIGINT to this process (signals times) while the input pipeline reads batch number `batches`."""
    real = train.dataset.make_dataset
    state = {"n": 0}

    def make(pixels, index, c_dim):
        def gather(idx):
            state["n"] += 1
            if state["n"] == batches:
                for _ in range(signals):
                    os.kill(os.getpid(), signal.SIGINT)
            return idx
        ds = real(pixels, index, c_dim)
        return ds.map(lambda b: tf.ensure_shape(tf.numpy_function(gather, [b], tf.uint8, stateful=True), b.shape))
    monkeypatch.setattr(train.dataset, "make_dataset", make)


INTERRUPT_RUN = dict(train=None, epoch=2, sample_freq=0, ckpt_freq=3, steps_per_loop=2, precision="float32",
                     snapshot_freq=0)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The weights of the run the interrupted ones must end with (data as tiny_flags' face_dir makes it)."""
    from conftest import TINY, parse_flags, write_faces
    tmp = tmp_path_factory.mktemp("straight")
    write_faces(str(tmp / "data" / "faces"), 40)
    result = train.train(parse_flags(**TINY, data_dir=str(tmp / "data"), out_dir=str(tmp / "out"), seed=7,
                                     out_name="straight", **INTERRUPT_RUN))
    return result["step"], _generator_weights(result["run_dir"])


@pytest.mark.parametrize("batch,signals", [(6, 1), (3, 2)])
def test_interrupted_runs_resume_bit_for_bit(tiny_flags, monkeypatch, uninterrupted, batch, signals):
    """A signal while the input pipeline reads batch `batch` (so at an arbitrary point of a loop); two signals
    stop at once instead of at the loop's end."""
    kw = INTERRUPT_RUN
    _interrupt_at(monkeypatch, batch, signals)
    f = tiny_flags(out_name="cut", **kw)
    with pytest.raises(KeyboardInterrupt):
        train.train(f)
    saved = tf.train.latest_checkpoint(os.path.join(f["out_dir"], "cut", "checkpoint"))
    reader = tf.train.load_checkpoint(saved)
    step = int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))
    # The checkpoint saved on the way out is at the step its weights are at: Adam counted 1 D + 2 G updates a step.
    assert int(reader.get_tensor("d_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE")) == step
    assert int(reader.get_tensor("g_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE")) == 2 * step
    assert 0 < step < 10
    monkeypatch.undo()
    resumed = train.train(f)
    assert resumed["step"] == uninterrupted[0] == 10
    a, b = _generator_weights(resumed["run_dir"]), uninterrupted[1]
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_each_precision_trains_and_resumes_exactly(tiny_flags, precision):
    kw = dict(train=None, epoch=1, sample_freq=0, ckpt_freq=0, precision=precision)
    first = train.train(tiny_flags(out_name="a", max_steps=2, **kw))
    assert first["precision"] == precision and first["step"] == 2
    resumed = train.train(tiny_flags(out_name="a", max_steps=1, **kw))
    straight = train.train(tiny_flags(out_name="b", max_steps=3, **kw))
    assert resumed["step"] == straight["step"] == 3
    a, b = _generator_weights(resumed["run_dir"]), _generator_weights(straight["run_dir"])
    assert all(np.array_equal(a[k], b[k]) and np.isfinite(a[k]).all() for k in a)
    reader = tf.train.load_checkpoint(os.path.join(resumed["run_dir"], "checkpoint"))
    names = reader.get_variable_to_shape_map()
    assert any("loss_scale" in n for n in names) == (precision == "mixed_float16")


def test_steps_per_loop_does_not_change_the_result(tiny_flags):
    kw = dict(train=None, epoch=2, sample_freq=0, ckpt_freq=0, precision="float32", max_steps=7)
    one = train.train(tiny_flags(out_name="k1", steps_per_loop=1, **kw))
    four = train.train(tiny_flags(out_name="k4", steps_per_loop=4, **kw))
    assert one["step"] == four["step"] == 7 and four["epoch"] == 1 and four["batch_in_epoch"] == 2
    a, b = _generator_weights(one["run_dir"]), _generator_weights(four["run_dir"])
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-7, err_msg=k)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_flags, monkeypatch):
    poison = tf.Variable(0.0)  # added to every loss: 0 now, NaN from the second run on
    real_bce = train.model._bce
    monkeypatch.setattr(train.model, "_bce", lambda logits, label: real_bce(logits, label) + poison)
    f = tiny_flags(train=None, epoch=1, max_steps=2, sample_freq=0, ckpt_freq=1, precision="float32")
    train.train(f)
    poison.assign(float("nan"))
    with pytest.raises(train.NonFiniteLossError, match=r"non-finite loss at step 3 .*ckpt-2"):
        train.train(tiny_flags(train=None, epoch=1, sample_freq=0, ckpt_freq=100, steps_per_loop=3,
                               precision="float32"))
    ckpt_dir = os.path.join(f["out_dir"], f["out_name"], "checkpoint")
    assert os.path.basename(tf.train.latest_checkpoint(ckpt_dir)) == "ckpt-2"  # nothing saved after the NaN
    assert all(np.isfinite(w).all() for w in _generator_weights(os.path.dirname(ckpt_dir)).values())


def test_a_cut_off_latest_checkpoint_falls_back_to_the_previous_one(tiny_flags, caplog):
    f = tiny_flags(train=None, epoch=1, max_steps=4, sample_freq=0, ckpt_freq=2, max_to_keep=3, precision="float32")
    train.train(f)
    ckpt_dir = os.path.join(f["out_dir"], f["out_name"], "checkpoint")
    data = glob.glob(os.path.join(ckpt_dir, "ckpt-4.data-*"))[0]
    with open(data, "r+b") as fh:
        fh.truncate(os.path.getsize(data) // 2)
    with caplog.at_level("WARNING"):
        again = train.train(tiny_flags(train=None, epoch=1, sample_freq=0, ckpt_freq=0, max_to_keep=3,
                                       precision="float32"))
    assert "ckpt-4 cannot be read" in caplog.text and again["step"] == 5  # from step 2 to the end of the epoch
    assert os.path.exists(os.path.join(ckpt_dir, "unreadable", os.path.basename(data)))  # kept aside, not deleted


def test_a_full_disk_is_one_clear_error_and_a_rerun_resumes(tiny_flags, tmp_path):
    """A file-size limit makes TensorFlow's checkpoint writer fail as on a full disk (EFBIG instead of ENOSPC)."""
    import subprocess
    import sys
    from conftest import ROOT
    f = tiny_flags(train=None, epoch=1, max_steps=2, sample_freq=0, ckpt_freq=1, precision="float32")
    train.train(f)
    args = [sys.executable, os.path.join(ROOT, "main.py"), "--train", "--epoch=1", "--sample_freq=0", "--ckpt_freq=1",
            "--precision=float32", "--noprogress", "--snapshot_freq=0", f"--data_dir={f['data_dir']}",
            f"--out_dir={f['out_dir']}", "--output_height=16", "--gf_dim=8", "--df_dim=8", "--z_dim=10",
            "--batch_size=8"]
    ckpt_dir = os.path.join(f["out_dir"], f["out_name"], "checkpoint")
    limit = min(os.path.getsize(p) for p in glob.glob(os.path.join(ckpt_dir, "ckpt-2.data-*"))) // 2

    def small_files():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    full = subprocess.run(args, capture_output=True, text=True, timeout=120, preexec_fn=small_files)
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr[-2000:]
    assert "could not write checkpoint 3" in full.stderr and "run the same command to resume" in full.stderr
    assert not glob.glob(os.path.join(ckpt_dir, "*_temp*")) and not glob.glob(os.path.join(ckpt_dir, "ckpt-3.*"))
    assert os.path.basename(tf.train.latest_checkpoint(ckpt_dir)) == "ckpt-2"
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert os.path.basename(tf.train.latest_checkpoint(ckpt_dir)) == "ckpt-5"
