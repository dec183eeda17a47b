"""Face-detection rate: the share of images in which dlib's HOG detector finds a face, enlarged as the figures do."""
import cv2
import numpy as np

# Generated faces are 64 px or smaller: dlib's HOG detector finds faces from ~80 px and a tight crop leaves it no
# margin, so each image is enlarged to DETECT_SIZE (cubic) and framed by a replicated border, the same framing
# face_measures.py gives the figures.
DETECT_SIZE, DETECT_BORDER = 192, 32


def framed(image):
    """uint8 (H, W, 1 or 3) -> RGB enlarged so its long side is DETECT_SIZE, with a replicated border."""
    image = np.asarray(image, np.uint8)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    h, w = image.shape[:2]
    if max(h, w) < DETECT_SIZE:
        scale = DETECT_SIZE / max(h, w)
        image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(np.ascontiguousarray(image), *[DETECT_BORDER] * 4, cv2.BORDER_REPLICATE)


def faces_found(images):
    """bool (N,): whether dlib's HOG detector (no upsampling: the face already fills the frame) finds a face."""
    from preprocess import dlib_models  # dlib loads only for this metric
    return np.array([len(dlib_models.detect_faces(framed(im), upsample=0)) > 0 for im in images], bool)
