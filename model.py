"""The DCGAN: generator, discriminator, the training step, z sampling and generator weight files."""
import contextlib
import dataclasses
import json
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers

import conditional
import ops
import mixed_precision
import utils
from ops import batch_norm, conv2d, conv_out_size_same, deconv2d, linear, lrelu

Z_DISTRIBUTIONS = ("uniform_signed", "uniform_unsigned", "normal01")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the generator's and discriminator's shapes and its z prior."""
    output_height: int = 64
    output_width: int = 64
    c_dim: int = 3
    z_dim: int = 100
    z_dist: str = "uniform_signed"
    gf_dim: int = 64
    df_dim: int = 64
    # The original's class-conditional model (--dataset mnist): y_dim classes, its fully connected widths.
    y_dim: int = 0  # 0: the unconditional DCGAN
    gfc_dim: int = 1024
    dfc_dim: int = 1024

    def __post_init__(self):
        if self.output_height < 1 or self.output_width < 1:
            raise ValueError(f"output size must be positive, got {self.output_height}x{self.output_width}")
        if self.c_dim not in (1, 3):
            raise ValueError(f"c_dim must be 1 (grayscale) or 3 (RGB), got {self.c_dim}")
        if self.z_dim < 1:
            raise ValueError(f"z_dim must be positive, got {self.z_dim}")
        if self.z_dist not in Z_DISTRIBUTIONS:
            raise ValueError(f"z_dist must be one of {', '.join(Z_DISTRIBUTIONS)}, got {self.z_dist!r}")
        if self.y_dim < 0 or self.gfc_dim < 1 or self.dfc_dim < 1:
            raise ValueError(f"y_dim must be 0 or more and gfc_dim, dfc_dim positive, got {self.y_dim}, "
                             f"{self.gfc_dim}, {self.dfc_dim}")

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self):
        """The config as a dict; an unconditional one without the conditional model's keys, as before they existed
        (files written by older versions load with the defaults)."""
        d = dataclasses.asdict(self)
        if not self.y_dim:
            for key in CONDITIONAL_KEYS:
                del d[key]
        return d


CONDITIONAL_KEYS = ("y_dim", "gfc_dim", "dfc_dim")


def check_output_size(height, width):
    """Raise a user-facing error for sizes the four stride-2 layers cannot reach (a multiple of 16, or 28-style)."""
    for name, s in (("output_height", height), ("output_width", width)):
        if s < 16:
            raise ValueError(f"--{name}={s} is too small: the generator upsamples 4 times, so use at least 16 "
                             "(a multiple of 16 such as 64 or 128; 28-px MNIST-style sizes also work)")


def sample_z(z_dist, n, z_dim, rng):
    """Draw n latent vectors from the model's prior, as the original's gen_random()."""
    if z_dist == "uniform_signed":
        z = rng.uniform(-1.0, 1.0, size=(n, z_dim))
    elif z_dist == "uniform_unsigned":
        z = rng.uniform(0.0, 1.0, size=(n, z_dim))
    elif z_dist == "normal01":
        z = rng.normal(0.0, 1.0, size=(n, z_dim))
    else:
        raise ValueError(f"unknown z_dist {z_dist!r}; choose one of {', '.join(Z_DISTRIBUTIONS)}")
    return z.astype(np.float32)


def z_range(z_dist):
    """The interval a single z value is swept over for this prior (normal01: two standard deviations)."""
    return {"uniform_signed": (-1.0, 1.0), "uniform_unsigned": (0.0, 1.0), "normal01": (-2.0, 2.0)}[z_dist]


def generator_sizes(height, width):
    """Spatial sizes from the projected 4x4 (for 64 px) up to the output: [s16, s8, s4, s2, s]."""
    sizes = [(height, width)]
    for _ in range(4):
        h, w = sizes[0]
        sizes.insert(0, (conv_out_size_same(h, 2), conv_out_size_same(w, 2)))
    return sizes


def make_generator(cfg, dtype=None, sync_bn=False, portable=False):
    """G: linear z -> s/16 x s/16 x 8gf, BN, ReLU; four 5x5 stride-2 transposed convs; tanh (always float32).
    With cfg.y_dim, the original's conditional G(z, y) instead (conditional.py). portable: Keras's own
    layers (the same weights), for a model file that loads without this code."""
    if cfg.y_dim:
        return conditional.make_conditional_generator(cfg, dtype, sync_bn, portable)
    sizes = generator_sizes(cfg.output_height, cfg.output_width)
    (h16, w16) = sizes[0]
    z = keras.Input(shape=(cfg.z_dim,), name="z")
    x = linear(cfg.gf_dim * 8 * h16 * w16, "g_h0_lin", dtype)(z)
    x = layers.Reshape((h16, w16, cfg.gf_dim * 8), name="g_h0_reshape", dtype=dtype)(x)
    x = layers.ReLU(name="g_h0_relu", dtype=dtype)(batch_norm("g_bn0", dtype, sync_bn, portable)(x))
    for i, filters in enumerate((cfg.gf_dim * 4, cfg.gf_dim * 2, cfg.gf_dim), start=1):
        x = deconv2d(filters, sizes[i - 1], sizes[i], f"g_h{i}", dtype, portable)(x)
        x = layers.ReLU(name=f"g_h{i}_relu", dtype=dtype)(batch_norm(f"g_bn{i}", dtype, sync_bn, portable)(x))
    x = deconv2d(cfg.c_dim, sizes[3], sizes[4], "g_h4", dtype, portable)(x)
    images = layers.Activation("tanh", name="g_tanh", dtype="float32")(x)
    return keras.Model(z, images, name="generator")


def make_discriminator(cfg, dtype=None, sync_bn=False, portable=False):
    """D: four 5x5 stride-2 convs (BN on all but the first), LeakyReLU 0.2, linear -> one float32 logit.
    With cfg.y_dim, the original's conditional D(x, y) instead (conditional.py). portable: Keras's own layers."""
    if cfg.y_dim:
        return conditional.make_conditional_discriminator(cfg, dtype, sync_bn)
    images = keras.Input(shape=(cfg.output_height, cfg.output_width, cfg.c_dim), name="images")
    x = lrelu("d_h0_lrelu", dtype)(conv2d(cfg.df_dim, "d_h0_conv", dtype, portable)(images))
    for i, filters in enumerate((cfg.df_dim * 2, cfg.df_dim * 4, cfg.df_dim * 8), start=1):
        x = conv2d(filters, f"d_h{i}_conv", dtype, portable)(x)
        x = lrelu(f"d_h{i}_lrelu", dtype)(batch_norm(f"d_bn{i}", dtype, sync_bn, portable)(x))
    x = layers.Flatten(name="d_flatten", dtype=dtype)(x)
    logits = linear(1, "d_h4_lin", "float32")(x)  # the logit and so the losses in float32 under mixed precision
    return keras.Model(images, logits, name="discriminator")


def _bce(logits, label):
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), label),
                                                                  logits=logits))


LOSS_NAMES = ("d_loss", "d_loss_real", "d_loss_fake", "g_loss")
EMA_RAMPUP = 0.05  # the moving average's half-life is at most this fraction of the images seen (stylegan2-ada)


class DCGAN:
    """The two networks, their Adam optimisers, the training position (step, epoch, batch) and one compiled
    loop of training steps (each: 1 D update, then g_updates G updates), with z drawn on the device."""

    def __init__(self, cfg, learning_rate=0.0002, beta1=0.5, g_updates=2, precision="float32", seed=0,
                 batches_per_epoch=None, strategy=None, sync_bn=False, ema_kimg=0.0, batch_size=64):
        if g_updates < 1:
            raise ValueError(f"--g_updates must be at least 1, got {g_updates}")
        resolved = mixed_precision.PRECISIONS[1:]
        if precision not in resolved:
            raise ValueError(f"precision must be resolved to one of {', '.join(resolved)}, got {precision!r}")
        if ema_kimg < 0:
            raise ValueError(f"--ema_kimg must be 0 (off) or a positive half-life in thousands of images, got {ema_kimg}")
        self.cfg, self.g_updates, self.precision = cfg, g_updates, precision
        self.ema_kimg, self.batch_size = float(ema_kimg), int(batch_size)
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():  # every variable mirrored on each replica (one copy without a strategy)
            self._build(cfg, learning_rate, beta1, precision, sync_bn)
            # The generator's exponential moving average (stylegan2-ada's G_ema): a second generator whose weights,
            # batch-norm statistics included, trail the trained ones; it draws the samples, snapshots and metrics.
            self.generator_ema = make_generator(cfg, precision, sync_bn) if self.ema_kimg else None
            if self.generator_ema is not None:
                for average, weight in zip(self.generator_ema.weights, self.generator.weights):
                    average.assign(weight)
        # What draws faces: the moving average when there is one, else the trained generator itself.
        self.sampler = self.generator if self.generator_ema is None else self.generator_ema
        # Whether the first G update reuses the D update's G(z) (see _train_step); read when the step traces.
        self.reuse_fake = ops.fused_batch_norms(self.generator) is not None
        self.seed = int(seed)
        self.batches_per_epoch = batches_per_epoch
        spec_images = tf.TensorSpec([None, cfg.output_height, cfg.output_width, cfg.c_dim], tf.float32)
        spec_z = tf.TensorSpec([None, cfg.z_dim], tf.float32)
        # The batch dimension stays None, so the last, smaller sample batch or a new batch size needs no retrace.
        if cfg.y_dim:  # the conditional model takes one-hot y beside the images and z
            spec_y = tf.TensorSpec([None, cfg.y_dim], tf.float32)
            self.train_step = tf.function(lambda images, z, y: self._train_step(images, z, y=y),
                                          input_signature=[spec_images, spec_z, spec_y])
            self.generate = tf.function(self._generate, input_signature=[spec_z, spec_y])
        else:
            self.train_step = tf.function(self._train_step, input_signature=[spec_images, spec_z])
            self.generate = tf.function(self._generate, input_signature=[spec_z])
        self.train_loop = tf.function(self._train_loop)

    def _build(self, cfg, learning_rate, beta1, precision, sync_bn):
        self.generator = make_generator(cfg, precision, sync_bn)
        self.discriminator = make_discriminator(cfg, precision, sync_bn)
        # epsilon 1e-8 is TF1's AdamOptimizer default, which the original used.
        self.g_adam = ops.FusedAdam(learning_rate, beta_1=beta1, epsilon=1e-8)
        self.d_adam = ops.FusedAdam(learning_rate, beta_1=beta1, epsilon=1e-8)
        if precision == "mixed_float16":  # float16 gradients underflow without loss scaling; bfloat16 needs none
            self.g_optimizer = keras.optimizers.LossScaleOptimizer(self.g_adam)
            self.d_optimizer = keras.optimizers.LossScaleOptimizer(self.d_adam)
        else:
            self.g_optimizer, self.d_optimizer = self.g_adam, self.d_adam
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        # The position after the last finished step, updated inside the compiled loop together with the weights,
        # so an interrupt can never separate the two.
        self.step = tf.Variable(0, dtype=tf.int64, name="step", trainable=False)
        self.epoch = tf.Variable(0, dtype=tf.int64, name="epoch", trainable=False)
        self.batch_in_epoch = tf.Variable(0, dtype=tf.int64, name="batch_in_epoch", trainable=False)

    def checkpoint_objects(self):
        """What a training checkpoint holds; the loss scale only under mixed_float16."""
        objects = dict(generator=self.generator, discriminator=self.discriminator, g_optimizer=self.g_adam,
                       d_optimizer=self.d_adam, step=self.step, epoch=self.epoch, batch_in_epoch=self.batch_in_epoch)
        if self.g_optimizer is not self.g_adam:
            objects.update(g_loss_scale=self.g_optimizer, d_loss_scale=self.d_optimizer)
        if self.generator_ema is not None:
            objects.update(generator_ema=self.generator_ema)
        return objects

    def ema_beta(self, step):
        """The moving average's weight on its past after `step` steps: a half-life of ema_kimg thousand images,
        shortened to EMA_RAMPUP of the images seen so far early on (stylegan2-ada's ema_rampup), so the average
        does not drag the random initial weights along."""
        seen = tf.cast(step, tf.float32) * float(self.batch_size)
        half_life = tf.minimum(self.ema_kimg * 1000.0, seen * EMA_RAMPUP)
        return tf.pow(0.5, float(self.batch_size) / tf.maximum(half_life, 1e-8))

    def _update_ema(self):
        """average <- weight + beta * (average - weight), in the cross-replica context, where every replica's copy
        of a weight holds the same value after the all-reduced update."""
        beta = self.ema_beta(self.step)
        for average, weight in zip(self.generator_ema.weights, self.generator.weights):
            average.assign(weight + beta * (average - weight))

    def draw_z(self, n, step):
        """z for one step, from a stateless RNG keyed by (seed, step): repeatable, and the same after a resume."""
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        shape = tf.stack([n, self.cfg.z_dim])
        if self.cfg.z_dist == "normal01":
            return tf.random.stateless_normal(shape, seed)
        low = -1.0 if self.cfg.z_dist == "uniform_signed" else 0.0
        return tf.random.stateless_uniform(shape, seed, minval=low, maxval=1.0)

    def _scaled(self, optimizer, loss):
        """The loss to differentiate: under mixed_float16 multiplied by the loss scale, which apply_gradients
        divides out again (skipping the update, and halving the scale, when the gradients overflow)."""
        return optimizer.scale_loss(loss) if optimizer is not self.g_adam and optimizer is not self.d_adam else loss

    def _update(self, optimizer, tape, scaled_loss, variables):
        optimizer.apply_gradients(zip(tape.gradient(scaled_loss, variables), variables))

    def _G(self, z, y, training):
        return self.generator(z if y is None else [z, y], training=training)

    def _D(self, images, y, training):
        return self.discriminator(images if y is None else [images, y], training=training)

    def _train_step(self, images, z, replicas=1, y=None):
        """One D update and g_updates G updates on this replica's share of the batch (y: its one-hot labels, for
        the conditional model). The gradients of the replicas are summed (all-reduced) by apply_gradients, so
        each differentiates its mean loss / replicas: together, the mean over the global batch.

        The first G update reuses the D update's G(z): the same weights and z give the same images and batch
        statistics, so recomputing them (as the original did) only costs time. Its batch norms fold those statistics
        into the moving ones twice, as the original's two forward passes did; this needs every batch norm fused
        (not --sync_bn), else G(z) is recomputed."""
        G, D = self.generator, self.discriminator
        reuse = self.reuse_fake
        with tf.GradientTape() as g_tape:  # records G(z) for the first G update, when it is reused
            with ops.repeat_moving_updates(G, 2) if reuse else contextlib.nullcontext():
                fake = self._G(z, y, True)
            with g_tape.stop_recording(), tf.GradientTape() as tape:
                real_logits = self._D(images, y, True)
                fake_logits = self._D(fake, y, True)
                d_loss_real = _bce(real_logits, 1.0)
                d_loss_fake = _bce(fake_logits, 0.0)
                d_loss = d_loss_real + d_loss_fake
                d_scaled = self._scaled(self.d_optimizer, d_loss / replicas)
            with g_tape.stop_recording():
                self._update(self.d_optimizer, tape, d_scaled, D.trainable_variables)
            if reuse:  # D after its update, on the images G drew for it
                g_loss = _bce(self._D(fake, y, True), 1.0)
                g_scaled = self._scaled(self.g_optimizer, g_loss / replicas)
        if reuse:
            self._update(self.g_optimizer, g_tape, g_scaled, G.trainable_variables)
        # The original ran the G update twice per D update "to make sure that d_loss does not go to zero".
        for _ in range(self.g_updates - 1 if reuse else self.g_updates):
            with tf.GradientTape() as tape:
                g_loss = _bce(self._D(self._G(z, y, True), y, True), 1.0)
                g_scaled = self._scaled(self.g_optimizer, g_loss / replicas)
            self._update(self.g_optimizer, tape, g_scaled, G.trainable_variables)
        return {"d_loss": d_loss, "d_loss_real": d_loss_real, "d_loss_fake": d_loss_fake, "g_loss": g_loss,
                "d_real": tf.sigmoid(tf.cast(real_logits, tf.float32)),
                "d_fake": tf.sigmoid(tf.cast(fake_logits, tf.float32))}

    def _advance(self):
        self.step.assign_add(1)
        if self.batches_per_epoch is None:
            return
        next_batch = self.batch_in_epoch + 1
        end = next_batch >= self.batches_per_epoch
        self.epoch.assign_add(tf.cast(end, tf.int64))
        self.batch_in_epoch.assign(tf.where(end, tf.constant(0, tf.int64), next_batch))

    def _replica_step(self, batch, step):
        """One training step on one replica: its slice of the global batch's z, so any number of replicas draws
        the same z as one device. batch: uint8 images, or (uint8 images, int labels) for the conditional model.
        Returns the losses (each replica's share of the global mean) and D's outputs."""
        images_uint8, labels = batch if self.cfg.y_dim else (batch, None)
        ctx = tf.distribute.get_replica_context()
        replicas = ctx.num_replicas_in_sync
        local = tf.shape(images_uint8, out_type=tf.int32)[0]
        z = self.draw_z(local * replicas, step)
        z = z[ctx.replica_id_in_sync_group * local:(ctx.replica_id_in_sync_group + 1) * local]
        y = None if labels is None else tf.one_hot(tf.cast(labels, tf.int32), self.cfg.y_dim)
        out = self._train_step(tf.cast(images_uint8, tf.float32) / 127.5 - 1.0, z, replicas, y)
        losses = tf.stack([out[k] for k in LOSS_NAMES]) / tf.cast(replicas, tf.float32)
        return losses, out["d_real"], out["d_fake"], z

    def _train_loop(self, iterator, num_steps, stop=False):
        """num_steps training steps on uint8 batches from iterator (a distributed one under a strategy), with no
        trip to Python between them. `stop` is this worker's wish to stop (a signal): it is agreed with every
        other worker first, and if any wants to, no step runs, so all save and stop at the same step.
        Returns the (steps run, 4) losses (LOSS_NAMES), D's outputs and z of the last step on the first local
        replica, and whether the workers stopped."""
        stop = self.strategy.reduce(tf.distribute.ReduceOp.SUM, self.strategy.run(
            lambda s: tf.cast(s, tf.int32), args=(tf.convert_to_tensor(stop),)), axis=None) > 0
        num_steps = tf.where(stop, 0, num_steps)
        losses = tf.TensorArray(tf.float32, size=num_steps)
        d_real = d_fake = tf.zeros([0, 1])
        z = tf.zeros([0, self.cfg.z_dim])
        for i in tf.range(num_steps):
            tf.autograph.experimental.set_loop_options(shape_invariants=[
                (d_real, tf.TensorShape([None, 1])), (d_fake, tf.TensorShape([None, 1])),
                (z, tf.TensorShape([None, self.cfg.z_dim]))])
            per_replica = self.strategy.run(self._replica_step, args=(next(iterator), self.step + 1))
            losses = losses.write(i, self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica[0], axis=None))
            d_real, d_fake, z = (self.strategy.experimental_local_results(t)[0] for t in per_replica[1:])
            self._advance()
            if self.generator_ema is not None:
                self._update_ema()
        return losses.stack(), d_real, d_fake, z, stop

    def _generate(self, z, y=None):
        # The original's sampler: batch norm with the moving statistics (train=False); the average when kept.
        return self.sampler(z if y is None else [z, y], training=False)


def generate_images(generator, z, batch_size=64, y=None):
    """Run the generator in inference mode over any number of z rows (and their one-hot y rows for a conditional
    generator); returns float32 images in [-1, 1]."""
    z = np.asarray(z, np.float32)
    y = None if y is None else np.asarray(y, np.float32)

    def inputs(i):
        return z[i:i + batch_size] if y is None else [z[i:i + batch_size], y[i:i + batch_size]]
    out = [generator(inputs(i), training=False).numpy() for i in range(0, len(z), batch_size)]
    return np.concatenate(out) if out else np.zeros((0,) + tuple(generator.output_shape[1:]), np.float32)


# Generator weight files: generator.npz (one array per Keras variable path) + generator.json (config, step).
# Compact, readable from numpy or JavaScript without TensorFlow, and the format the shipped generator uses.
WEIGHTS_FILE = "generator.npz"
META_FILE = "generator.json"


def save_generator_weights(generator, cfg, out_dir, dtype="float32", **meta):
    """Write generator.npz (+ generator.json with the config and meta such as step) atomically into out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    arrays = {v.path: np.asarray(v.numpy(), dtype=dtype) for v in generator.weights}
    utils.atomic_write(os.path.join(out_dir, WEIGHTS_FILE), lambda f: np.savez(f, **arrays))
    info = {"model": cfg.to_dict(), "dtype": str(np.dtype(dtype)),
            "weights": {k: list(a.shape) for k, a in arrays.items()}, **meta}
    utils.write_json(os.path.join(out_dir, META_FILE), info)


def load_generator_weights(weights_dir):
    """Build a generator from a generator.json/.npz folder; returns (generator, config, meta)."""
    meta_path, weights_path = os.path.join(weights_dir, META_FILE), os.path.join(weights_dir, WEIGHTS_FILE)
    for p in (meta_path, weights_path):
        if not os.path.isfile(p):
            raise FileNotFoundError(f"{p} not found: a generator folder holds {META_FILE} and {WEIGHTS_FILE}")
    with open(meta_path) as f:
        meta = json.load(f)
    cfg = ModelConfig.from_dict(meta["model"])
    generator = make_generator(cfg)
    with np.load(weights_path) as arrays:
        assign_generator_weights(generator, arrays, weights_path)
    return generator, cfg, meta


def assign_generator_weights(generator, arrays, source):
    """Set every generator variable from arrays[variable path], refusing missing names or other shapes."""
    missing = [v.path for v in generator.weights if v.path not in arrays]
    if missing:
        raise ValueError(f"{source} lacks weights {missing[:3]}...: it was written for another model")
    for v in generator.weights:
        a = arrays[v.path]
        if tuple(a.shape) != tuple(v.shape):
            raise ValueError(f"{source}: {v.path} has shape {tuple(a.shape)}, the model expects {tuple(v.shape)}")
        v.assign(np.asarray(a, np.float32))
