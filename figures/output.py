"""What a visualize run writes: PNG, looping GIF, H.264 MP4 and JSON files, and their index, figures.json."""
import os

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np
from absl import logging

import utils
from figures.draw import cell_factor, enlarge, pad

INDEX_FILE = "figures.json"
GIF_FPS, VIDEO_FPS = 20, 25  # GIF delays are whole centiseconds: 50 and 40 ms
MIN_VIDEO_SIDE = 256  # small frames are enlarged (nearest neighbour) so players show them at a usable size


def write_gif(path, frames, fps=GIF_FPS):
    """An endlessly looping GIF. GIF writers merge identical consecutive frames (adding their durations), so a
    reader may see fewer frames; the total duration is always len(frames) / fps."""
    with utils.atomic_path(path) as tmp:
        iio.imwrite(tmp, np.asarray(frames), extension=".gif", duration=1000.0 / fps, loop=0)


def video_frames(frames):
    """Enlarge small frames (nearest neighbour) and pad to multiples of 16, as H.264 in yuv420p needs."""
    frames = np.asarray(frames)
    factor = cell_factor(frames, MIN_VIDEO_SIDE)
    h, w = frames.shape[1] * factor, frames.shape[2] * factor
    hp, wp = -(-h // 16) * 16, -(-w // 16) * 16
    return [pad(enlarge(f, factor), hp, wp) for f in frames]


def write_mp4(path, frames, fps=VIDEO_FPS):
    """An H.264 MP4 (libx264, yuv420p) that browsers and players open, one video frame per input frame."""
    with utils.atomic_path(path) as tmp:
        with imageio_v2.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=8,
                                   pixelformat="yuv420p", macro_block_size=16, ffmpeg_log_level="error") as w:
            for frame in video_frames(frames):
                w.append_data(frame)


class Figures:
    """The files one visualize run writes (and the figures it skipped, with why), indexed in figures.json."""

    def __init__(self, out_dir):
        self.out_dir = out_dir
        os.makedirs(out_dir, exist_ok=True)
        self.written, self.skipped = [], []

    def _add(self, name, kind, caption, info):
        self.written.append({"file": name, "kind": kind, "caption": caption, **info})
        logging.info("wrote %s", os.path.join(self.out_dir, name))
        return os.path.join(self.out_dir, name)

    def png(self, name, image, caption, **info):
        utils.imwrite(os.path.join(self.out_dir, name), image)
        return self._add(name, "png", caption, {"size": list(image.shape[:2][::-1]), **info})

    def gif(self, name, frames, caption, fps=GIF_FPS, **info):
        write_gif(os.path.join(self.out_dir, name), frames, fps)
        return self._add(name, "gif", caption, {"frames": len(frames), "fps": fps, **info})

    def mp4(self, name, frames, caption, fps=VIDEO_FPS, **info):
        write_mp4(os.path.join(self.out_dir, name), frames, fps)
        return self._add(name, "mp4", caption, {"frames": len(frames), "fps": fps, **info})

    def json(self, name, obj, caption):
        utils.write_json(os.path.join(self.out_dir, name), obj)
        return self._add(name, "json", caption, {})

    def skip(self, figure, reason):
        self.skipped.append({"figure": figure, "reason": reason})
        logging.warning("skipped %s: %s", figure, reason)

    def write_index(self, meta):
        """figures.json; entries of earlier runs into the same folder are kept unless this run rewrote the file."""
        path = os.path.join(self.out_dir, INDEX_FILE)
        old = utils.read_json(path) if os.path.isfile(path) else {}
        mine = {e["file"] for e in self.written}
        kept = [e for e in old.get("figures", []) if e["file"] not in mine and
                os.path.exists(os.path.join(self.out_dir, e["file"]))]
        redone = {s["figure"] for s in self.skipped} | {e.get("figure") for e in self.written}
        skipped = [s for s in old.get("skipped", []) if s["figure"] not in redone] + self.skipped
        utils.write_json(path, {**meta, "figures": kept + self.written, "skipped": skipped})
        return path

    def table(self):
        lines = [f"{'file':<34} {'kind':<5} caption"]
        lines += [f"{e['file']:<34} {e['kind']:<5} {e['caption']}" for e in self.written]
        lines += [f"{'(skipped) ' + s['figure']:<40} {s['reason']}" for s in self.skipped]
        return "\n".join(lines)
