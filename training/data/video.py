"""Temporal blur from sharp video, the way GoPro (Nah et al. 2017) and REDS were made.

A long exposure is the average of the light arriving during it. GoPro averaged 7-13 frames of a
240 fps camera; a 24-30 fps video is too coarse for that, so the frame rate is first raised by
optical-flow interpolation (OpenCV's DIS flow), then ``n`` consecutive (interpolated) frames centred
on a real frame are averaged in linear light. The real middle frame is the sharp target, so targets
carry no interpolation artefacts.

Intermediate frames at time ``t`` in (0, 1) between frames 0 and 1 use the flow approximation of
Super SloMo (Jiang et al. 2018): ``F_t0 = -(1-t) t F_01 + t^2 F_10``, ``F_t1 = (1-t)^2 F_01 - t (1-t) F_10``,
``I_t = (1-t) warp(I_0, F_t0) + t warp(I_1, F_t1)``.

Example::

    clip = VideoClip.from_file("clip.mp4", short_side=320)
    sample = clip.temporal_blur(centre=40, frames=17, factor=8, box=(0, 0, 256, 256))
    sample.blur, sample.sharp          # linear float32 (256, 256, 3)
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .camera import decode_srgb

# Frames whose mean absolute difference from the previous kept frame is below this (8-bit levels)
# are repeats, e.g. from 24 -> 25 fps conversion; dropping them keeps the time step uniform.
DUPLICATE_THRESHOLD = 0.1
# DIS preset: FAST is 4x quicker than MEDIUM (18 vs 76 ms at 569x320) and its interpolated midpoints
# of bigbuckbunny were within 0.8 dB of MEDIUM's (39.5 vs 40.3 dB PSNR against the real frame; a plain
# blend of the neighbours scored 36.8 dB), measured on this project's machine.
FLOW_PRESET = cv2.DISOPTICAL_FLOW_PRESET_FAST
# Mean absolute error (8-bit levels) of a flow-warped neighbour above which two frames are taken to
# straddle a scene cut; no blur window may span one.
CUT_THRESHOLD = 20.0
# Memory for cached flows; blur windows of nearby frames share flows, long videos evict the oldest.
FLOW_CACHE_BYTES = 256 * 2**20


@dataclass(frozen=True)
class TemporalSample:
    blur: np.ndarray      # linear float32 (h, w, 3): average of the frames
    sharp: np.ndarray     # linear float32 (h, w, 3): the real middle frame
    motion: float         # mean optical-flow magnitude in the box, pixels per source frame


def decode_video(path: str | Path, short_side: int | None = None, max_frames: int | None = None
                 ) -> tuple[list[np.ndarray], float, tuple[int, int]]:
    """Decode a video with PyAV into RGB uint8 frames, resized (area filter) so that the shorter side
    is ``short_side``. Returns ``(frames, fps, (height, width) before resizing)``."""
    try:
        import av
    except ImportError as exc:
        raise ImportError(f"{exc}; decoding video needs PyAV: pip install av") from None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path} has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else 0.0
            original = (stream.codec_context.height, stream.codec_context.width)
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(format="rgb24")
                if short_side is not None:
                    scale = short_side / min(rgb.shape[:2])
                    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
                    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
                    rgb = cv2.resize(rgb, size, interpolation=interp)
                frames.append(rgb)
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except av.error.FFmpegError as exc:
        raise ValueError(f"cannot decode video {path}: {exc}") from None
    if not frames:
        raise ValueError(f"video {path} has no decodable frames")
    return frames, fps, original


def drop_duplicates(frames: list[np.ndarray], threshold: float = DUPLICATE_THRESHOLD
                    ) -> tuple[list[np.ndarray], list[int]]:
    """Frames without repeats, and the original index of each kept frame."""
    kept, index = [frames[0]], [0]
    for i, frame in enumerate(frames[1:], start=1):
        if cv2.absdiff(frame, kept[-1]).mean() >= threshold:
            kept.append(frame)
            index.append(i)
    return kept, index


class VideoClip:
    """Frames of one video at working resolution with cached DIS flows between neighbours."""

    def __init__(self, frames: list[np.ndarray], source_index: list[int] | None = None) -> None:
        if len(frames) < 3:
            raise ValueError(f"temporal blur needs at least 3 distinct frames, got {len(frames)}")
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            raise ValueError(f"all frames must have one shape, got {sorted(shapes)}")
        self.frames = frames
        self.source_index = list(range(len(frames))) if source_index is None else source_index
        self.height, self.width = frames[0].shape[:2]
        self._grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        self._flows: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._max_flows = max(4, FLOW_CACHE_BYTES // (self.height * self.width * 2 * 4))
        self._cut: dict[int, bool] = {}
        self._dis = cv2.DISOpticalFlow_create(FLOW_PRESET)  # type: ignore[attr-defined]  # missing from cv2 stubs

    @classmethod
    def from_file(cls, path: str | Path, short_side: int | None = None,
                  max_frames: int | None = None) -> VideoClip:
        frames, _, _ = decode_video(path, short_side, max_frames)
        kept, index = drop_duplicates(frames)
        return cls(kept, index)

    def __len__(self) -> int:
        return len(self.frames)

    def linear(self, i: int) -> np.ndarray:
        """Frame ``i`` in linear light, float32 (H, W, 3)."""
        return decode_srgb(self.frames[i])

    def flow(self, i: int, j: int) -> np.ndarray:
        """DIS optical flow (H, W, 2) from frame ``i`` to frame ``j``: frame_i(x) ~ frame_j(x + flow(x))."""
        key = (i, j)
        if key in self._flows:
            self._flows.move_to_end(key)
        else:
            self._flows[key] = self._dis.calc(self._grey[i], self._grey[j], None)
            if len(self._flows) > self._max_flows:
                self._flows.popitem(last=False)
        return self._flows[key]

    def is_cut(self, i: int) -> bool:
        """Whether frames ``i`` and ``i + 1`` belong to different shots (flow cannot explain the change)."""
        if i not in self._cut:
            flow = self.flow(i, i + 1)
            grid_x, grid_y = np.meshgrid(np.arange(self.width, dtype=np.float32),
                                         np.arange(self.height, dtype=np.float32))
            warped = cv2.remap(self._grey[i + 1], grid_x + flow[..., 0], grid_y + flow[..., 1],
                               cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            self._cut[i] = float(cv2.absdiff(warped, self._grey[i]).mean()) > CUT_THRESHOLD
        return self._cut[i]

    def frame_at(self, time: float, box: tuple[int, int, int, int],
                 decoded: dict[int, np.ndarray] | None = None) -> np.ndarray:
        """The linear (h, w, 3) crop ``box`` = (x, y, w, h) of the frame at fractional ``time``.

        ``decoded`` memoises linear frames across calls that share source frames.
        """
        decoded = {} if decoded is None else decoded

        def linear(k: int) -> np.ndarray:
            if k not in decoded:
                decoded[k] = self.linear(k)
            return decoded[k]

        x, y, w, h = box
        i = math.floor(time)
        t = time - i
        if t == 0.0:
            return linear(i)[y:y + h, x:x + w]
        window = (slice(y, y + h), slice(x, x + w))
        f01, f10 = self.flow(i, i + 1)[window], self.flow(i + 1, i)[window]
        grid_x, grid_y = np.meshgrid(np.arange(x, x + w, dtype=np.float32), np.arange(y, y + h, dtype=np.float32))
        ft0 = -(1 - t) * t * f01 + t * t * f10
        ft1 = (1 - t) ** 2 * f01 - t * (1 - t) * f10
        from0 = cv2.remap(linear(i), grid_x + ft0[..., 0], grid_y + ft0[..., 1],
                          cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        from1 = cv2.remap(linear(i + 1), grid_x + ft1[..., 0], grid_y + ft1[..., 1],
                          cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return (1 - t) * from0 + t * from1

    @staticmethod
    def reach(frames: int, factor: int) -> int:
        """Source frames needed on each side of the centre for a window of ``frames`` at ``factor``x."""
        return math.ceil((frames - 1) / (2 * factor))

    def spans_cut(self, centre: int, frames: int, factor: int) -> bool:
        r = self.reach(frames, factor)
        return any(self.is_cut(i) for i in range(centre - r, centre + r))

    def motion(self, centre: int, frames: int, factor: int, box: tuple[int, int, int, int]) -> float:
        """Mean flow magnitude (pixels per source frame) inside ``box`` over the blur window."""
        x, y, w, h = box
        r = self.reach(frames, factor)
        if r == 0:
            return 0.0
        crops = [self.flow(i, i + 1)[y:y + h, x:x + w] for i in range(centre - r, centre + r)]
        mags = [cv2.magnitude(np.ascontiguousarray(f[..., 0]), np.ascontiguousarray(f[..., 1])).mean() for f in crops]
        return float(np.mean(mags))

    def temporal_blur(self, centre: int, frames: int, factor: int, box: tuple[int, int, int, int]
                      ) -> TemporalSample:
        """Average ``frames`` (odd) frames spaced ``1/factor`` apart around real frame ``centre``."""
        if frames < 1 or frames % 2 == 0:
            raise ValueError(f"frames per blur must be odd and >= 1, got {frames}")
        if factor < 1:
            raise ValueError(f"interpolation factor must be >= 1, got {factor}")
        r = self.reach(frames, factor)
        if centre - r < 0 or centre + r >= len(self):
            raise ValueError(f"frame {centre} with {frames} frames at {factor}x needs frames "
                             f"{centre - r}..{centre + r}; the clip has 0..{len(self) - 1}")
        half = (frames - 1) // 2
        total = np.zeros((box[3], box[2], 3), dtype=np.float32)
        decoded: dict[int, np.ndarray] = {}
        for k in range(-half, half + 1):
            total += self.frame_at(centre + k / factor, box, decoded)
        sharp = self.frame_at(centre, box, decoded).copy()
        return TemporalSample(total / frames, sharp, self.motion(centre, frames, factor, box))
