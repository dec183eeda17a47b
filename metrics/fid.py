"""Fréchet Inception Distance between two sets of Inception pool3 features (Heusel et al. 2017)."""
import numpy as np


def stats(features):
    """(mean, covariance) of (N, D) features in float64, the covariance with N - 1 as numpy's np.cov."""
    x = np.asarray(features, np.float64)
    if len(x) < 2:
        raise ValueError(f"FID needs at least 2 images on each side, got {len(x)}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2).

    tr((S1 S2)^1/2) is the sum of the square roots of the eigenvalues of S1^1/2 S2 S1^1/2, a symmetric positive
    semi-definite matrix, so symmetric eigensolvers give it without the complex round-off of a general sqrtm."""
    diff = mu1 - mu2
    w, v = np.linalg.eigh(sigma1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = root1 @ sigma2 @ root1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def fid(features_a, features_b):
    return frechet_distance(*stats(features_a), *stats(features_b))
