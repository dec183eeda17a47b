"""Measure faces with dlib's 68 landmarks (smile, mouth opening, head yaw) and colour saturation."""
import cv2
import numpy as np

from preprocess import dlib_models

# Measures the figures rank z dimensions by; each is a float per face (NaN when no face was found).
MEASURES = ("smile", "mouth_open", "yaw", "saturation")
DESCRIPTIONS = {
    "smile": "mouth width / inter-ocular distance",
    "mouth_open": "inner-lip gap / inter-ocular distance",
    "yaw": "nose tip left(-)/right(+) of the eye midpoint, along the eye line, / inter-ocular distance",
    "saturation": "mean HSV saturation in [0, 1] (0 = black-and-white)",
}
# 68-point indices (iBUG 300-W numbering, 0-based).
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)
MOUTH_LEFT, MOUTH_RIGHT, INNER_LIP_TOP, INNER_LIP_BOTTOM, NOSE_TIP = 48, 54, 62, 66, 30
# Generated faces are 64 px or smaller: dlib's HOG detector finds faces from ~80 px, and a tight crop leaves it
# no margin, so a face is enlarged to DETECT_SIZE and framed by a replicated border before detecting.
DETECT_SIZE, DETECT_BORDER = 192, 32


def as_rgb(image):
    """uint8 (H, W), (H, W, 1) or (H, W, 3) -> contiguous uint8 (H, W, 3)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image, dtype=np.uint8)


def find_landmarks(image):
    """The (68, 2) landmarks of the most confident face, in the input image's pixel coordinates, or None."""
    rgb = as_rgb(image)
    h, w = rgb.shape[:2]
    scale = DETECT_SIZE / max(h, w) if max(h, w) < DETECT_SIZE else 1.0
    big = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC) if scale != 1 else rgb
    big = cv2.copyMakeBorder(big, *[DETECT_BORDER] * 4, cv2.BORDER_REPLICATE)
    faces = dlib_models.detect_faces(big, upsample=0)  # the face already fills DETECT_SIZE: upsampling finds no more
    if not faces:
        return None
    points = dlib_models.landmarks(big, faces[0][0], 68)
    return (points - DETECT_BORDER) / scale


def saturation(image):
    """Mean HSV saturation in [0, 1]; 0 for a grayscale image."""
    hsv = cv2.cvtColor(as_rgb(image), cv2.COLOR_RGB2HSV)
    return float(hsv[..., 1].mean() / 255.0)


def landmark_measures(points):
    """smile, mouth_open and yaw from 68 landmarks, all in units of the inter-ocular distance (scale-free)."""
    left_eye, right_eye = points[LEFT_EYE].mean(axis=0), points[RIGHT_EYE].mean(axis=0)
    eye_line = right_eye - left_eye
    iod = float(np.linalg.norm(eye_line))
    if iod < 1e-6:
        return {"smile": np.nan, "mouth_open": np.nan, "yaw": np.nan}
    along = eye_line / iod
    nose_offset = points[NOSE_TIP] - (left_eye + right_eye) / 2
    return {
        "smile": float(np.linalg.norm(points[MOUTH_RIGHT] - points[MOUTH_LEFT]) / iod),
        "mouth_open": float(np.linalg.norm(points[INNER_LIP_BOTTOM] - points[INNER_LIP_TOP]) / iod),
        # A frontal face has its nose tip under the eye midpoint; turning the head moves it along the eye line.
        "yaw": float(np.dot(nose_offset, along) / iod),
    }


def measure(image):
    """All MEASURES of one uint8 face image, plus "face_found" (landmark measures are NaN when it is False)."""
    points = find_landmarks(image)
    out = landmark_measures(points) if points is not None else {"smile": np.nan, "mouth_open": np.nan, "yaw": np.nan}
    out["saturation"] = saturation(image)
    out["face_found"] = points is not None
    return out


def measure_all(images):
    """Measure a batch of uint8 images: {measure: float array (N,)} and "face_found": bool array (N,)."""
    rows = [measure(image) for image in images]
    out = {m: np.array([r[m] for r in rows], np.float64) for m in MEASURES}
    out["face_found"] = np.array([r["face_found"] for r in rows], bool)
    return out


def effect(values, t):
    """How strongly a measure follows a swept z value: the least-squares slope of values against t over the
    faces where it was measured (NaN when fewer than three were)."""
    ok = np.isfinite(values)
    if ok.sum() < 3 or np.ptp(t[ok]) == 0:
        return np.nan
    return float(np.polyfit(t[ok], values[ok], 1)[0])
