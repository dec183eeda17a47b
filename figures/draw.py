"""Drawing helpers for the figures: generator output as uint8 RGB, grids, text bands, labelled rows, frames."""
import cv2
import numpy as np

import utils
from figures import face_measures

LABEL_MIN_CELL = 48  # labelled figures enlarge cells smaller than this so their text stays readable


def pixels(images):
    """Generator output in [-1, 1] -> uint8 (N, H, W, 3), grayscale repeated, so figures can draw in colour."""
    u8 = utils.to_uint8(np.asarray(images))
    return np.stack([face_measures.as_rgb(x) for x in u8]) if len(u8) else np.zeros((0, 1, 1, 3), np.uint8)


def enlarge(image, factor):
    return image if factor == 1 else cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


def cell_factor(images, min_side):
    return max(1, -(-min_side // min(images.shape[1:3])))


def text_scale(texts, width, height):
    """The largest font scale at which every text fits a width x height band (one size for a whole figure)."""
    scale = min(height / 30.0, 1.0)
    for text in texts:
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        if tw > width - 4:
            scale *= (width - 4) / tw
        if th + baseline > height - 4:  # descenders too, or a low band clips the letters
            scale *= (height - 4) / (th + baseline)
    return scale


def text_band(text, width, height, color=(255, 255, 255), background=(0, 0, 0), align="left", scale=None):
    """A (height, width, 3) strip with one line of text, scaled to fit."""
    band = np.full((height, width, 3), background, np.uint8)
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1
    scale = scale or text_scale([text], width, height)
    (tw, th), baseline = cv2.getTextSize(text, font, scale, thickness)
    x = 2 if align == "left" else max(2, (width - tw) // 2)
    cv2.putText(band, text, (x, (height + th - baseline) // 2), font, scale, color, thickness, cv2.LINE_AA)
    return band


def labelled_rows(rows, labels, label_width=None, header=None):
    """Stack rows of images (each (k, H, W, 3) uint8) into one figure with a text label left of each row."""
    factor = cell_factor(rows[0], LABEL_MIN_CELL)
    strips = [np.concatenate([enlarge(x, factor) for x in row], axis=1) for row in rows]
    row_h = strips[0].shape[0]
    label_width = label_width or max(120, 9 * max(len(s) for s in labels))
    scale = text_scale(labels, label_width, min(row_h, 40))
    body = np.concatenate([np.concatenate([text_band(lab, label_width, row_h, scale=scale), s], axis=1)
                           for lab, s in zip(labels, strips)], axis=0)
    if header:
        body = np.concatenate([text_band(header, body.shape[1], max(18, row_h // 3), align="center"), body], axis=0)
    return body


def framed(image, color, width):
    out = image.copy()
    out[:width], out[-width:], out[:, :width], out[:, -width:] = color, color, color, color
    return out


def pad(image, height, width, value=0):
    out = np.full((height, width) + image.shape[2:], value, image.dtype)
    out[:image.shape[0], :image.shape[1]] = image
    return out


def hstack(images, gap=8):
    h = max(x.shape[0] for x in images)
    parts = []
    for x in images:
        parts += [pad(x, h, x.shape[1]), np.zeros((h, gap, 3), np.uint8)]
    return np.concatenate(parts[:-1], axis=1)


def grid(images_u8, rows_cols=None):
    return utils.merge(images_u8, rows_cols or utils.image_manifold_size(len(images_u8)))
