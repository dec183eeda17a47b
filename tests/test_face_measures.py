"""The landmark measures the "change" grids rank z dimensions by (smile, yaw, saturation) and their ranking."""
import cv2
import numpy as np
import pytest

from figures import face_measures, page


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data
    image = data.astronaut()
    points = face_measures.find_landmarks(image)
    assert points is not None
    return image, points


def warp_x(image, center, radius, shift):
    """Move pixels horizontally by shift(x) within a Gaussian window around center (a local, smooth warp)."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    weight = np.exp(-((xx - center[0]) ** 2 + (yy - center[1]) ** 2) / radius ** 2)
    return cv2.remap(image, (xx - shift(xx) * weight).astype(np.float32), yy, cv2.INTER_LINEAR)


def test_smile_measure_ranks_a_widened_mouth(astronaut):
    image, p = astronaut
    mouth = p[48:68].mean(axis=0)
    half_width = np.linalg.norm(p[54] - p[48]) / 2
    smiles = [face_measures.measure(warp_x(image, mouth, 1.2 * half_width, lambda x, a=a: a * (x - mouth[0])))["smile"]
              for a in (0.0, 0.2, 0.4)]
    assert smiles[0] < smiles[1] < smiles[2]
    small = cv2.resize(warp_x(image, mouth, 1.2 * half_width, lambda x: 0.4 * (x - mouth[0]))[60:200, 150:300],
                       (64, 64), interpolation=cv2.INTER_AREA)
    plain = cv2.resize(image[60:200, 150:300], (64, 64), interpolation=cv2.INTER_AREA)
    assert face_measures.measure(small)["smile"] > face_measures.measure(plain)["smile"]  # also on a 64 px face


def test_yaw_measure_ranks_a_moved_nose_and_flips_with_the_mirror(astronaut):
    image, p = astronaut
    nose = p[27:36].mean(axis=0)
    iod = np.linalg.norm(p[42:48].mean(axis=0) - p[36:42].mean(axis=0))
    yaws = [face_measures.measure(warp_x(image, nose, 0.8 * iod, lambda x, s=s: s * iod + 0 * x))["yaw"]
            for s in (-0.3, 0.0, 0.3)]
    assert yaws[0] < yaws[1] < yaws[2]
    turned = warp_x(image, nose, 0.8 * iod, lambda x: 0.3 * iod + 0 * x)
    assert face_measures.measure(turned[:, ::-1])["yaw"] == pytest.approx(-yaws[2], abs=0.05)


def test_saturation_and_no_face(astronaut):
    image, _ = astronaut
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    assert face_measures.measure(gray)["saturation"] == 0.0 < face_measures.measure(image)["saturation"]
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    m = face_measures.measure(noise)
    assert not m["face_found"] and np.isnan(m["smile"]) and np.isnan(m["yaw"])


def test_dimension_effects_rank_the_dimension_that_drives_a_measure():
    rng = np.random.default_rng(0)
    t = np.linspace(-1, 1, 10)
    measured = rng.normal(0, 0.05, (6, 3, 10))
    measured[4] += 0.5 * t  # z[4] widens the mouth
    measured[1] -= 0.2 * t  # z[1] narrows it, less
    measured[2, :, ::2] = np.nan  # faces not found: measured on the rest
    effects, spread = page.dimension_effects(measured, t)
    order = np.argsort(-np.abs(effects))
    assert list(order[:2]) == [4, 1] and effects[4] > 0 > effects[1]
    assert np.isfinite(effects[2])
    assert np.isnan(page.dimension_effects(np.full((3, 2, 10), np.nan), t)[0]).all()
