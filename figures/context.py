"""What every figure gets (the generator, its prior, the flags, the seed, the output) and the paths z takes."""
import dataclasses
import zlib

import numpy as np

import conditional
import model
from figures.output import Figures


@dataclasses.dataclass
class Context:
    """What every figure needs: the generator, its prior, the flags and the seed."""
    src: object
    f: dict
    seed: int
    out: Figures
    pool: dict = None  # measured samples shared by the vector arithmetic and turn figures
    sweeps: list = None  # option 3's sweeps, merged again by option 4

    @property
    def cfg(self):
        return self.src.cfg

    @property
    def z_lo(self):
        return model.z_range(self.cfg.z_dist)[0]

    @property
    def z_hi(self):
        return model.z_range(self.cfg.z_dist)[1]

    @property
    def face_shape(self):
        """The shape of one face as pixels() returns it (always 3 channels)."""
        return (self.cfg.output_height, self.cfg.output_width, 3)

    @property
    def center(self):
        """The 'z = 0' of the figures: the prior's mean (0, or 0.5 for uniform_unsigned) or literal zero."""
        return z_center(self.cfg.z_dist, self.f["z_center"])

    def rng(self, figure):
        """An independent random stream per figure, so each one is the same whichever others are made."""
        return np.random.default_rng([self.seed, zlib.crc32(figure.encode())])

    def prior(self, figure, n):
        return model.sample_z(self.cfg.z_dist, n, self.cfg.z_dim, self.rng(figure))

    def generate(self, z, classes=None):
        """G(z); a conditional generator also takes each sample's class (one for all, or one per row of z)."""
        z = np.asarray(z, np.float32)
        if not self.cfg.y_dim:
            return model.generate_images(self.src.generator, z, self.f["batch_size"])
        if classes is None:
            raise ValueError("a conditional generator draws each sample for a class: give the classes")
        y = conditional.one_hot(np.broadcast_to(classes, len(z)), self.cfg.y_dim)
        return model.generate_images(self.src.generator, z, self.f["batch_size"], y)

    def row_classes(self, rows_cols, n=None):
        """A conditional generator's class for each of the first n cells of a rows x cols grid: row r draws class
        r % y_dim (y fixed per row, as the original's MNIST grids read best); None for an unconditional one."""
        if not self.cfg.y_dim:
            return None
        rows, cols = rows_cols
        return np.repeat(np.arange(rows) % self.cfg.y_dim, cols)[:n]

    def class_of(self, k):
        """The class of a conditional generator's k-th figure of a series (k % y_dim), or None."""
        return k % self.cfg.y_dim if self.cfg.y_dim else None

    def rows_note(self):
        """What a grid's caption says about y for a conditional generator ('' for an unconditional one)."""
        return f"; y fixed per row: row r is class r % {self.cfg.y_dim}" if self.cfg.y_dim else ""

    @staticmethod
    def class_note(c):
        return "" if c is None else f"; class {c}"


def z_center(z_dist, mode="mean"):
    """The centre of a prior ('mean': 0, or 0.5 for uniform_unsigned whose z = 0 is an edge) or 0 ('zero')."""
    if mode == "zero":
        return 0.0
    if mode != "mean":
        raise ValueError(f"--z_center must be mean or zero, got {mode!r}")
    lo, hi = model.z_range(z_dist)
    return (lo + hi) / 2.0


def lerp(z0, z1, t):
    """Straight-line interpolation; t is a 1-D array of fractions, the result has one row per t."""
    t = np.asarray(t, np.float64)[:, None]
    return ((1 - t) * z0 + t * z1).astype(np.float32)


def slerp(z0, z1, t, center=0.0):
    """Spherical interpolation about `center` (White 2016): keeps the norm a sample from the prior has, where
    the straight line passes through the low-norm middle. Falls back to lerp for (anti)parallel vectors."""
    a, b = np.asarray(z0, np.float64) - center, np.asarray(z1, np.float64) - center
    t = np.asarray(t, np.float64)[:, None]
    cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return lerp(z0, z1, t[:, 0])
    out = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega) + center
    return out.astype(np.float32)


def sweep(base, dim, values):
    """len(values) copies of base with z[dim] set to each value in turn."""
    z = np.tile(np.asarray(base, np.float32), (len(values), 1))
    z[:, dim] = values
    return z
