"""Face-detection rate: the share of images in which a dlib face detector finds a face, enlarged and framed."""
import cv2
import numpy as np

# Generated faces are 64 px or smaller: dlib's detectors find faces from ~80 px and a tight crop leaves them no
# margin, so each image is enlarged (cubic) so its long side is the detector's size and framed by a replicated
# border, as face_measures.py frames the figures' faces.
DETECTORS = ("cnn", "hog")
DETECT_SIZE = {"hog": 192, "cnn": 128}
DETECT_BORDER = 32
# What the detectors find in 1,000 real training crops (openface-aligned, 108-px centre crop at 64 px), measured
# 2026-12-03 (BENCHMARKS.md): the CNN (mmod) detector 96.9-98.4 % (two seeded subsets; 128 px as good as 192);
# the HOG (frontal) detector 89.7 %, and no other size or border of 11 tried raised it above 90.3 %. The crops HOG
# misses are plainly faces, most of them close, warped by the alignment, dim or blurred, so its rate cannot tell a
# good generator from the data. The CNN is the default; HOG is 13-20x faster.
DESCRIPTION = {"cnn": "dlib CNN (mmod) detector", "hog": "dlib HOG frontal detector"}


def framed(image, size=DETECT_SIZE["hog"]):
    """uint8 (H, W, 1 or 3) -> RGB enlarged so its long side is `size`, with a replicated border."""
    image = np.asarray(image, np.uint8)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    h, w = image.shape[:2]
    if max(h, w) < size:
        scale = size / max(h, w)
        image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(np.ascontiguousarray(image), *[DETECT_BORDER] * 4, cv2.BORDER_REPLICATE)


def faces_found(images, detector="cnn"):
    """bool (N,): whether the detector (no upsampling: the face already fills the frame) finds a face."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown face detector {detector!r}: use {' or '.join(DETECTORS)}")
    from preprocess import dlib_models  # dlib loads only for this metric
    return np.array([len(dlib_models.detect_faces(framed(im, DETECT_SIZE[detector]), upsample=0,
                                                  detector=detector)) > 0 for im in images], bool)
