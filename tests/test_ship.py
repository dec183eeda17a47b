"""checkpoints/ship.py: an epoch snapshot of a run becomes a portable shipped generator, swapped in whole."""
import json
import os
import subprocess
import sys

import numpy as np
import imageio.v3 as iio

import model
import utils

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = model.ModelConfig(output_height=16, output_width=16, gf_dim=8, df_dim=8)


def fake_run(tmp_path):
    """A run folder as training leaves it: flags.json, holdout.txt, two epoch snapshots and their grids."""
    data = tmp_path / "machine" / "data" / "crops"
    data.mkdir(parents=True)
    (data / "summary.json").write_text(json.dumps({"inputs": 12, "crops_kept": 10}))
    run = tmp_path / "machine" / "runs" / "ship_me"
    flags = {"data_dir": str(data.parent), "dataset": "crops", "out_dir": str(run.parent), "seed": 3,
             "crop": True, "input_height": 108}
    utils.write_json(str(run / "flags.json"), flags)
    (run / "holdout.txt").write_text(f"{data}/b.jpg\n{data}/a.jpg\n")
    (run / "samples").mkdir()
    generator = model.make_generator(CFG)
    for epoch in (1, 2):
        model.save_generator_weights(generator, CFG, str(run / "snapshots" / f"epoch_{epoch:04d}"), step=5 * epoch,
                                     epoch=epoch, images_seen=320 * epoch, train_flags=flags)
        grid = np.full((8 * 16, 8 * 16, 3), 40 * epoch, np.uint8)
        iio.imwrite(run / "samples" / f"epoch_{epoch:04d}.png", grid)
    return run, data


def ship(*args):
    return subprocess.run([sys.executable, "-m", "checkpoints.ship", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_ship_writes_a_portable_float16_generator_with_its_epoch_grids(tmp_path):
    run, data = fake_run(tmp_path)
    dest = tmp_path / "checkpoints" / "faces_64"
    dest.mkdir(parents=True)
    (dest / "old_file").write_text("the generator being replaced")
    out = ship(run, 1, "--dest", dest, "--grid", 2)
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(os.listdir(dest)) == ["epochs", "generator.json", "generator.npz"]  # replaced whole, compact only
    assert not os.path.exists(str(dest) + ".shipping") and not os.path.exists(str(dest) + ".old")
    meta = json.loads((dest / "generator.json").read_text())
    assert meta["dtype"] == "float16" and meta["step"] == 5 and meta["epoch"] == 1 and meta["images_seen"] == 320
    assert meta["train_flags"]["data_dir"] == "data" and meta["train_flags"]["out_dir"] == "out"
    assert str(tmp_path) not in json.dumps(meta) and "ship_me" in meta["source"]  # no path of this machine
    assert meta["dataset_summary"] == {"inputs": 12, "crops_kept": 10}
    assert meta["holdout_files"] == ["a.jpg", "b.jpg"]
    assert os.listdir(dest / "epochs") == ["epoch_0001.png"]  # the grids up to the shipped epoch only
    assert iio.imread(dest / "epochs" / "epoch_0001.png").shape == (32, 32, 3)
    generator, cfg, _ = model.load_generator_weights(str(dest))
    assert cfg == CFG and generator(np.zeros((1, 100), np.float32)).shape == (1, 16, 16, 3)


def test_ship_refuses_a_missing_epoch_and_keeps_the_old_generator(tmp_path):
    run, _ = fake_run(tmp_path)
    dest = tmp_path / "faces_64"
    dest.mkdir()
    (dest / "generator.npz").write_bytes(b"old")
    out = ship(run, 7, "--dest", dest)
    assert out.returncode != 0 and "epoch 7" in out.stderr and "Traceback" not in out.stderr
    assert (dest / "generator.npz").read_bytes() == b"old"


def test_metrics_measured_later_are_added_to_the_shipped_json_and_nothing_else_changes(tmp_path):
    run, _ = fake_run(tmp_path)
    dest = tmp_path / "faces_64"
    assert ship(run, 2, "--dest", dest).returncode == 0
    weights = (dest / "generator.npz").read_bytes()
    ours = f"generator weights {dest} (step 10)"
    rows = [{"metric": "fid10k", "value": 30.0, "results": {"fid": 30.0}, "seed": 1, "step": 10, "generator": ours},
            {"metric": "fid10k", "value": 31.0, "results": {"fid": 31.0}, "seed": 0, "step": 10, "generator": ours,
             "floor": {"fid": 2.0}, "reference_images": "10000 images of data/crops"},
            {"metric": "fid10k", "value": 29.0, "results": {"fid": 29.0}, "seed": 5, "step": 10, "generator": ours},
            {"metric": "kid10k", "value": 0.01, "results": {"kid": 0.01}, "seed": 0, "step": 5, "generator": ours},
            {"metric": "pr10k", "value": 0.7, "results": {}, "seed": 0, "step": 10, "generator": "another (step 10)"}]
    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = ship("--metrics_from", log, "--dest", dest)
    assert out.returncode == 0, out.stderr[-3000:]
    meta = json.loads((dest / "generator.json").read_text())
    # Only this generator's step; the seed-0 draw wins over later draws with other seeds.
    assert set(meta["metrics"]) == {"fid10k"}
    assert meta["metrics"]["fid10k"] == {"value": 31.0, "results": {"fid": 31.0}, "seed": 0, "floor": {"fid": 2.0},
                                         "reference_images": "10000 images of data/crops"}
    assert (dest / "generator.npz").read_bytes() == weights and meta["step"] == 10
    log.write_text(json.dumps(rows[3]) + "\n")  # nothing measured on this step: an error, the json unchanged
    before = (dest / "generator.json").read_text()
    out = ship("--metrics_from", log, "--dest", dest)
    assert out.returncode != 0 and "step 10" in out.stderr and "Traceback" not in out.stderr
    assert (dest / "generator.json").read_text() == before
    out = ship(run, 2, "--metrics_from", log, "--dest", dest)
    assert out.returncode != 0 and "RUN_DIR" in out.stderr
