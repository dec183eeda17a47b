"""Layer builders for the DCGAN, with the original's initialisers and batch-norm settings (dtype: a Keras policy), and
the fused Adam its optimisers use."""
import contextlib
import functools
import math

import keras
import tensorflow as tf
from keras import layers

import mixed_precision

WEIGHT_STDDEV = 0.02  # the original's N(0, 0.02) for every weight
BN_MOMENTUM = 0.9  # tf.contrib.layers.batch_norm(decay=0.9)
BN_EPSILON = 1e-5


def conv2d(filters, name, dtype=None, portable=False):
    """5x5 stride-2 convolution of the discriminator (truncated normal, as the original's conv2d).
    portable: Keras's own layer (the same weights), for a model file that loads without this code."""
    return (layers.Conv2D if portable else WideConv2D)(
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
    return (layers.Conv2DTranspose if portable else WideConv2DTranspose)(
        filters, 5, strides=2, padding="same", output_padding=padding, name=name, dtype=dtype,
        kernel_initializer=keras.initializers.RandomNormal(stddev=WEIGHT_STDDEV),
        bias_initializer="zeros")


# oneDNN's bfloat16 (AMX) convolutions tile the output's width: where a map is only 4 or 8 positions wide (the
# 64-px DCGAN's 4x4 and 8x8 maps) most of every tile is empty. Laying the batch side by side along the width, each
# image followed by zero columns, turns n images of width w into one of width n * (w + gap): the same convolution
# per image (the zeros stand in for its padding), in full tiles. On a 2-core Xeon with AMX (bench/conv_layouts.py),
# a bfloat16 layer with its gradients ran 2.6x faster wide where its small side is 4 wide, 1.2x where it is 8, and
# 0.6-0.7x at 16 and 32; the whole step (bench/train_throughput.py --wide_max_widths) ran 1.49x with layers up to 8
# wide, 1.44x up to 4, 1.38x up to 16. float32 ran slower wide at every size.
WIDE_MAX_WIDTH = 8
# The gap: 'same' padding of a 5x5 stride-2 conv on an even width pads 1 column before and 2 after; 2 zero columns
# after each image give every image that padding and keep the stride aligned (w + 2 stays even).
WIDE_GAP = 2


def batch_to_width(x, gap):
    """[n, h, w, c] -> [1, h, n * (w + gap), c]: the images side by side, each followed by gap zero columns."""
    h, c = x.shape[1], x.shape[3]
    x = tf.pad(x, [[0, 0], [0, 0], [0, gap], [0, 0]])
    return tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [1, h, -1, c])


def width_to_batch(y, width, block):
    """[1, h, n * block, c] -> [n, h, width, c]: the first width columns of every block (tf.slice, whose gradient
    is a pad, where a strided slice's is a slow scatter)."""
    h, c = y.shape[1], y.shape[3]
    y = tf.slice(tf.reshape(y, [h, -1, block, c]), [0, 0, 0, 0], [-1, -1, width, -1])
    return tf.transpose(y, [1, 0, 2, 3])


@functools.lru_cache(maxsize=None)
def amx_cpu():
    """Whether this CPU has AMX bfloat16 tiles: the kernels the wide layout was measured on (AVX512-BF16 CPUs
    without AMX, such as AMD's Zen 4, run other oneDNN kernels, unmeasured, so they keep the plain layout)."""
    return "amx_bf16" in mixed_precision.cpu_flags()


def _wide_applies(layer, small_width, big_width):
    """Whether a layer takes the wide layout: the DCGAN's 5x5 stride-2 'same' layers on even widths, in bfloat16 on
    an AMX CPU, where the small side is at most WIDE_MAX_WIDTH wide (float32 measured slower; GPUs unmeasured)."""
    return (layer.data_format == "channels_last" and layer.padding == "same" and tuple(layer.strides) == (2, 2)
            and tuple(layer.kernel_size) == (5, 5) and tuple(layer.dilation_rate) == (1, 1)
            and getattr(layer, "groups", 1) == 1 and small_width is not None and big_width == 2 * small_width
            and small_width <= WIDE_MAX_WIDTH and layer.compute_dtype == "bfloat16" and amx_cpu()
            and not tf.config.list_logical_devices("GPU"))


class WideConv2D(layers.Conv2D):
    """Keras's Conv2D (same variables) computed in the wide layout where that is faster (see WIDE_MAX_WIDTH); its
    gradients, TensorFlow's own, then run wide too."""

    def convolution_op(self, inputs, kernel):
        width = inputs.shape[2] if len(inputs.shape) == 4 else None
        if width is None or width % 2 or not _wide_applies(self, width // 2, width):
            return super().convolution_op(inputs, kernel)
        outputs = tf.nn.conv2d(batch_to_width(inputs, WIDE_GAP), kernel, 2, "SAME")
        return width_to_batch(outputs, width // 2, (width + WIDE_GAP) // 2)


class WideConv2DTranspose(layers.Conv2DTranspose):
    """Keras's Conv2DTranspose (same variables) computed in the wide layout where that is faster. Its output size is
    Keras's for 'same' padding: (in - 1) * stride + 1 + output_padding (5x5 kernel)."""

    def call(self, inputs):
        width = inputs.shape[2] if len(inputs.shape) == 4 else None
        if width is None or self.output_padding is None:
            return super().call(inputs)
        out_height, out_width = ((n - 1) * 2 + 1 + p if n is not None else None
                                 for n, p in zip(inputs.shape[1:3], self.output_padding))
        if out_height is None or not _wide_applies(self, width, out_width):
            return super().call(inputs)
        shape = tf.stack([1, out_height, tf.shape(inputs)[0] * (out_width + WIDE_GAP), self.filters])
        outputs = tf.nn.conv2d_transpose(batch_to_width(inputs, WIDE_GAP // 2), self.kernel, shape, 2, "SAME")
        outputs = width_to_batch(outputs, out_width, out_width + WIDE_GAP)
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


class FusedAdam(keras.optimizers.Adam):
    """Keras's Adam (the same variables, hyperparameters and update rule) applied by TensorFlow's fused
    ResourceApplyAdam kernel: one pass over each weight and its two moments where Keras's update runs some ten
    separate elementwise ops over them. AMSGrad and sparse gradients keep Keras's own update."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        # .handle is each replica's own copy inside a tf.distribute update, as Keras's assign_add would use.
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype),
            beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))


def lrelu(name, dtype=None):
    """Leaky ReLU with slope 0.2."""
    return layers.LeakyReLU(negative_slope=0.2, name=name, dtype=dtype)


def conv_out_size_same(size, stride):
    """Spatial size after a 'same'-padded convolution with this stride (the original's rounding)."""
    return int(math.ceil(float(size) / float(stride)))
