"""Improved precision and recall (Kynkäänniemi et al. 2019): k-NN balls around each set's features, k = 3."""
import numpy as np

K = 3
CHUNK = 1024  # rows of the distance matrix computed at once (CHUNK x N floats)


def _sq_norms(x):
    return (x * x).sum(axis=1)


def _sq_distances(a, b, b_norms):
    """Squared Euclidean distances (len(a), len(b)), clipped at 0 against round-off."""
    return np.maximum(_sq_norms(a)[:, None] + b_norms[None] - 2 * a @ b.T, 0)


def knn_radii(x, k=K):
    """Squared distance of every point to its k-th nearest other point in the same set."""
    if len(x) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} images on each side, got {len(x)}")
    norms = _sq_norms(x)
    radii = np.zeros(len(x), x.dtype)
    for i in range(0, len(x), CHUNK):
        d = _sq_distances(x[i:i + CHUNK], x, norms)
        d[np.arange(len(d)), np.arange(i, i + len(d))] = 0  # a point is its own 0-th neighbour
        radii[i:i + CHUNK] = np.partition(d, k, axis=1)[:, k]
    return radii


def coverage(queries, points, radii):
    """Fraction of queries inside at least one ball (points[j], radii[j])."""
    norms = _sq_norms(points)
    inside = [(_sq_distances(queries[i:i + CHUNK], points, norms) <= radii[None]).any(axis=1)
              for i in range(0, len(queries), CHUNK)]
    return float(np.concatenate(inside).mean())


def precision_recall(features_gen, features_real, k=K):
    """{precision: generated features inside the real manifold, recall: real inside the generated one}."""
    gen, real = np.asarray(features_gen, np.float32), np.asarray(features_real, np.float32)
    return {"precision": coverage(gen, real, knn_radii(real, k)), "recall": coverage(real, gen, knn_radii(gen, k)),
            "k": k}
