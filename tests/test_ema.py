"""The generator's moving average (--ema_kimg): its update rule, exact resume, and what draws the faces."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import model
import runs
import train
from model import ModelConfig


def _beta(step, batch, kimg):
    """stylegan2-ada's rule, written out independently: half-life min(kimg * 1000, 5 % of the images seen)."""
    return 0.5 ** (batch / max(min(kimg * 1000, step * batch * 0.05), 1e-8))


def test_the_average_follows_its_rule_step_by_step():
    cfg = ModelConfig(output_height=16, output_width=16, gf_dim=8, df_dim=8, z_dim=10)
    batch, kimg = 8, 0.02
    gan = model.DCGAN(cfg, precision="float32", seed=3, batches_per_epoch=100, ema_kimg=kimg, batch_size=batch)
    for average, weight in zip(gan.generator_ema.weights, gan.generator.weights):
        np.testing.assert_array_equal(average.numpy(), weight.numpy())  # it starts at the initial weights
    images = np.random.default_rng(0).integers(0, 256, (batch * 12, 16, 16, 3), dtype=np.uint8)
    iterator = iter(tf.data.Dataset.from_tensor_slices(images).batch(batch))
    expected = [v.numpy().astype(np.float64) for v in gan.generator.weights]
    for step in range(1, 13):
        gan.train_loop(iterator, tf.constant(1, tf.int32), tf.constant(False))
        b = _beta(step, batch, kimg)
        expected = [w.numpy() + b * (e - w.numpy()) for e, w in zip(expected, gan.generator.weights)]
    assert _beta(12, batch, kimg) > 0.2  # late steps really average (not a copy of the trained weights)
    for e, average, weight in zip(expected, gan.generator_ema.weights, gan.generator.weights):
        np.testing.assert_allclose(average.numpy(), e, rtol=1e-5, atol=1e-6, err_msg=average.path)
    assert any(not np.allclose(a.numpy(), w.numpy()) for a, w in zip(gan.generator_ema.weights,
                                                                    gan.generator.weights))
    # Faces come from the average: the compiled sampler equals the average run by hand.
    z = tf.constant(model.sample_z(cfg.z_dist, 4, 10, np.random.default_rng(1)))
    np.testing.assert_allclose(gan.generate(z).numpy(), gan.generator_ema(z, training=False).numpy(), atol=1e-6)
    for step in (1, 30, 1000):  # the ramp-up, then the full half-life
        assert float(gan.ema_beta(tf.constant(step, tf.int64))) == pytest.approx(_beta(step, batch, kimg), rel=1e-5)
    with pytest.raises(ValueError, match="ema_kimg"):
        model.DCGAN(cfg, ema_kimg=-1)


def _ema_weights(run_dir):
    reader = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoint"))
    names = sorted(n for n in reader.get_variable_to_shape_map() if n.startswith("generator_ema/"))
    return {n: reader.get_tensor(n) for n in names}


def test_a_run_with_an_average_resumes_exactly_and_is_sampled_from_it(tiny_flags):
    kw = dict(train=None, epoch=2, sample_freq=0, ckpt_freq=0, precision="float32", ema_kimg=0.01)
    first = train.train(tiny_flags(out_name="a", max_steps=4, **kw))
    resumed = train.train(tiny_flags(out_name="a", max_steps=3, **kw))
    straight = train.train(tiny_flags(out_name="b", max_steps=7, **kw))
    assert first["step"] == 4 and resumed["step"] == straight["step"] == 7
    a, b = _ema_weights(resumed["run_dir"]), _ema_weights(straight["run_dir"])
    assert a and a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # The epoch snapshot and a checkpoint's sampler hold the average, not the trained weights.
    done = train.train(tiny_flags(out_name="b", **kw))
    assert done["epoch"] == 2
    run = done["run_dir"]
    snapshot = os.path.join(run, "snapshots", "epoch_0002")
    assert json.load(open(os.path.join(snapshot, "generator.json")))["ema_kimg"] == 0.01
    shipped, _, _ = model.load_generator_weights(snapshot)
    src = runs.load_from_checkpoint(os.path.join(run, "checkpoint"), run)
    reader = tf.train.load_checkpoint(os.path.join(run, "checkpoint"))
    ema_names = {n for n in reader.get_variable_to_shape_map() if n.startswith("generator_ema/")}
    assert ema_names
    z = model.sample_z("uniform_signed", 4, 10, np.random.default_rng(2))
    np.testing.assert_allclose(src.generator(z, training=False).numpy(), shipped(z, training=False).numpy(),
                               atol=1e-5)


def test_switching_the_average_on_or_off_when_resuming_is_refused(tiny_flags):
    kw = dict(train=None, epoch=1, sample_freq=0, ckpt_freq=0, max_steps=1)
    train.train(tiny_flags(out_name="plain", **kw))
    with pytest.raises(ValueError, match="without a moving average.*--ema_kimg 0"):
        train.train(tiny_flags(out_name="plain", ema_kimg=10, **kw))
    averaged = train.train(tiny_flags(out_name="avg", ema_kimg=10, **kw))
    with pytest.raises(ValueError, match="with a moving average.*--ema_kimg 10"):
        train.train(tiny_flags(out_name="avg", **kw))
    # Nothing was set aside: the refused runs resume as they were.
    assert not os.path.isdir(os.path.join(averaged["run_dir"], "checkpoint", "unreadable"))
    assert train.train(tiny_flags(out_name="avg", ema_kimg=20, **kw))["step"] == 2  # the half-life may change
