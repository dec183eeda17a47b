"""The original's class-conditional DCGAN (its y_dim branch, trained on MNIST): one-hot y joined to z, maps and layers."""
import keras
import numpy as np
from keras import layers

from ops import batch_norm, conv2d, conv_out_size_same, deconv2d, linear, lrelu


def one_hot(labels, y_dim):
    """Class labels (N,) -> float32 one-hot rows (N, y_dim), the original's y_vec; a label outside 0..y_dim-1 is
    an error (one_hot on the device would silently give a zero row)."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= y_dim):
        raise ValueError(f"labels must be classes 0..{y_dim - 1}, got {labels.min()}..{labels.max()}")
    y = np.zeros((len(labels), y_dim), np.float32)
    y[np.arange(len(labels)), labels.astype(np.int64)] = 1.0
    return y


def conv_cond_concat(x, y_map, name, dtype=None):
    """The original's conv_cond_concat: y (as a (B, 1, 1, y_dim) map) repeated over x's height and width and appended
    to its channels. Built from Keras's own layers, so an exported .keras file loads without this code."""
    tiled = layers.UpSampling2D(size=tuple(x.shape[1:3]), name=f"{name}_tile", dtype=dtype)(y_map)
    return layers.Concatenate(axis=-1, name=name, dtype=dtype)([x, tiled])


def conditional_sizes(height, width):
    """[s4, s2, s] of the y_dim generator (28 -> 7, 14, 28 as the original's int(s/4), int(s/2); rounded up, so
    sizes that are no multiple of 4 reach the output with the stride-2 transposed convs too)."""
    s2 = (conv_out_size_same(height, 2), conv_out_size_same(width, 2))
    return [(conv_out_size_same(s2[0], 2), conv_out_size_same(s2[1], 2)), s2, (height, width)]


def make_conditional_generator(cfg, dtype=None, sync_bn=False, portable=False):
    """G(z, y): [z, y] -> linear gfc_dim, BN, ReLU; [., y] -> linear 2gf * s/4 * s/4, BN, ReLU, reshape; y appended
    to the maps; 5x5 stride-2 transposed conv to s/2 x 2gf, BN, ReLU; y appended; transposed conv to s x c_dim;
    sigmoid (the original's [0, 1] pixels), returned as 2 * sigmoid - 1 in [-1, 1] like the faces generator's tanh,
    so every writer of images takes both. Float32 at the end under mixed precision."""
    (h4, w4), (h2, w2), (h, w) = conditional_sizes(cfg.output_height, cfg.output_width)
    z = keras.Input(shape=(cfg.z_dim,), name="z")
    y = keras.Input(shape=(cfg.y_dim,), name="y")
    y_map = layers.Reshape((1, 1, cfg.y_dim), name="g_yb", dtype=dtype)(y)
    x = layers.Concatenate(name="g_zy", dtype=dtype)([z, y])
    x = linear(cfg.gfc_dim, "g_h0_lin", dtype)(x)
    x = layers.ReLU(name="g_h0_relu", dtype=dtype)(batch_norm("g_bn0", dtype, sync_bn, portable)(x))
    x = layers.Concatenate(name="g_h0_y", dtype=dtype)([x, y])
    x = linear(cfg.gf_dim * 2 * h4 * w4, "g_h1_lin", dtype)(x)
    x = layers.ReLU(name="g_h1_relu", dtype=dtype)(batch_norm("g_bn1", dtype, sync_bn, portable)(x))  # before reshape
    x = layers.Reshape((h4, w4, cfg.gf_dim * 2), name="g_h1_reshape", dtype=dtype)(x)
    x = conv_cond_concat(x, y_map, "g_h1_y", dtype)
    x = deconv2d(cfg.gf_dim * 2, (h4, w4), (h2, w2), "g_h2", dtype, portable)(x)
    x = layers.ReLU(name="g_h2_relu", dtype=dtype)(batch_norm("g_bn2", dtype, sync_bn, portable)(x))
    x = conv_cond_concat(x, y_map, "g_h2_y", dtype)
    x = deconv2d(cfg.c_dim, (h2, w2), (h, w), "g_h3", dtype, portable)(x)
    x = layers.Activation("sigmoid", name="g_sigmoid", dtype="float32")(x)
    images = layers.Rescaling(2.0, offset=-1.0, name="g_to_signed", dtype="float32")(x)
    return keras.Model([z, y], images, name="generator")


def make_conditional_discriminator(cfg, dtype=None, sync_bn=False):
    """D(x, y): images in [-1, 1] taken back to the original's [0, 1] (it fed X / 255.); y appended to the image;
    5x5 stride-2 conv to c_dim + y_dim, LeakyReLU; y appended; conv to df_dim + y_dim, BN, LeakyReLU; flattened with
    y; linear dfc_dim, BN, LeakyReLU; with y; linear -> one float32 logit."""
    images = keras.Input(shape=(cfg.output_height, cfg.output_width, cfg.c_dim), name="images")
    y = keras.Input(shape=(cfg.y_dim,), name="y")
    y_map = layers.Reshape((1, 1, cfg.y_dim), name="d_yb", dtype=dtype)(y)
    x = layers.Rescaling(0.5, offset=0.5, name="d_to_unit", dtype=dtype)(images)
    x = conv_cond_concat(x, y_map, "d_x_y", dtype)
    x = lrelu("d_h0_lrelu", dtype)(conv2d(cfg.c_dim + cfg.y_dim, "d_h0_conv", dtype)(x))
    x = conv_cond_concat(x, y_map, "d_h0_y", dtype)
    x = lrelu("d_h1_lrelu", dtype)(batch_norm("d_bn1", dtype, sync_bn)(conv2d(cfg.df_dim + cfg.y_dim, "d_h1_conv",
                                                                              dtype)(x)))
    x = layers.Flatten(name="d_flatten", dtype=dtype)(x)
    x = layers.Concatenate(name="d_h1_y", dtype=dtype)([x, y])
    x = lrelu("d_h2_lrelu", dtype)(batch_norm("d_bn2", dtype, sync_bn)(linear(cfg.dfc_dim, "d_h2_lin", dtype)(x)))
    x = layers.Concatenate(name="d_h2_y", dtype=dtype)([x, y])
    logits = linear(1, "d_h3_lin", "float32")(x)
    return keras.Model([images, y], logits, name="discriminator")
