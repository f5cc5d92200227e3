"""Encode frames as videos a browser plays, thumbnails and side-by-side pairs (no env code).

Encoding uses PyAV (FFmpeg's libraries in-process, with libx264 and libvpx in its wheels):
no ffmpeg binary or subprocess to manage, frames go straight from numpy arrays, and the same
library decodes the files again for checks. ``.mp4`` is H.264 (yuv420p, ``+faststart`` so
playback starts before the download ends); ``.webm`` is VP9. Both play in current browsers.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

_CODECS = {".mp4": "libx264", ".webm": "libvpx-vp9"}


@dataclass(frozen=True)
class VideoInfo:
    """What a decoder finds in a video file."""

    frames: int
    width: int
    height: int
    fps: float


def _even(frames: np.ndarray) -> np.ndarray:
    """Pad height and width to even sizes (yuv420p needs them) by repeating the edge."""
    _, h, w, _ = frames.shape
    if h % 2 == 0 and w % 2 == 0:
        return frames
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def encode_video(frames: np.ndarray, path: str | Path, fps: float) -> Path:
    """Write ``frames`` [T, H, W, 3] uint8 RGB to ``path`` (.mp4: H.264, .webm: VP9)."""
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be [T, H, W, 3] uint8, got {frames.shape} {frames.dtype}")
    if len(frames) == 0:
        raise ValueError("cannot encode a video without frames")
    codec = _CODECS.get(path.suffix.lower())
    if codec is None:
        raise ValueError(f"video path must end in .mp4 or .webm, got {path.name!r}")
    frames = _even(frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1000)
    options = {"movflags": "+faststart"} if codec == "libx264" else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width = frames.shape[2]
        stream.height = frames.shape[1]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "23", "preset": "veryfast"}
        else:
            stream.options = {"crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8"}
        for frame in frames:
            packet = stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24"))
            container.mux(packet)
        container.mux(stream.encode(None))
    return path


def video_info(path: str | Path) -> VideoInfo:
    """Decode ``path`` completely and count its frames."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        rate = stream.average_rate or stream.guessed_rate or 0
        return VideoInfo(count, stream.width, stream.height, float(rate))


def write_thumbnail(frame: np.ndarray, path: str | Path) -> Path:
    """Write one RGB frame [H, W, 3] uint8 as a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(frame, dtype=np.uint8)).save(path, format="PNG")
    return path


def upscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of [T, H, W, C] frames by an integer ``factor``."""
    if factor <= 1:
        return frames
    return frames.repeat(factor, axis=1).repeat(factor, axis=2)


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 8) -> np.ndarray:
    """Frames [T, H, W, 3] of two clips next to each other, for the labelling page.

    The shorter clip holds its last frame; heights are padded (black) to the taller one.
    """
    T = max(len(left), len(right))
    H = max(left.shape[1], right.shape[1])

    def fit(clip: np.ndarray) -> np.ndarray:
        clip = np.concatenate([clip, np.repeat(clip[-1:], T - len(clip), axis=0)])
        return np.pad(clip, ((0, 0), (0, H - clip.shape[1]), (0, 0), (0, 0)))

    spacer = np.zeros((T, H, gap, 3), dtype=np.uint8)
    return np.concatenate([fit(left), spacer, fit(right)], axis=2)
