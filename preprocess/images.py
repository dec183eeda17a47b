"""Decode any photo file to uint8 RGB with Pillow: EXIF orientation, odd modes, and guards against bad files."""
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


class BadImage(Exception):
    """A file that cannot be used as a photo; str(e) is the reason recorded in the manifest."""


def _to_8bit(array):
    """16-bit or float pixels -> uint8, keeping the full range the file uses."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array
    array = array.astype(np.float64)
    top = 65535.0 if array.max() > 255 else 255.0
    return np.clip(np.rint(array / top * 255.0), 0, 255).astype(np.uint8)


def load_rgb(path, max_pixels=40_000_000):
    """Read a photo as (uint8 RGB array, info dict); raises BadImage with a reason for anything unusable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                info = {"format": im.format, "mode": im.mode, "width": im.width, "height": im.height,
                        "frames": getattr(im, "n_frames", 1)}
                # Checked from the header, before any pixel is decoded: a tiny file can declare a huge image.
                if im.width * im.height > max_pixels:
                    raise BadImage(f"too large: {im.width}x{im.height} pixels over --max_pixels {max_pixels}")
                if im.width < 1 or im.height < 1:
                    raise BadImage("empty image")
                im.seek(0)  # animated GIF/WebP: the first frame
                im.load()
                orientation = im.getexif().get(0x0112, 1)
                im = ImageOps.exif_transpose(im)
                info["exif_orientation"] = int(orientation) if isinstance(orientation, int) else 1
                gray = im.mode in GRAY_MODES
                if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                    rgb = np.repeat(_to_8bit(np.array(im))[..., None], 3, axis=2)
                else:
                    if im.mode == "P":
                        im = im.convert("RGBA")
                    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
                        # Transparent pixels become white (how a browser shows them on a page), not black.
                        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                        im = Image.alpha_composite(background, im.convert("RGBA"))
                    rgb = np.array(im.convert("RGB"))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadImage(f"too large: {e}") from None
    except UnidentifiedImageError:
        raise BadImage("not an image (unknown format)") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as e:
        msg = str(e) or type(e).__name__
        if "truncated" in msg:
            raise BadImage(f"truncated: {msg}") from None
        raise BadImage(f"undecodable: {msg}"[:200]) from None
    if not gray:
        # Colour files that hold a grayscale photo (all channels equal, e.g. a scanned print) count as grayscale.
        small = rgb[::max(1, rgb.shape[0] // 64), ::max(1, rgb.shape[1] // 64)].astype(np.int16)
        gray = bool(np.abs(small - small.mean(axis=2, keepdims=True)).max() <= 3)
    info["grayscale"] = gray
    return np.ascontiguousarray(rgb), info
