"""Sample mode, export (.keras, SavedModel, generator.npz), finding the trained run, and main.py's errors."""
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import generate
import model
import runs
import train
from conftest import ROOT


@pytest.fixture
def trained(tiny_flags):
    """A tiny run trained for two steps; returns its flags."""
    f = tiny_flags(train=None, epoch=1, max_steps=2, sample_freq=0, z_dist="normal01")
    train.train(f)
    return f


def _paths(f):
    return runs.run_paths(f["out_dir"], f["out_name"], f["checkpoint_dir"], f["sample_dir"])


def test_sampling_finds_the_run_trained_with_the_same_flags(trained):
    src = runs.find_generator(_paths(trained))
    assert src.run_dir == os.path.join(trained["out_dir"], "faces_16") and src.step == 2
    assert src.cfg.z_dist == "normal01"  # sampling uses the prior the run was trained with


def test_sample_mode_writes_grid_and_any_number_of_faces(trained, tmp_path):
    src = runs.find_generator(_paths(trained))
    out = generate.sample(src, str(tmp_path / "s"), sample_num=70, seed=5, batch_size=8)
    faces = sorted(f for f in os.listdir(out["faces_dir"]) if f.endswith(".png"))
    assert len(faces) == 70 and faces[0] == "face_00000.png" and faces[-1] == "face_00069.png"
    face = tf.io.decode_png(tf.io.read_file(os.path.join(out["faces_dir"], faces[3]))).numpy()
    assert face.shape == (16, 16, 3)
    grid = tf.io.decode_png(tf.io.read_file(out["grid"])).numpy()
    assert grid.shape == (8 * 16, 8 * 16, 3)  # the first 64 faces
    z = np.load(os.path.join(out["faces_dir"], "z.npy"))
    assert z.shape == (70, 10) and abs(z.std() - 1) < 0.2  # drawn from N(0, 1), the run's z_dist
    # Face i is exactly generator(z[i]).
    again = model.generate_images(src.generator, z[3:4])
    np.testing.assert_array_equal(np.asarray(face), np.asarray(generate.utils.to_uint8(again)[0]))


def test_export_reloads_without_this_code_and_matches(trained, tmp_path):
    src = runs.find_generator(_paths(trained))
    out = generate.export(src, str(tmp_path / "export"))
    z = model.sample_z("normal01", 5, 10, np.random.default_rng(0))
    want = src.generator(z, training=False).numpy()
    reloaded = keras.saving.load_model(out["keras"])
    np.testing.assert_allclose(reloaded(z, training=False).numpy(), want, atol=1e-6)
    loaded = tf.saved_model.load(out["saved_model"])  # keep a reference: it owns the variables
    served = loaded.serve(tf.constant(z)).numpy()
    np.testing.assert_allclose(served, want, atol=1e-5)
    G, cfg, meta = model.load_generator_weights(str(tmp_path / "export"))
    assert cfg == src.cfg and meta["step"] == 2
    assert meta["train_flags"]["seed"] == 7 and meta["train_flags"]["z_dist"] == "normal01"  # how it was trained
    np.testing.assert_allclose(G(z, training=False).numpy(), want, atol=1e-6)


def test_explicit_checkpoint_dir_and_weights_folder(trained, tmp_path):
    ckpt_dir = os.path.join(trained["out_dir"], "faces_16", "checkpoint")
    other = runs.run_paths(str(tmp_path / "elsewhere"), "x", "checkpoint", "samples")
    assert runs.find_generator(other, ckpt_dir).step == 2
    src = runs.find_generator(_paths(trained))
    model.save_generator_weights(src.generator, src.cfg, str(tmp_path / "w"), step=9)
    assert runs.find_generator(other, str(tmp_path / "w")).step == 9


def test_missing_generator_error_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "SHIPPED_GENERATOR", str(tmp_path / "no_shipped"))
    paths = runs.run_paths(str(tmp_path / "out"), "faces_64", "checkpoint", "samples")
    with pytest.raises(FileNotFoundError) as e:
        runs.find_generator(paths)
    assert paths.checkpoint_dir in str(e.value) and "no_shipped" in str(e.value)
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        runs.find_generator(paths, str(tmp_path / "nothing_here"))


def test_shipped_generator_is_the_fallback(tmp_path, monkeypatch):
    cfg = model.ModelConfig(output_height=16, output_width=16, gf_dim=4, df_dim=4, z_dim=6)
    model.save_generator_weights(model.make_generator(cfg), cfg, str(tmp_path / "shipped"), step=3)
    monkeypatch.setattr(runs, "SHIPPED_GENERATOR", str(tmp_path / "shipped"))
    src = runs.find_generator(runs.run_paths(str(tmp_path / "out"), "faces_64", "checkpoint", "samples"))
    assert src.run_dir is None and src.cfg == cfg and "shipped" in src.description


def _main(*args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_errors_are_clear_and_exit_non_zero(tmp_path):
    (tmp_path / "data" / "faces").mkdir(parents=True)
    r = _main("--train", "--data_dir", "data", cwd=tmp_path)
    assert r.returncode == 1 and "no images match data/faces/*.jpg" in r.stderr
    r = _main("--output_height", "8", cwd=tmp_path)
    assert r.returncode == 1 and "--output_height=8 is too small" in r.stderr and "Traceback" not in r.stderr
    r = _main("--dataset", "celebAA", cwd=tmp_path)  # a mistyped run name is not answered with someone else's faces
    assert r.returncode == 1 and "no trained run for --dataset=celebAA" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "samples").exists()
    r = _main("--help", cwd=tmp_path)
    assert r.returncode == 0 and "--output_height" in r.stdout and "--precision" in r.stdout
    # TensorFlow's start-up lines that mean nothing to a user (oneDNN notice, no CUDA driver) stay out of the console.
    r = _main("--sample_num", "2", "--seed", "0", cwd=tmp_path)
    assert r.returncode == 0 and "cuInit" not in r.stderr and "oneDNN" not in r.stderr, r.stderr
    assert "generator: the shipped generator" in r.stderr
    r = _main("--checkpoint_dir", "missing_ckpt", "--out_dir", "o", cwd=tmp_path)
    assert r.returncode == 1 and "looked in" in r.stderr and "missing_ckpt" in r.stderr
    r = _main("--z_dist", "gaussian", cwd=tmp_path)
    assert r.returncode != 0 and "uniform_signed" in r.stderr


def test_sample_mode_in_the_repository_changes_no_tracked_file(tmp_path):
    """make demo's command, run where make runs it: its files land in the ignored samples/ folder."""
    git = lambda *a: subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True)  # noqa: E731
    if git("rev-parse").returncode != 0:
        pytest.skip("not a git checkout")
    before = git("status", "--porcelain").stdout
    sample_dir = os.path.join("samples", f"test_{os.getpid()}")
    try:
        r = _main("--sample_num", "3", "--seed", "0", "--sample_dir", sample_dir, cwd=ROOT)
        assert r.returncode == 0, r.stderr[-2000:]
        assert os.path.isfile(os.path.join(ROOT, sample_dir, "sample_grid.png"))
        assert git("status", "--porcelain").stdout == before
        assert git("check-ignore", "-q", os.path.join(sample_dir, "sample_grid.png")).returncode == 0
    finally:
        import shutil
        shutil.rmtree(os.path.join(ROOT, sample_dir), ignore_errors=True)


def test_exporting_an_epoch_snapshot_keeps_its_run_flags_epoch_and_metrics(tiny_flags, tmp_path):
    import json
    from metrics import runner
    f = tiny_flags(train=None, epoch=1, sample_freq=0)
    run_dir = train.train(f)["run_dir"]
    snapshot = os.path.join(run_dir, "snapshots", "epoch_0001")
    runner.append_rows(os.path.join(run_dir, runner.METRICS_FILE),
                       [{"metric": "fid2k", "value": 42.0, "results": {"fid": 42.0}, "step": 5, "seed": 0},
                        {"metric": "fid2k", "value": 99.0, "results": {"fid": 99.0}, "step": 3, "seed": 0}])
    src = runs.find_generator(_paths(f), snapshot)
    generate.export(src, str(tmp_path / "ship"), "float16")
    meta = json.load(open(tmp_path / "ship" / "generator.json"))
    assert meta["train_flags"]["seed"] == 7 and (meta["step"], meta["epoch"], meta["images_seen"]) == (5, 1, 40)
    assert meta["metrics"] == {"fid2k": {"value": 42.0, "results": {"fid": 42.0}, "seed": 0, "reference_images": None}}
