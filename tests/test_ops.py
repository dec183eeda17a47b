"""The layers in ops.py that compute faster than Keras's own (fused batch norm, wide-layout convolutions) compute
what Keras's layers do, with the same variables, and take their fast path where they should."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import ops


def _close(got, want, atol):
    got, want = (np.asarray(tf.cast(t, tf.float32)) for t in (got, want))
    np.testing.assert_allclose(got, want, atol=atol * max(1.0, float(np.abs(want).max())))


@pytest.mark.parametrize("shape", [(6, 5, 4, 7), (9, 7)])
@pytest.mark.parametrize("dtype,atol", [("float32", 2e-5), ("mixed_bfloat16", 0.05)])
def test_fused_batch_norm_computes_what_keras_does(dtype, atol, shape):
    """ops.FusedBatchNormalization (TF's fused kernel) against Keras's BatchNormalization with the same settings:
    training outputs, their gradients, the moving statistics after two updates, and inference outputs, on NHWC
    maps and on [batch, features] (the conditional generator's)."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(3.0, 2.0, shape).astype(np.float32))
    keras_bn = layers.BatchNormalization(momentum=ops.BN_MOMENTUM, epsilon=ops.BN_EPSILON, dtype=dtype)
    fused_bn = ops.batch_norm("bn", dtype)
    assert isinstance(fused_bn, ops.FusedBatchNormalization)
    for bn in (keras_bn, fused_bn):
        bn.build(x.shape)
    keras_bn.gamma.assign(rng.uniform(0.5, 1.5, 7).astype(np.float32))
    keras_bn.beta.assign(rng.uniform(-1, 1, 7).astype(np.float32))
    fused_bn.set_weights(keras_bn.get_weights())
    weight = tf.constant(rng.normal(size=shape).astype(np.float32))
    results = []
    for bn in (keras_bn, fused_bn):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = bn(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * weight)
        grads = tape.gradient(loss, [x, bn.gamma, bn.beta])
        bn(x * 0.5 + 1.0, training=True)
        assert y.dtype == bn.compute_dtype
        results.append([y, *grads, bn.moving_mean, bn.moving_variance, bn(x, training=False)])
    for want, got in zip(*results):
        _close(got, want, atol)
    # A synchronized (--sync_bn) batch norm is Keras's own, which reduces across replicas.
    assert not isinstance(ops.batch_norm("bn", synchronized=True), ops.FusedBatchNormalization)


def test_repeated_moving_updates_equal_repeated_calls():
    """repeat_moving_updates(model, 2): one training call moves the statistics as two calls on the batch do."""
    x = tf.constant(np.random.default_rng(1).normal(2.0, 3.0, (8, 4, 4, 5)).astype(np.float32))

    def net():
        inputs = keras.Input((4, 4, 5))
        return keras.Model(inputs, ops.batch_norm("bn")(inputs))
    once, twice = net(), net()
    twice(x, training=True)
    twice(x, training=True)
    with ops.repeat_moving_updates(once, 2):
        once(x, training=True)
    for a, b in zip(once.get_layer("bn").non_trainable_weights, twice.get_layer("bn").non_trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    assert once.get_layer("bn").moving_updates == 1  # restored on leaving
    once(x, training=True)
    assert not np.allclose(once.get_layer("bn").moving_mean.numpy(), twice.get_layer("bn").moving_mean.numpy())
    inputs = keras.Input((4, 4, 5))
    keras_bn = keras.Model(inputs, ops.batch_norm("bn", portable=True)(inputs))
    with pytest.raises(ValueError, match="every batch norm fused"):
        with ops.repeat_moving_updates(keras_bn, 2):
            pass


def _forward_backward(layer, weight):
    """A function of x: the layer's output and the gradients of sum(output * weight) wrt x, kernel and bias."""
    def fn(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * weight)
        return [y, *tape.gradient(loss, [x, layer.kernel, layer.bias])]
    return fn


def _tolerances(atol):
    """For the output, input gradient, kernel gradient and bias gradient: the bias gradient sums every position,
    which in bfloat16 (Keras's own layer too) strays further from float32's sum."""
    return [atol, atol, atol, atol if atol < 0.01 else 4 * atol]


def _wide_ops(fn, *args):
    """{op type: whether it runs in the wide layout (batch 1)} for the convolution ops in fn's graph."""
    graph = tf.function(fn).get_concrete_function(*args).graph
    found = {}
    for op in graph.get_operations():
        if op.type in ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"):
            data = op.inputs[2] if op.type == "Conv2DBackpropInput" else op.inputs[0]
            found.setdefault(op.type, set()).add(data.shape[0] == 1)
    return {k: v.pop() if len(v) == 1 else v for k, v in found.items()}


def _all(wide):
    return {op: wide for op in ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")}


@pytest.fixture(params=[True, False], ids=["amx", "no-amx"])
def amx(request, monkeypatch):
    """Run as on a CPU with AMX (where the wide layout applies) and without, whatever this machine has."""
    monkeypatch.setattr(ops, "amx_cpu", lambda: request.param)
    return request.param


@pytest.mark.parametrize("height,width", [(8, 8), (5, 8), (14, 14), (16, 16), (32, 32), (7, 7)])
@pytest.mark.parametrize("dtype,atol", [("float32", 1e-5), ("mixed_bfloat16", 0.03)])
def test_wide_conv_computes_what_keras_does(height, width, dtype, atol, amx):
    """D's conv: output, input gradient and kernel/bias gradients equal Keras's Conv2D (in float32, so bfloat16 is
    held to the exact result, not to Keras's own bfloat16 rounding), for a batch size known only when it runs."""
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=(3, height, width, 6)).astype(np.float32))
    ours = ops.conv2d(10, "c", dtype)
    theirs = ops.conv2d(10, "c", "float32", portable=True)  # bfloat16 is held to float32's result
    assert type(theirs) is layers.Conv2D and type(ours) is ops.WideConv2D
    for layer in (ours, theirs):
        layer.build(x.shape)
    theirs.set_weights([w + rng.normal(size=w.shape).astype(np.float32) * 0.1 for w in ours.get_weights()])
    ours.set_weights(theirs.get_weights())
    weight = tf.constant(rng.normal(size=ours.compute_output_shape(x.shape)).astype(np.float32))
    any_batch = tf.function(_forward_backward(ours, weight), input_signature=[tf.TensorSpec([None, *x.shape[1:]])])
    for got, want, tolerance in zip(any_batch(x), _forward_backward(theirs, weight)(x), _tolerances(atol)):
        _close(got, want, tolerance)
    # The conv, its input gradient (a transposed conv) and its kernel gradient run wide together, where the small
    # side is at most WIDE_MAX_WIDTH (8) wide, in bfloat16, on even widths, on an AMX CPU.
    wide = width % 2 == 0 and width // 2 <= ops.WIDE_MAX_WIDTH and dtype == "mixed_bfloat16" and amx
    assert _wide_ops(_forward_backward(ours, weight), x) == _all(wide)


@pytest.mark.parametrize("size,out", [((4, 4), (8, 8)), ((4, 4), (7, 8)), ((8, 8), (16, 16)), ((7, 7), (14, 14)),
                                      ((4, 4), (7, 7)), ((16, 16), (32, 32))])
@pytest.mark.parametrize("dtype,atol", [("float32", 1e-5), ("mixed_bfloat16", 0.03)])
def test_wide_conv_transpose_computes_what_keras_does(size, out, dtype, atol, amx):
    """G's transposed conv (odd output sizes too, through output_padding) against Keras's Conv2DTranspose; the
    portable one is Keras's own layer. Its forward pass is the transposed conv, its input gradient the conv."""
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=(3, *size, 6)).astype(np.float32))
    ours = ops.deconv2d(10, size, out, "d", dtype)
    theirs = ops.deconv2d(10, size, out, "d", "float32", portable=True)
    assert type(theirs) is layers.Conv2DTranspose and type(ours) is ops.WideConv2DTranspose
    for layer in (ours, theirs):
        layer.build(x.shape)
    theirs.set_weights([w + rng.normal(size=w.shape).astype(np.float32) * 0.1 for w in ours.get_weights()])
    ours.set_weights(theirs.get_weights())
    weight = tf.constant(rng.normal(size=(3, *out, 10)).astype(np.float32))
    any_batch = tf.function(_forward_backward(ours, weight), input_signature=[tf.TensorSpec([None, *x.shape[1:]])])
    results = any_batch(x)
    assert results[0].shape == (3, *out, 10) and results[0].dtype == ours.compute_dtype
    for got, want, tolerance in zip(results, _forward_backward(theirs, weight)(x), _tolerances(atol)):
        _close(got, want, tolerance)
    wide = out[1] == 2 * size[1] and size[1] <= ops.WIDE_MAX_WIDTH and dtype == "mixed_bfloat16" and amx
    assert _wide_ops(_forward_backward(ours, weight), x) == _all(wide)


def test_fused_adam_updates_as_keras_adam_does():
    """ops.FusedAdam (TensorFlow's ResourceApplyAdam) against Keras's Adam with the original's settings: weights and
    both moments after 5 steps of the same gradients, and the same slot variables (so checkpoints carry over)."""
    rng = np.random.default_rng(4)
    start = [rng.normal(size=s).astype(np.float32) for s in ((5, 5, 3, 4), (4,), (7,))]
    grads = [[tf.constant(rng.normal(size=w.shape).astype(np.float32) * 10.0 ** -k) for w in start]
             for k in range(5)]  # gradients of falling size, so the moments' history matters
    results = []
    for optimizer in (keras.optimizers.Adam(2e-4, beta_1=0.5, epsilon=1e-8),
                      ops.FusedAdam(2e-4, beta_1=0.5, epsilon=1e-8)):
        weights = [keras.Variable(w) for w in start]
        step = tf.function(lambda g: optimizer.apply_gradients(zip(g, weights)))
        for g in grads:
            step(g)
        results.append([w.numpy() for w in weights] + [v.numpy() for v in optimizer.variables])
    assert len(results[0]) == len(results[1])  # iterations, learning rate, m and v per weight
    for want, got in zip(*results):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-9)
    assert not np.allclose(results[1][0], start[0])
