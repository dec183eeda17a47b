"""Generator/discriminator shapes, parameter counts against the original's layer list, initialisers, train step."""
import numpy as np
import pytest
import tensorflow as tf

import model
import ops
from model import ModelConfig


@pytest.mark.parametrize("h,w,c", [(64, 64, 3), (28, 28, 1), (48, 80, 3)])
def test_shapes_any_batch_size(h, w, c):
    cfg = ModelConfig(output_height=h, output_width=w, c_dim=c, gf_dim=8, df_dim=8, z_dim=20)
    G, D = model.make_generator(cfg), model.make_discriminator(cfg)
    for n in (1, 5):  # the batch size is not baked into either network
        images = G(np.zeros((n, 20), np.float32), training=False)
        assert images.shape == (n, h, w, c)
        assert D(images, training=False).shape == (n, 1)
    assert float(tf.reduce_max(tf.abs(images))) <= 1.0  # tanh output


def test_generator_layer_sizes_follow_original_rounding():
    assert model.generator_sizes(64, 64) == [(4, 4), (8, 8), (16, 16), (32, 32), (64, 64)]
    assert model.generator_sizes(28, 28) == [(2, 2), (4, 4), (7, 7), (14, 14), (28, 28)]
    assert model.generator_sizes(48, 80) == [(3, 5), (6, 10), (12, 20), (24, 40), (48, 80)]


def test_parameter_counts_match_original_layer_list():
    cfg = ModelConfig()  # 64x64x3, z 100, gf = df = 64
    k = 5 * 5
    bn = lambda c: 4 * c  # gamma, beta, moving mean, moving variance  # noqa: E731
    expected_g = {"g_h0_lin": 100 * 4 * 4 * 512 + 4 * 4 * 512, "g_bn0": bn(512),
                  "g_h1": k * 512 * 256 + 256, "g_bn1": bn(256),
                  "g_h2": k * 256 * 128 + 128, "g_bn2": bn(128),
                  "g_h3": k * 128 * 64 + 64, "g_bn3": bn(64),
                  "g_h4": k * 64 * 3 + 3}
    expected_d = {"d_h0_conv": k * 3 * 64 + 64,
                  "d_h1_conv": k * 64 * 128 + 128, "d_bn1": bn(128),
                  "d_h2_conv": k * 128 * 256 + 256, "d_bn2": bn(256),
                  "d_h3_conv": k * 256 * 512 + 512, "d_bn3": bn(512),
                  "d_h4_lin": 4 * 4 * 512 + 1}
    for net, expected in ((model.make_generator(cfg), expected_g), (model.make_discriminator(cfg), expected_d)):
        got = {layer.name: layer.count_params() for layer in net.layers if layer.count_params()}
        assert got == expected
        assert net.count_params() == sum(expected.values())


def test_initialisers_and_batch_norm_settings():
    cfg = ModelConfig()
    G, D = model.make_generator(cfg), model.make_discriminator(cfg)
    dense = G.get_layer("g_h0_lin").kernel.numpy()
    assert abs(dense.mean()) < 1e-3 and dense.std() == pytest.approx(0.02, rel=0.03)
    deconv = G.get_layer("g_h1").kernel.numpy()
    assert deconv.std() == pytest.approx(0.02, rel=0.03) and np.abs(deconv).max() > 0.06  # untruncated normal
    conv = D.get_layer("d_h3_conv").kernel.numpy()
    # Truncated at two standard deviations, as tf.truncated_normal_initializer(stddev=0.02).
    assert np.abs(conv).max() <= 0.04 + 1e-6
    assert conv.std() == pytest.approx(0.02 * 0.8796, rel=0.03)
    for net in (G, D):
        for layer in net.layers:
            if hasattr(layer, "bias") and layer.bias is not None:
                assert not np.any(layer.bias.numpy())
            if layer.name.startswith(("g_bn", "d_bn")):
                assert layer.momentum == 0.9 and layer.epsilon == 1e-5 and layer.scale
    assert "d_bn0" not in [layer.name for layer in D.layers]  # no batch norm on D's first conv


@pytest.mark.parametrize("dist,lo,hi", [("uniform_signed", -1, 1), ("uniform_unsigned", 0, 1)])
def test_sample_z_ranges(dist, lo, hi):
    z = model.sample_z(dist, 2000, 10, np.random.default_rng(0))
    assert z.dtype == np.float32 and z.shape == (2000, 10)
    assert z.min() >= lo and z.max() <= hi and z.min() < lo + 0.01 and z.max() > hi - 0.01
    assert model.z_range(dist) == (lo, hi)


def test_sample_z_normal_and_bad_name():
    z = model.sample_z("normal01", 20000, 5, np.random.default_rng(0))
    assert abs(z.mean()) < 0.02 and z.std() == pytest.approx(1.0, rel=0.02)
    with pytest.raises(ValueError, match="uniform_signed"):
        model.sample_z("gaussian", 2, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="z_dist"):
        ModelConfig(z_dist="gaussian")


@pytest.mark.parametrize("g_updates", [1, 2])
def test_train_step_updates_and_losses(g_updates):
    cfg = ModelConfig(output_height=16, output_width=16, gf_dim=8, df_dim=8, z_dim=10)
    gan = model.DCGAN(cfg, g_updates=g_updates)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(-1, 1, (8, 16, 16, 3)).astype(np.float32))
    g_before = [v.numpy().copy() for v in gan.generator.trainable_variables]
    moving_before = gan.generator.get_layer("g_bn0").moving_mean.numpy().copy()
    out = gan.train_step(images, tf.constant(model.sample_z(cfg.z_dist, 8, 10, rng)))
    assert int(gan.d_optimizer.iterations) == 1 and int(gan.g_optimizer.iterations) == g_updates
    assert all(np.isfinite(float(out[k])) for k in ("d_loss", "d_loss_real", "d_loss_fake", "g_loss"))
    assert float(out["d_loss"]) == pytest.approx(float(out["d_loss_real"]) + float(out["d_loss_fake"]))
    assert out["d_real"].shape == (8, 1) and 0 <= float(tf.reduce_min(out["d_real"])) <= 1
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(g_before, gan.generator.trainable_variables))
    assert not np.array_equal(moving_before, gan.generator.get_layer("g_bn0").moving_mean.numpy())
    # A different batch size reuses the same graph (the batch dimension is None in the signature).
    gan.train_step(images[:4], tf.constant(model.sample_z(cfg.z_dist, 4, 10, rng)))
    assert gan.train_step.experimental_get_tracing_count() == 1


def test_losses_are_sigmoid_cross_entropy():
    logits = tf.constant([[2.0], [-1.0], [0.5]])
    manual = -np.mean(np.log(1 / (1 + np.exp(-logits.numpy()))))
    assert float(model._bce(logits, 1.0)) == pytest.approx(manual, rel=1e-6)
    manual0 = -np.mean(np.log(1 - 1 / (1 + np.exp(-logits.numpy()))))
    assert float(model._bce(logits, 0.0)) == pytest.approx(manual0, rel=1e-6)


def test_bad_sizes_and_updates_are_refused():
    with pytest.raises(ValueError, match="output_height=8"):
        model.check_output_size(8, 64)
    with pytest.raises(ValueError, match="c_dim"):
        ModelConfig(c_dim=2)
    with pytest.raises(ValueError, match="g_updates"):
        model.DCGAN(ModelConfig(output_height=16, output_width=16, gf_dim=4, df_dim=4), g_updates=0)


def test_generator_weights_roundtrip(tmp_path):
    cfg = ModelConfig(output_height=16, output_width=16, gf_dim=8, df_dim=8, z_dim=10)
    G = model.make_generator(cfg)
    bn = G.get_layer("g_bn1")
    bn.moving_mean.assign(np.linspace(-1, 1, bn.moving_mean.shape[0]).astype(np.float32))
    model.save_generator_weights(G, cfg, str(tmp_path / "g32"), step=12)
    model.save_generator_weights(G, cfg, str(tmp_path / "g16"), dtype="float16", step=12)
    z = model.sample_z(cfg.z_dist, 4, 10, np.random.default_rng(1))
    want = G(z, training=False).numpy()
    G32, cfg32, meta = model.load_generator_weights(str(tmp_path / "g32"))
    assert cfg32 == cfg and meta["step"] == 12
    np.testing.assert_array_equal(G32(z, training=False).numpy(), want)
    G16, _, meta16 = model.load_generator_weights(str(tmp_path / "g16"))
    assert meta16["dtype"] == "float16"
    np.testing.assert_allclose(G16(z, training=False).numpy(), want, atol=5e-3)
    with pytest.raises(FileNotFoundError, match="generator.json"):
        model.load_generator_weights(str(tmp_path / "nothing"))
    other = ModelConfig(output_height=16, output_width=16, gf_dim=4, df_dim=4, z_dim=10)
    model.save_generator_weights(model.make_generator(other), other, str(tmp_path / "g4"))
    meta4 = str(tmp_path / "g4" / "generator.json")
    import json
    info = json.load(open(meta4))
    info["model"]["gf_dim"] = 8
    json.dump(info, open(meta4, "w"))
    with pytest.raises(ValueError, match="shape"):
        model.load_generator_weights(str(tmp_path / "g4"))


@pytest.mark.parametrize("cfg,precision", [
    (ModelConfig(output_height=16, output_width=16, gf_dim=8, df_dim=8, z_dim=10), "float32"),
    (ModelConfig(output_height=16, output_width=16, gf_dim=8, df_dim=8, z_dim=10), "mixed_bfloat16"),
    (ModelConfig(output_height=28, output_width=28, c_dim=1, y_dim=10, gf_dim=8, df_dim=8, gfc_dim=16, dfc_dim=16,
                 z_dim=10), "float32")], ids=["faces", "faces-bfloat16-wide", "conditional"])
def test_first_g_update_reuses_the_d_updates_fake_images(cfg, precision, capfd, monkeypatch):
    """The first G update reuses the D update's G(z) (one generator pass fewer in the graph) and trains exactly as
    recomputing it: the same weights, optimizer state and batch-norm moving statistics after 3 steps."""
    monkeypatch.setattr(ops, "amx_cpu", lambda: True)  # the wide layout in bfloat16 on any CPU
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, cfg.output_height, cfg.output_width, cfg.c_dim), dtype=np.uint8)
    data = (images, np.arange(8) % 10) if cfg.y_dim else images
    results, generator_passes = [], []
    for reuse in (True, False):
        tf.keras.utils.set_random_seed(0)
        gan = model.DCGAN(cfg, g_updates=2, seed=3, precision=precision)
        assert gan.reuse_fake
        gan.reuse_fake = reuse
        gan.train_loop(iter(tf.data.Dataset.from_tensors(data).repeat()), tf.constant(3, tf.int32))
        results.append([v.numpy() for v in gan.generator.weights + gan.discriminator.weights
                        + gan.g_adam.variables + gan.d_adam.variables])
        args = [tf.zeros([8, cfg.output_height, cfg.output_width, cfg.c_dim]), tf.zeros([8, cfg.z_dim])]
        graph = gan.train_step.get_concrete_function(*args + ([tf.zeros([8, 10])] if cfg.y_dim else [])).graph
        # Each generator pass runs its transposed convs forward (Conv2DBackpropInput outside the gradients).
        generator_passes.append(sum(op.type == "Conv2DBackpropInput" and op.name.startswith("generator")
                                    for op in graph.get_operations()))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    layers_per_pass = 2 if cfg.y_dim else 4  # transposed convs in one generator pass
    assert generator_passes == [2 * layers_per_pass, 3 * layers_per_pass]
    # --sync_bn's batch norms are Keras's own, which cannot repeat an update: G(z) is recomputed.
    assert not model.DCGAN(cfg, sync_bn=True).reuse_fake
    if not cfg.y_dim:  # Grappler optimised every graph (in bfloat16 with every 16-px layer in the wide layout);
        # the conditional D's concat after d_h0's LeakyReLU trips Grappler's remapper, with or without ops' layers
        assert "remapper failed" not in capfd.readouterr().err
