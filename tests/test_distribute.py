"""Training on tf.distribute: mirrored over two logical CPUs, two local workers on 127.0.0.1, faults, bad set-ups."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import distribute
import train
from conftest import ROOT, write_faces

TINY_ARGS = ["--output_height=16", "--gf_dim=8", "--df_dim=8", "--z_dim=10", "--batch_size=8", "--seed=7",
             "--noprogress", "--precision=float32", "--snapshot_freq=0", "--sample_freq=0"]


@pytest.fixture
def data_dir(tmp_path):
    write_faces(str(tmp_path / "data" / "faces"), 40)
    return str(tmp_path / "data")


def main_py(*args, env=None, **kw):
    """Start `python main.py args` with a clean environment (no TF_CONFIG unless given)."""
    full = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    full.update(env or {})
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"), *args], cwd=ROOT, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def finish(proc, timeout=240):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def generator_weights(run_dir):
    reader = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoint"))
    return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
            if n.startswith("generator/") and "OPTIMIZER_SLOT" not in n}


def test_replica_batches_split_every_global_batch_the_same_way():
    batches = np.arange(3 * 8).reshape(3, 8)
    import dataset
    one = dataset.replica_batches(batches, 1, 0, 1)
    np.testing.assert_array_equal(one, batches)
    two_local = dataset.replica_batches(batches, 1, 0, 2)  # one worker, two replicas: halves, step by step
    np.testing.assert_array_equal(two_local[:2], [[0, 1, 2, 3], [4, 5, 6, 7]])
    w0, w1 = (dataset.replica_batches(batches, 2, w, 1) for w in (0, 1))  # two workers, one replica each
    np.testing.assert_array_equal(np.concatenate([w0, w1], axis=1), batches)


def test_mirrored_with_sync_bn_matches_one_device(data_dir, tmp_path):
    out = str(tmp_path / "out")
    common = [*TINY_ARGS, "--train", "--epoch=1", f"--data_dir={data_dir}", f"--out_dir={out}"]
    mirrored = [*common, "--strategy=mirrored", "--devices=/cpu:0,/cpu:1"]
    procs = [main_py(*common, "--out_name=one"), main_py(*mirrored, "--out_name=sync", "--sync_bn"),
             main_py(*mirrored, "--out_name=own")]
    for proc in procs:
        code, err = finish(proc)
        assert code == 0, err[-3000:]
    flags = json.load(open(os.path.join(out, "sync", "flags.json")))
    assert flags["replicas"] == 2 and flags["strategy"] == "mirrored" and flags["sync_bn"]
    one, sync, own = (generator_weights(os.path.join(out, name)) for name in ("one", "sync", "own"))
    assert one.keys() == sync.keys() == own.keys() and one
    # The same global batches, z and batch statistics: equal up to the order of float sums (Adam's steps of
    # ~lr amplify those a little); batch norm over each replica's half of the batch ends measurably elsewhere.
    for name in one:
        np.testing.assert_allclose(sync[name], one[name], rtol=1e-3, atol=1e-4, err_msg=name)
    gap = lambda w: max(float(np.abs(w[n] - one[n]).max()) for n in one)  # noqa: E731
    assert gap(own) > 10 * gap(sync)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_workers(common, tmp_path, tag):
    ports = free_ports(2)
    procs = []
    for index in range(2):
        config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
        scratch = tmp_path / f"tmp_{tag}_{index}"
        scratch.mkdir()
        procs.append(main_py(*common, env={"TF_CONFIG": json.dumps(config), "TMPDIR": str(scratch)}))
    return procs


def test_two_local_workers_train_resume_and_survive_a_dead_worker(data_dir, tmp_path):
    out = str(tmp_path / "out")
    common = [*TINY_ARGS, "--train", f"--data_dir={data_dir}", f"--out_dir={out}", "--strategy=multi_worker",
              "--collective_timeout=30", "--ckpt_freq=2", "--steps_per_loop=1"]
    run_dir = os.path.join(out, "faces_16")
    for proc in start_workers([*common, "--epoch=2", "--max_steps=3"], tmp_path, "a"):
        code, err = finish(proc)
        assert code == 0, err[-3000:]
    assert json.load(open(os.path.join(run_dir, "flags.json")))["workers"] == 2
    step = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoint")).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")
    assert int(step) == 3
    assert not os.listdir(tmp_path / "tmp_a_1")  # the other worker's scratch folder is gone again
    # A rerun resumes at the recorded step (and epoch position) on both workers.
    for proc in start_workers([*common, "--epoch=2", "--max_steps=4"], tmp_path, "b"):
        code, err = finish(proc)
        assert code == 0, err[-3000:]
    log = open(os.path.join(run_dir, "log.txt")).read()
    assert "resumed" in log and "stopped at step 7 (epoch 1, batch 2)" in log
    ckpt_dir = os.path.join(run_dir, "checkpoint")

    def wait_past(step):
        deadline = time.time() + 180
        while tf.train.latest_checkpoint(ckpt_dir).endswith(f"ckpt-{step}") and time.time() < deadline:
            time.sleep(0.5)

    # Pre-emption: SIGTERM to one worker stops both at the same loop boundary, with a checkpoint there.
    chief, other = start_workers([*common, "--epoch=400"], tmp_path, "p")
    wait_past(7)
    other.send_signal(signal.SIGTERM)
    for proc in (other, chief):
        code, err = finish(proc, timeout=150)
        assert code == 130 and "Run the same command to resume" in err, err[-3000:]
    stopped = int(os.path.basename(tf.train.latest_checkpoint(ckpt_dir)).split("-")[1])
    assert stopped > 7
    # Kill one worker mid-run: the other stops with a clear error within a bounded time, and a rerun resumes.
    chief, other = start_workers([*common, "--epoch=400"], tmp_path, "c")
    wait_past(stopped)
    other.send_signal(signal.SIGKILL)
    other.communicate()
    killed_at = time.time()
    code, err = finish(chief, timeout=150)
    assert code == 1 and "another worker stopped answering" in err and "Traceback" not in err, err[-3000:]
    assert time.time() - killed_at < 120
    last = int(os.path.basename(tf.train.latest_checkpoint(ckpt_dir)).split("-")[1])
    assert last > stopped
    for proc in start_workers([*common, "--epoch=400", "--max_steps=1"], tmp_path, "d"):
        code, err = finish(proc)
        assert code == 0, err[-3000:]
    assert f"stopped at step {last + 1} " in open(os.path.join(run_dir, "log.txt")).read()


def test_a_worker_other_than_the_chief_writes_nothing_into_the_run_folder(tiny_flags, monkeypatch, tmp_path):
    train.train(tiny_flags(train=None, epoch=1, max_steps=2, precision="float32"))  # the chief's run so far
    run_dir = os.path.join(str(tmp_path / "out"), "faces_16")
    before = {os.path.join(r, f): os.stat(os.path.join(r, f)).st_mtime_ns for r, _, fs in os.walk(run_dir) for f in fs}
    monkeypatch.setattr(train.distribute, "make_cluster",
                        lambda *a: distribute.Cluster(tf.distribute.get_strategy(), worker=1, num_workers=2))
    result = train.train(tiny_flags(train=None, epoch=1, precision="float32", sample_freq=1, ckpt_freq=1))
    assert result["step"] == 5  # it resumed from the chief's checkpoint and trained
    after = {os.path.join(r, f): os.stat(os.path.join(r, f)).st_mtime_ns for r, _, fs in os.walk(run_dir) for f in fs}
    assert after == before


@pytest.mark.parametrize("args,env,message", [
    (["--strategy=multi_worker"], {"TF_CONFIG": "{not json"}, "TF_CONFIG is not valid JSON"),
    (["--strategy=multi_worker"], {"TF_CONFIG": '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": '
                                                '"worker", "index": 3}}'}, "is not one of its cluster's tasks"),
    (["--strategy=multi_worker"], {}, "needs TF_CONFIG"),
    (["--strategy=mirrored", "--devices=/cpu:0,/cpu:1", "--batch_size=7"], {}, "does not divide over 2 replicas"),
    (["--strategy=mirrored"], {"CUDA_VISIBLE_DEVICES": ""}, "found no GPU"),
    (["--strategy=mirrored", "--devices=/gpu:3"], {"CUDA_VISIBLE_DEVICES": ""}, "which this machine does not have"),
])
def test_bad_set_ups_are_one_clear_error(data_dir, tmp_path, args, env, message):
    proc = main_py("--train", f"--data_dir={data_dir}", f"--out_dir={tmp_path / 'out'}", *TINY_ARGS, *args, env=env)
    code, err = finish(proc, timeout=120)
    assert code == 1 and message in err and "Traceback" not in err, err[-3000:]
