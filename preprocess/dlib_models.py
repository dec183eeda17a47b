"""dlib's face detectors and landmark predictors, loaded from the face-recognition-models package (no downloads)."""
import functools
import importlib.util
import os

import dlib
import numpy as np

MODEL_FILES = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "cnn": "mmod_human_face_detector.dat",
}


def models_dir():
    """The models/ folder of face-recognition-models, found without importing it (its import needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("dlib's landmark models are missing: pip install face-recognition-models")
    return os.path.join(list(spec.submodule_search_locations)[0], "models")


def model_path(name):
    path = os.path.join(models_dir(), MODEL_FILES[name])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: reinstall face-recognition-models")
    return path


@functools.lru_cache(maxsize=None)
def hog_detector():
    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=None)
def cnn_detector():
    return dlib.cnn_face_detection_model_v1(model_path("cnn"))


@functools.lru_cache(maxsize=None)
def shape_predictor(points=68):
    if points not in (5, 68):
        raise ValueError(f"dlib ships 5- and 68-point landmark models, not {points}")
    return dlib.shape_predictor(model_path(f"landmarks{points}"))


def detect_faces(image_rgb, upsample=1, detector="hog"):
    """Face boxes in a uint8 RGB (or grayscale) image: a list of (dlib.rectangle, score), best first."""
    image = np.ascontiguousarray(image_rgb)
    if detector == "hog":
        rects, scores, _ = hog_detector().run(image, upsample, 0.0)
        found = list(zip(rects, scores))
    elif detector == "cnn":
        found = [(d.rect, d.confidence) for d in cnn_detector()(image, upsample)]
    else:
        raise ValueError(f"unknown detector {detector!r}: use hog or cnn")
    return sorted(found, key=lambda rs: -rs[1])


def landmarks(image_rgb, rect, points=68):
    """The (points, 2) float array of (x, y) landmarks of the face in rect."""
    shape = shape_predictor(points)(np.ascontiguousarray(image_rgb), rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
