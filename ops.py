"""Layer builders for the DCGAN, with the original's initialisers and batch-norm settings (dtype: a Keras policy)."""
import math

import keras
import tensorflow as tf
from keras import layers

WEIGHT_STDDEV = 0.02  # the original's N(0, 0.02) for every weight
BN_MOMENTUM = 0.9  # tf.contrib.layers.batch_norm(decay=0.9)
BN_EPSILON = 1e-5


def conv2d(filters, name, dtype=None):
    """5x5 stride-2 convolution of the discriminator (truncated normal, as the original's conv2d)."""
    return layers.Conv2D(
        filters, 5, strides=2, padding="same", name=name, dtype=dtype,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=WEIGHT_STDDEV),
        bias_initializer="zeros")


def deconv2d(filters, input_size, output_size, name, dtype=None):
    """5x5 stride-2 transposed convolution from input_size=(h, w) to output_size=(h, w).

    The original passed an explicit output shape to tf.nn.conv2d_transpose, so odd sizes (7 -> 14 for
    28-px MNIST) work; Keras reaches the same shapes through output_padding.
    """
    padding = tuple(out - (2 * inp - 1) for inp, out in zip(input_size, output_size))
    if not all(p in (0, 1) for p in padding):
        raise ValueError(f"cannot upsample {input_size} to {output_size} with one stride-2 transposed conv")
    return layers.Conv2DTranspose(
        filters, 5, strides=2, padding="same", output_padding=padding, name=name, dtype=dtype,
        kernel_initializer=keras.initializers.RandomNormal(stddev=WEIGHT_STDDEV),
        bias_initializer="zeros")


def linear(units, name, dtype=None):
    """Fully connected layer (the original's `linear`: N(0, 0.02) matrix, zero bias)."""
    return layers.Dense(
        units, name=name, dtype=dtype,
        kernel_initializer=keras.initializers.RandomNormal(stddev=WEIGHT_STDDEV),
        bias_initializer="zeros")


class FusedBatchNormalization(layers.BatchNormalization):
    """Keras's BatchNormalization (same variables, momentum and epsilon) computed by TensorFlow's fused kernel on
    4-D NHWC inputs (oneDNN on a CPU; cuDNN on a GPU, not measured here). Keras 3 computes batch norm from separate
    moments ops in float32, casting bfloat16 activations up and down around it; the fused kernel takes them as they
    are (its statistics are still float32). On a 2-core CPU this made the whole bf16 training step 1.20x faster
    (BENCHMARKS.md). Other ranks, masks and renorm fall back to Keras's own computation."""

    def call(self, inputs, training=None, mask=None):
        if mask is not None or len(inputs.shape) != 4 or self.axis not in (-1, 3) or self.renorm:
            return super().call(inputs, training=training, mask=mask)
        gamma, beta = tf.convert_to_tensor(self.gamma.value), tf.convert_to_tensor(self.beta.value)
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, is_training=True)
            # The kernel returns the unbiased (n - 1) batch variance; Keras, and so every run before this layer,
            # averages the biased one into the moving variance.
            n = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
            variance = variance * (n - 1.0) / n
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, mean=tf.convert_to_tensor(self.moving_mean.value),
                variance=tf.convert_to_tensor(self.moving_variance.value), epsilon=self.epsilon, is_training=False)
        return outputs


def batch_norm(name, dtype=None, synchronized=False, fused=True):
    """Batch normalisation with the original's decay 0.9, epsilon 1e-5 and a learned scale; synchronized: the
    statistics of the global batch across replicas (--sync_bn) instead of each replica's own. Keras's own layer
    when synchronized (it reduces across replicas) or not fused (a model saved to load without this code)."""
    if synchronized or not fused:
        return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=True, name=name,
                                         dtype=dtype, synchronized=synchronized)
    return FusedBatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=True, name=name, dtype=dtype)


def lrelu(name, dtype=None):
    """Leaky ReLU with slope 0.2."""
    return layers.LeakyReLU(negative_slope=0.2, name=name, dtype=dtype)


def conv_out_size_same(size, stride):
    """Spatial size after a 'same'-padded convolution with this stride (the original's rounding)."""
    return int(math.ceil(float(size) / float(stride)))
