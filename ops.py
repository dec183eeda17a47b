"""Layer builders for the DCGAN, with the original's initialisers and batch-norm settings (dtype: a Keras policy)."""
import math

import keras
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


def batch_norm(name, dtype=None, synchronized=False):
    """Batch normalisation with the original's decay 0.9, epsilon 1e-5 and a learned scale; synchronized: the
    statistics of the global batch across replicas (--sync_bn) instead of each replica's own."""
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=True, name=name, dtype=dtype,
                                     synchronized=synchronized)


def lrelu(name, dtype=None):
    """Leaky ReLU with slope 0.2."""
    return layers.LeakyReLU(negative_slope=0.2, name=name, dtype=dtype)


def conv_out_size_same(size, stride):
    """Spatial size after a 'same'-padded convolution with this stride (the original's rounding)."""
    return int(math.ceil(float(size) / float(stride)))
