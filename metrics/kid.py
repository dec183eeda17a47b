"""Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel over subsets (Binkowski et al. 2018)."""
import numpy as np

NUM_SUBSETS = 100
MAX_SUBSET_SIZE = 1000


def mmd2_unbiased(x, y):
    """Unbiased MMD^2 of two equal-size sets with k(a, b) = (a.b / d + 1)^3 (kernels in the inputs' precision,
    sums in float64)."""
    m, d = len(x), x.shape[1]
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    within = (k_xx.sum(dtype=np.float64) - np.trace(k_xx, dtype=np.float64) + k_yy.sum(dtype=np.float64)
              - np.trace(k_yy, dtype=np.float64)) / (m * (m - 1))
    return float(within - 2 * k_xy.mean(dtype=np.float64))


def kid(features_gen, features_real, rng, num_subsets=NUM_SUBSETS, max_subset_size=MAX_SUBSET_SIZE):
    """{kid: the mean over subsets, kid_std: the standard deviation of the subset estimates (the spread
    torch-fidelity and Binkowski et al. report), subsets, subset_size}; each subset draws without replacement,
    max_subset_size images (1,000, as stylegan2-ada) or half the smaller set when that is less."""
    x, y = np.asarray(features_gen, np.float32), np.asarray(features_real, np.float32)  # float32 BLAS: 2x faster
    # Subsets of half the smaller set at most, so they differ from one another and their spread means something
    # (with 1,000 images and subsets of 1,000 every subset would be the whole set).
    m = min(len(x) // 2, len(y) // 2, max_subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least 4 images on each side, got {len(x)} and {len(y)}")
    values = np.array([mmd2_unbiased(x[rng.choice(len(x), m, replace=False)], y[rng.choice(len(y), m, replace=False)])
                       for _ in range(num_subsets)])
    return {"kid": float(values.mean()), "kid_std": float(values.std(ddof=1)) if num_subsets > 1 else 0.0,
            "subsets": num_subsets, "subset_size": m}
