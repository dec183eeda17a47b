"""The tf.distribute strategy a run trains under (--strategy, --devices, TF_CONFIG), and which worker writes."""
import dataclasses
import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")


@dataclasses.dataclass
class Cluster:
    """The strategy and this process's place in it: only the chief writes into the run folder."""
    strategy: object
    worker: int = 0
    num_workers: int = 1

    @property
    def is_chief(self):
        return self.worker == 0

    @property
    def replicas(self):
        return self.strategy.num_replicas_in_sync


def _split_cpu(count):
    """Make `count` logical CPU devices (for MirroredStrategy over one CPU, as tests and benchmarks use it)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    have = tf.config.get_logical_device_configuration(cpu)
    if have is not None and len(have) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        raise ValueError(f"--devices names {count} CPU devices, but TensorFlow's devices were already set up in "
                         "this process; split the CPU before anything else runs (a fresh `python main.py`)") from None


def _mirrored_devices(devices):
    """The device names MirroredStrategy spans: --devices as given (splitting the CPU into as many logical
    devices as it names), else every GPU; a clear error when that is none."""
    names = [d.strip() for d in devices.split(",") if d.strip()]
    if not names:
        gpus = tf.config.list_logical_devices("GPU")
        if not gpus:
            raise ValueError("--strategy mirrored found no GPU on this machine; name the devices with --devices "
                             "(e.g. /gpu:0,/gpu:1, or /cpu:0,/cpu:1 to split the CPU into two replicas)")
        return [g.name for g in gpus]
    cpus = [n for n in names if "cpu" in n.lower()]
    if len(cpus) > 1:
        _split_cpu(len(cpus))
    known = {_kind_and_index(d.name) for d in tf.config.list_logical_devices()}
    for n in names:
        if _kind_and_index(n) not in known:
            shown = ", ".join(f"/{k.lower()}:{i}" for k, i in sorted(known))
            raise ValueError(f"--devices names {n}, which this machine does not have (it has {shown})")
    if len(set(names)) != len(names):
        raise ValueError(f"--devices names a device twice: {devices}")
    return names


def _kind_and_index(name):
    try:
        spec = tf.DeviceSpec.from_string(name if name.startswith("/") else "/" + name)
    except ValueError:
        raise ValueError(f"--devices: {name!r} is not a device name such as /gpu:0 or /cpu:1") from None
    return (spec.device_type or "").upper(), spec.device_index or 0


def read_tf_config():
    """TF_CONFIG as TensorFlow's multi-worker strategy reads it, checked, so a mistake is one clear error."""
    text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        raise ValueError("--strategy multi_worker needs TF_CONFIG: set it on every worker, e.g. "
                         "TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}, "
                         "\"task\": {\"type\": \"worker\", \"index\": 0}}' (index 1 on the second machine)")
    try:
        config = json.loads(text)
    except ValueError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e}): {text[:200]}") from None
    cluster, task = (config.get("cluster"), config.get("task")) if isinstance(config, dict) else (None, None)
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ValueError("TF_CONFIG needs a \"cluster\" and a \"task\" object, e.g. {\"cluster\": {\"worker\": "
                         "[\"host1:12345\", \"host2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}")
    workers = cluster.get("chief", []) + cluster.get("worker", [])
    if not workers or not all(isinstance(w, str) and ":" in w for w in workers):
        raise ValueError(f"TF_CONFIG's cluster must list its workers as \"host:port\" strings, got {cluster}")
    if set(cluster) - {"chief", "worker"}:
        raise ValueError(f"--strategy multi_worker takes a cluster of chief/worker tasks only, got {sorted(cluster)}")
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise ValueError(f"TF_CONFIG's task {task} is not one of its cluster's tasks {cluster}")
    worker = index if kind == "chief" else len(cluster.get("chief", [])) + index
    return worker, len(workers)


def make_cluster(strategy="default", devices="", collective_timeout=300.0):
    """The strategy --strategy names. multi_worker is configured by TF_CONFIG as TensorFlow users know it;
    its collectives time out after collective_timeout seconds, so a dead worker stops the others."""
    if strategy not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if devices and strategy != "mirrored":
        raise ValueError("--devices applies to --strategy mirrored only")
    if strategy == "default":
        return Cluster(tf.distribute.get_strategy())
    if strategy == "mirrored":
        return Cluster(tf.distribute.MirroredStrategy(_mirrored_devices(devices)))
    worker, num_workers = read_tf_config()
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout or None)
    return Cluster(tf.distribute.MultiWorkerMirroredStrategy(communication_options=options), worker, num_workers)


def check_batch(batch_size, replicas):
    if batch_size % replicas:
        raise ValueError(f"--batch_size={batch_size} (the global batch) does not divide over {replicas} replicas; "
                         f"use a multiple of {replicas}, such as {max(replicas, batch_size // replicas * replicas)}")
