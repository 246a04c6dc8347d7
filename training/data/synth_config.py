"""Parameters of ``deblur synth`` runs, kept free of heavy imports so the CLI can show the defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of one synthesis run (all recorded in ``synth.json``).

    Attributes:
        seed: the seed of every random draw.
        count: pairs in total (train + test, both modes).
        size: side of the square output images, pixels.
        test_fraction: share of pairs (and of photos / video frames) held out for testing.
        video_share: share of pairs made from video when both photos and videos are available.
        frames_per_blur: (min, max) odd number of (interpolated) frames averaged per video pair.
        interpolation: frame-rate multiplier of the flow interpolation (8: 25 fps -> 200 fps).
        noise: multiplier of the sensor-noise levels of ``camera.NoiseModel``; 0 turns noise off.
        blur_extent: longest shake trajectory, as a fraction of ``size``.
        kernels: (min, max) PSFs blended per shake image (1 = uniform blur).
        video_zoom: frames are resized so their shorter side is ``video_zoom * size`` before cropping.
        min_motion: wanted blur length of video pairs in pixels (mean flow x window span); the most
            moving of ``synth.VIDEO_TRIES`` random draws is used when none reaches it.
        max_video_frames: frames decoded per video, from its start (bounds memory on long videos).
    """

    seed: int = 0
    count: int = 300
    size: int = 256
    test_fraction: float = 0.15
    video_share: float = 0.5
    frames_per_blur: tuple[int, int] = (9, 33)
    interpolation: int = 8
    noise: float = 1.0
    blur_extent: float = 0.08
    kernels: tuple[int, int] = (1, 3)
    video_zoom: float = 1.25
    min_motion: float = 3.0
    max_video_frames: int = 1000

    def validate(self) -> None:
        checks = [
            (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
            (self.count >= 1, f"count must be >= 1, got {self.count}"),
            (self.size >= 16, f"size must be >= 16 pixels, got {self.size}"),
            (0.0 <= self.test_fraction < 1.0, f"test_fraction must be in [0, 1), got {self.test_fraction}"),
            (0.0 <= self.video_share <= 1.0, f"video_share must be in [0, 1], got {self.video_share}"),
            (3 <= self.frames_per_blur[0] <= self.frames_per_blur[1]
             and self.frames_per_blur[0] % 2 == 1 and self.frames_per_blur[1] % 2 == 1,
             f"frames_per_blur must be odd (min, max) with 3 <= min <= max, got {self.frames_per_blur}"),
            (self.interpolation >= 1, f"interpolation must be >= 1, got {self.interpolation}"),
            (self.noise >= 0, f"noise must be >= 0, got {self.noise}"),
            (0 < self.blur_extent <= 0.5, f"blur_extent must be in (0, 0.5], got {self.blur_extent}"),
            (1 <= self.kernels[0] <= self.kernels[1], f"kernels must be (min, max) with 1 <= min <= max, got {self.kernels}"),
            (self.video_zoom >= 1.0, f"video_zoom must be >= 1, got {self.video_zoom}"),
            (self.min_motion >= 0, f"min_motion must be >= 0, got {self.min_motion}"),
            (self.max_video_frames >= 3, f"max_video_frames must be >= 3, got {self.max_video_frames}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
