"""Layer builders for the DCGAN, with the original's initialisers and batch-norm settings (dtype: a Keras policy)."""
import contextlib
import math

import keras
import tensorflow as tf
from keras import layers

WEIGHT_STDDEV = 0.02  # the original's N(0, 0.02) for every weight
BN_MOMENTUM = 0.9  # tf.contrib.layers.batch_norm(decay=0.9)
BN_EPSILON = 1e-5


def conv2d(filters, name, dtype=None, matmul_filter_grad=True):
    """5x5 stride-2 convolution of the discriminator (truncated normal, as the original's conv2d).
    matmul_filter_grad=False: Keras's own layer (see MatmulGradConv2D)."""
    return (MatmulGradConv2D if matmul_filter_grad else layers.Conv2D)(
        filters, 5, strides=2, padding="same", name=name, dtype=dtype,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=WEIGHT_STDDEV),
        bias_initializer="zeros")


def deconv2d(filters, input_size, output_size, name, dtype=None, portable=False):
    """5x5 stride-2 transposed convolution from input_size=(h, w) to output_size=(h, w).

    The original passed an explicit output shape to tf.nn.conv2d_transpose, so odd sizes (7 -> 14 for
    28-px MNIST) work; Keras reaches the same shapes through output_padding. portable: Keras's own layer (the
    same weights), for a model file that loads without this code.
    """
    padding = tuple(out - (2 * inp - 1) for inp, out in zip(input_size, output_size))
    if not all(p in (0, 1) for p in padding):
        raise ValueError(f"cannot upsample {input_size} to {output_size} with one stride-2 transposed conv")
    return (layers.Conv2DTranspose if portable else MatmulGradConv2DTranspose)(
        filters, 5, strides=2, padding="same", output_padding=padding, name=name, dtype=dtype,
        kernel_initializer=keras.initializers.RandomNormal(stddev=WEIGHT_STDDEV),
        bias_initializer="zeros")


# oneDNN's backward-weights kernel is slow when the convolution's small side has few positions: for the 8x8 <-> 4x4
# layer of the 64-px DCGAN (D's d_h3, G's g_h1) it took 43 ms where one matmul of patches takes 13 ms, while at
# 16x16 <-> 8x8 oneDNN is faster (16 vs 21 ms; bench/conv_filter_grad.py). So the weight gradient goes through a
# matmul at or below this many positions, on a CPU only (cuDNN is another story, and unmeasured).
MATMUL_FILTER_GRAD_MAX_POSITIONS = 16


def _use_matmul_filter_grad(layer, small_side):
    """Whether this stride-2 'same' 2-D layer, whose small side is small_side (h, w), takes the matmul path."""
    plain = (layer.data_format == "channels_last" and layer.padding == "same" and getattr(layer, "groups", 1) == 1
             and tuple(layer.dilation_rate) == (1, 1) and None not in small_side)
    return (plain and small_side[0] * small_side[1] <= MATMUL_FILTER_GRAD_MAX_POSITIONS
            and not tf.config.list_logical_devices("GPU"))


def _matmul_filter_grad(images, grads, kernel_shape, strides):
    """The kernel gradient of conv2d(images, kernel, strides, 'SAME') given the gradient of its output: the images'
    patches (kh, kw, cin order, as the kernel) times the output gradient, [n*oh*ow, kh*kw*cin]^T x [n*oh*ow, cout]."""
    kh, kw, cin, cout = kernel_shape
    patches = tf.image.extract_patches(images, [1, kh, kw, 1], [1, *strides, 1], [1, 1, 1, 1], "SAME")
    grad = tf.matmul(tf.reshape(patches, [-1, kh * kw * cin]), tf.reshape(grads, [-1, cout]), transpose_a=True)
    return tf.reshape(grad, kernel_shape)


class MatmulGradConv2D(layers.Conv2D):
    """Keras's Conv2D (same variables) whose kernel gradient is a matmul of patches where oneDNN's is slow."""

    def convolution_op(self, inputs, kernel):
        out_size = [conv_out_size_same(n, s) for n, s in zip(inputs.shape[1:3], self.strides)]
        if len(inputs.shape) != 4 or not _use_matmul_filter_grad(self, out_size):
            return super().convolution_op(inputs, kernel)
        strides = list(self.strides)

        @tf.custom_gradient
        def conv(x, w):
            def grad(dy):
                return (tf.nn.conv2d_transpose(dy, w, tf.shape(x), strides, "SAME"),
                        _matmul_filter_grad(x, dy, w.shape, strides))
            return tf.nn.conv2d(x, w, strides, "SAME"), grad
        return conv(tf.convert_to_tensor(inputs), tf.convert_to_tensor(kernel))


class MatmulGradConv2DTranspose(layers.Conv2DTranspose):
    """Keras's Conv2DTranspose (same variables) whose kernel gradient is a matmul of patches where oneDNN's is
    slow. Its output size is Keras's for 'same' padding: (in - 1) * stride + 1 + output_padding (5x5 kernel)."""

    def call(self, inputs):
        if (len(inputs.shape) != 4 or self.output_padding is None or self.kernel_size != (5, 5)
                or not _use_matmul_filter_grad(self, inputs.shape[1:3])):
            return super().call(inputs)
        strides = list(self.strides)
        out_size = [(n - 1) * s + 1 + p for n, s, p in zip(inputs.shape[1:3], strides, self.output_padding)]

        @tf.custom_gradient
        def conv_transpose(x, w):
            def grad(dy):
                return tf.nn.conv2d(dy, w, strides, "SAME"), _matmul_filter_grad(dy, x, w.shape, strides)
            shape = tf.stack([tf.shape(x)[0], out_size[0], out_size[1], self.filters])
            return tf.nn.conv2d_transpose(x, w, shape, strides, "SAME"), grad
        outputs = conv_transpose(tf.convert_to_tensor(inputs), tf.convert_to_tensor(self.kernel))
        if self.use_bias:
            outputs = outputs + tf.reshape(tf.convert_to_tensor(self.bias), (1, 1, 1, self.filters))
        return outputs if self.activation is None else self.activation(outputs)


def linear(units, name, dtype=None):
    """Fully connected layer (the original's `linear`: N(0, 0.02) matrix, zero bias)."""
    return layers.Dense(
        units, name=name, dtype=dtype,
        kernel_initializer=keras.initializers.RandomNormal(stddev=WEIGHT_STDDEV),
        bias_initializer="zeros")


class FusedBatchNormalization(layers.BatchNormalization):
    """Keras's BatchNormalization (same variables, momentum and epsilon) computed by TensorFlow's fused kernel on
    NHWC inputs and on [batch, features] ones (as [batch, 1, 1, features]): oneDNN on a CPU; cuDNN on a GPU, not
    measured here. Keras 3 computes batch norm from separate moments ops in float32, casting bfloat16 activations up
    and down around it; the fused kernel takes them as they are (its statistics are still float32). On a 2-core
    CPU this made the whole bf16 training step 1.20x faster (BENCHMARKS.md). Other ranks, masks and renorm fall back
    to Keras's own computation.

    moving_updates (set for one call by repeat_moving_updates): how many times a training call folds its batch
    statistics into the moving ones, as that many calls on the same batch would."""

    moving_updates = 1

    def call(self, inputs, training=None, mask=None):
        rank = len(inputs.shape)
        if mask is not None or rank not in (2, 4) or self.axis not in (-1, rank - 1) or self.renorm:
            if self.moving_updates != 1 and training:
                raise ValueError(f"{self.name}: repeated moving updates need the fused path")
            return super().call(inputs, training=training, mask=mask)
        x = inputs if rank == 4 else tf.reshape(inputs, [-1, 1, 1, inputs.shape[-1]])
        gamma, beta = tf.convert_to_tensor(self.gamma.value), tf.convert_to_tensor(self.beta.value)
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=self.epsilon, is_training=True)
            # The kernel returns the unbiased (n - 1) batch variance; Keras, and so every run before this layer,
            # averages the biased one into the moving variance.
            n = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
            variance = variance * (n - 1.0) / n
            for _ in range(self.moving_updates):
                self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
                self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, mean=tf.convert_to_tensor(self.moving_mean.value),
                variance=tf.convert_to_tensor(self.moving_variance.value), epsilon=self.epsilon, is_training=False)
        return outputs if rank == 4 else tf.reshape(outputs, tf.shape(inputs))


def fused_batch_norms(model):
    """model's batch-norm layers if every one is a FusedBatchNormalization, else None."""
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    return norms if all(type(layer) is FusedBatchNormalization for layer in norms) else None


@contextlib.contextmanager
def repeat_moving_updates(model, times):
    """Within: every training call of model's (fused) batch norms updates their moving statistics `times` times,
    as `times` calls on the same batch would. Read when a tf.function traces the call."""
    norms = fused_batch_norms(model)
    if norms is None:
        raise ValueError(f"{model.name}: repeated moving updates need every batch norm fused")
    for layer in norms:
        layer.moving_updates = times
    try:
        yield
    finally:
        for layer in norms:
            layer.moving_updates = 1


def batch_norm(name, dtype=None, synchronized=False, portable=False):
    """Batch normalisation with the original's decay 0.9, epsilon 1e-5 and a learned scale; synchronized: the
    statistics of the global batch across replicas (--sync_bn) instead of each replica's own. Keras's own layer
    when synchronized (it reduces across replicas) or portable (a model saved to load without this code)."""
    if synchronized or portable:
        return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=True, name=name,
                                         dtype=dtype, synchronized=synchronized)
    return FusedBatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=True, name=name, dtype=dtype)


def lrelu(name, dtype=None):
    """Leaky ReLU with slope 0.2."""
    return layers.LeakyReLU(negative_slope=0.2, name=name, dtype=dtype)


def conv_out_size_same(size, stride):
    """Spatial size after a 'same'-padded convolution with this stride (the original's rounding)."""
    return int(math.ceil(float(size) / float(stride)))
