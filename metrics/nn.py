"""Memorisation: samples' nearest-training-crop distances against held-out real crops', and near-duplicate samples."""
import numpy as np

CHUNK = 2048  # training crops compared at once
# Two images closer than this RMS distance on [0, 1] pixels (about 13/255 a pixel) count as near duplicates. On
# UTKFace at 64 px it is about half the 1st percentile of real crops' nearest-other-crop distance (0.10 over a
# seeded 3,000), so real sets have few such pairs (0.4% of those 3,000 crops) and collapsed samples many.
DUP_THRESHOLD = 0.05


def flat01(images):
    """uint8 (N, H, W, C) -> float32 (N, H*W*C) in [0, 1]."""
    return np.asarray(images, np.float32).reshape(len(images), -1) / 255.0


def nearest_distances(queries, pool, pool_index=None, exclude_self=False):
    """RMS distance on [0, 1] pixels from each query (uint8 images) to its nearest image in pool (uint8 images,
    an array or a memory map; only pool[pool_index] when given); exclude_self when queries and pool are one set."""
    q = flat01(queries)
    q_norms = (q * q).sum(axis=1)
    best = np.full(len(q), np.inf, np.float32)
    size = len(pool) if pool_index is None else len(pool_index)
    for i in range(0, size, CHUNK):
        p = flat01(pool[i:i + CHUNK] if pool_index is None else pool[np.sort(pool_index[i:i + CHUNK])])
        d2 = q_norms[:, None] + (p * p).sum(axis=1)[None] - 2 * q @ p.T
        if exclude_self:  # pool image i + c is query i + c
            same = np.arange(i, min(i + len(p), len(q)))
            d2[same, same - i] = np.inf
        best = np.minimum(best, d2.min(axis=1))
    return np.sqrt(np.maximum(best, 0) / q.shape[1])


def memorisation(samples, heldout, pool, pool_index=None):
    """Distances of samples and of held-out real crops to their nearest training crop (pool), and the share of
    samples (and of held-out crops, for scale) with a near duplicate among themselves."""
    if len(samples) < 2 or len(heldout) < 2:
        raise ValueError(f"nn needs at least 2 samples and 2 held-out crops, got {len(samples)} and {len(heldout)}")
    searched = len(pool) if pool_index is None else len(pool_index)
    if searched < 1:
        raise ValueError("nn needs at least one training crop to search")
    gen_d, real_d = nearest_distances(samples, pool, pool_index), nearest_distances(heldout, pool, pool_index)
    gen_dup = nearest_distances(samples, samples, exclude_self=True) < DUP_THRESHOLD
    real_dup = nearest_distances(heldout, heldout, exclude_self=True) < DUP_THRESHOLD
    return {"ratio": float(gen_d.mean() / max(real_d.mean(), 1e-12)),
            "sample_nn_mean": float(gen_d.mean()), "heldout_nn_mean": float(real_d.mean()),
            "sample_nn_median": float(np.median(gen_d)), "heldout_nn_median": float(np.median(real_d)),
            "sample_nn_min": float(gen_d.min()), "dup_rate": float(gen_dup.mean()),
            "real_dup_rate": float(real_dup.mean()), "dup_threshold": DUP_THRESHOLD,
            "searched": searched, "samples": len(samples), "heldout": len(heldout)}
