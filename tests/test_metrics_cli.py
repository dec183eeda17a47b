"""Metrics end to end: during training, --metrics on a run and on a weights folder, snapshots, the plot, errors."""
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import main
import model
import runs
import train
from conftest import TINY, parse_flags, write_faces
from metrics import inception, runner
from test_metrics import needs_weights


def rows(folder):
    return runner.read_rows(os.path.join(folder, runner.METRICS_FILE))


def run_main(**flags):
    parse_flags(**flags)
    main.main(["main.py"])


def scalar_tags(log_dir):
    tags = set()
    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            tags.update(v.tag for v in tf.compat.v1.Event.FromString(record.numpy()).summary.value)
    return tags


@pytest.fixture(scope="module")
def trained_with_metrics(tmp_path_factory):
    """8 steps over 2 epochs on 32 of 40 faces (8 held out), nn8 and detect4 measured while training; trained once
    for this file (the tests after the first only add lines to its metrics.jsonl)."""
    root = tmp_path_factory.mktemp("metrics_run")
    write_faces(str(root / "data" / "faces"), 40)
    f = parse_flags(**TINY, data_dir=str(root / "data"), out_dir=str(root / "out"), seed=7, train=None, epoch=2,
                    ckpt_freq=2, sample_freq=0, log_freq=1, holdout=0.2, metrics="nn8,detect4", metrics_freq=3)
    train.train(f)
    return f, os.path.join(f["out_dir"], f["out_name"])


def test_training_measures_at_checkpoints_logs_and_plots(trained_with_metrics):
    _, run = trained_with_metrics
    measured = [r for r in rows(run) if r["source"] == "training"]
    # Checkpoints at steps 2, 4, 6, 8: the first past 3, the first past 6, and the end of training.
    assert [(r["step"], r["metric"]) for r in measured] == [(s, m) for s in (4, 6, 8) for m in ("nn8", "detect4")]
    nn_row = measured[0]
    assert nn_row["source"] == "training" and nn_row["seed"] == 7 and nn_row["num_samples"] == 8
    assert nn_row["num_reference"] == 32 and "holdout.txt" in nn_row["results"]["heldout_source"]
    assert nn_row["results"]["heldout"] == 8 and nn_row["results"]["searched"] == 32
    assert 0 < nn_row["value"] == nn_row["results"]["ratio"] and len(nn_row["reference"]) == 16
    detect_row = measured[1]
    assert 0 <= detect_row["value"] <= 1 and detect_row["results"]["real_count"] == 4
    assert detect_row["results"]["detector"] == "cnn"  # the default --metrics_detector
    assert {"metrics/nn8", "metrics/detect4"} <= scalar_tags(os.path.join(run, "logs"))
    assert os.path.getsize(os.path.join(run, "metrics.png")) > 1000


def test_metrics_on_a_run_cache_the_reference_and_measure_its_snapshots(trained_with_metrics, monkeypatch):
    needs_weights()
    f, run = trained_with_metrics
    before = len(rows(run))
    calls = []
    real_features = inception.features
    monkeypatch.setattr(inception, "features", lambda images, **kw: calls.append(len(images)) or
                        real_features(images, **kw))
    common = dict(out_dir=f["out_dir"], data_dir=f["data_dir"], output_height=16, metrics_ref_num=6)
    run_main(metrics="fid4,kid4,pr4,nn4", seed=3, **common)
    assert calls == [4, 6]  # the generated images once for fid, kid and pr; the reference once
    new = rows(run)[before:]
    assert [r["metric"] for r in new] == ["fid4", "kid4", "pr4", "nn4"]
    assert all(r["source"] == "offline" and r["step"] == 8 and r["seed"] == 3 and r["num_reference"] == 6
               for r in new)
    assert new[0]["value"] > 0 and new[2]["results"]["features"] == "Inception pool3"
    run_main(metrics="fid4", seed=4, **common)
    assert calls == [4, 6, 4]  # the reference's features came from the cache
    assert rows(run)[-1]["reference"] == new[0]["reference"]

    # Every epoch snapshot, one line each with its epoch; a second sweep finds nothing left to do.
    run_main(metrics="nn6", metrics_snapshots=None, **common)
    snap = [r for r in rows(run) if r["source"] == "snapshot"]
    assert [(r["snapshot"], r["epoch"], r["step"], r["images_seen"]) for r in snap] == [
        ("epoch_0001", 1, 4, 32), ("epoch_0002", 2, 8, 64)]
    count = len(rows(run))
    run_main(metrics="nn6", metrics_snapshots=None, **common)
    assert len(rows(run)) == count
    # detect is done per detector: HOG's lines do not stand for the CNN's, and a repeat is skipped.
    run_main(metrics="detect2", metrics_snapshots=None, metrics_detector="hog", **common)
    run_main(metrics="detect2", metrics_snapshots=None, **common)
    run_main(metrics="detect2", metrics_snapshots=None, **common)
    assert [r["results"]["detector"] for r in rows(run)[count:]] == ["hog", "hog", "cnn", "cnn"]
    count = len(rows(run))
    # One snapshot folder given as --checkpoint_dir: its line goes to its run's metrics.jsonl, with its epoch.
    run_main(metrics="nn6", checkpoint_dir=os.path.join(run, "snapshots", "epoch_0001"), **common)
    last = rows(run)[-1]
    assert (last["source"], last["epoch"], last["step"], last["images_seen"]) == ("offline", 1, 4, 32)
    assert len(rows(run)) == count + 1

    os.unlink(os.path.join(run, "metrics.png"))
    run_main(metrics_plot=None, **{k: v for k, v in common.items() if k != "metrics_ref_num"})
    assert os.path.isfile(os.path.join(run, "metrics.png"))


def test_a_weights_folder_is_measured_into_the_sample_folder_never_beside_it(tmp_path, face_dir, monkeypatch):
    """The shipped generator's case: reference settings from generator.json's train_flags, --data_dir on top."""
    cfg = model.ModelConfig(output_height=16, output_width=16, gf_dim=4, df_dim=4, z_dim=6)
    shipped = str(tmp_path / "shipped")
    train_flags = dict(data_dir=str(tmp_path / "moved"), dataset="faces", input_fname_pattern="*.jpg",
                       input_height=30, input_width=30, crop=True)
    model.save_generator_weights(model.make_generator(cfg), cfg, shipped, step=3, train_flags=train_flags)
    monkeypatch.setattr(runs, "SHIPPED_GENERATOR", shipped)
    listing = sorted(os.listdir(shipped))
    common = dict(out_dir=str(tmp_path / "out"), sample_dir=str(tmp_path / "samples"), metrics="nn5,detect3")
    with pytest.raises(SystemExit):  # train_flags' data_dir is gone
        run_main(**common)
    run_main(data_dir=face_dir, **common)
    measured = rows(str(tmp_path / "samples"))
    assert [r["metric"] for r in measured] == ["nn5", "detect3"] and measured[0]["step"] == 3
    assert "center crop 30x30" in measured[0]["reference_images"] and measured[0]["num_reference"] == 40
    assert "seeded slice" in measured[0]["results"]["heldout_source"]
    # --metrics_ref: another folder, cropped as the generator was trained.
    other = os.path.join(str(tmp_path), "other")
    write_faces(other, 12, seed=3)
    run_main(metrics_ref=other, **{**common, "metrics": "nn5"})
    last = rows(str(tmp_path / "samples"))[-1]
    assert last["num_reference"] == 12 and other in last["reference_images"]
    assert "center crop 30x30" in last["reference_images"] and last["reference"] != measured[0]["reference"]
    assert sorted(os.listdir(shipped)) == listing


def test_bad_metrics_flags_are_refused_before_any_work(tmp_path):
    for flags, message in [(dict(metrics="fid"), "unknown metric"), (dict(metrics="is50k"), "unknown metric"),
                           (dict(metrics_snapshots=None), "needs --metrics"),
                           (dict(train=None, metrics="nn"), "--metrics_freq"),
                           (dict(metrics="nn", metrics_ref_num=-1), "at least 0")]:
        with pytest.raises(ValueError, match=message):
            parse_flags(out_dir=str(tmp_path), **flags)


def test_metrics_jsonl_survives_a_damaged_line(tmp_path):
    path = str(tmp_path / runner.METRICS_FILE)
    runner.append_rows(path, [{"metric": "nn", "value": 1.0}])
    with open(path, "a") as f:
        f.write('{"metric": "fid2k", "val')  # a line cut short
    runner.append_rows(path, [{"metric": "fid2k", "value": 3.0}])
    assert [r["metric"] for r in runner.read_rows(path)] == ["nn", "fid2k"]
    assert json.loads(open(path).read().splitlines()[0]) == {"metric": "nn", "value": 1.0}
    assert np.isfinite([r["value"] for r in runner.read_rows(path)]).all()
