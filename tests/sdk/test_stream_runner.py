"""sdk.run: drop policies under a slow backend, no drops for files, clean stop, hooks, sharp skipping, errors."""

from __future__ import annotations

import _thread
import threading
import time

import cv2
import numpy as np
import pytest
from sdk_onnx_models import affine_uint8
from stream_helpers import (
    MjpegServer,
    PacedLiveSource,
    SlowIdentity,
    count_video_frames,
    level_frame,
    level_of,
    write_video,
)

import sdk
from sdk.stream import CallbackSink, ImageFolderSink, VideoFileSink, VideoSource


def collect(indices: list[int]) -> CallbackSink:
    return CallbackSink(lambda image, frame: indices.append(frame.index))


def test_file_stream_processes_every_frame_in_order_and_never_drops(onnx_models, tmp_path):
    clip = write_video(tmp_path / "in.mp4", 20)
    deblur = sdk.Deblurrer(onnx_models["affine"], device="cpu", threads=1)
    seen: list[int] = []
    with pytest.warns(UserWarning, match="never dropped"):   # asking a file to drop is ignored, with a warning
        runner = sdk.run(clip, deblur, sinks=[VideoFileSink(tmp_path / "out.mp4", fps=25), collect(seen)],
                         drop="oldest")
    snap = runner.snapshot()
    assert runner.drop == "block" and seen == list(range(20))
    assert (snap.captured, snap.processed, snap.written, snap.dropped) == (20, 20, 20, 0)
    assert set(snap.latency_ms) == {"capture", "pre", "infer", "post", "write", "latency"}
    assert count_video_frames(tmp_path / "out.mp4") == (20, 20)
    first_in = next(iter(VideoSource(clip))).image
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    ok, first_out = cap.read()
    cap.release()
    # The output is the model's answer (x * 0.5 + 0.25) to the decoded input, within what one more
    # H.264 round trip costs (FFmpeg's BGR<->YUV420 conversion here shifts flat grays by up to 5 levels).
    assert ok and np.abs(first_out.astype(int) - affine_uint8(first_in, 0.5, 0.25)).max() <= 6
    assert np.abs(first_out.astype(int) - first_in).min() > 40


def test_image_folder_in_image_folder_out(onnx_models, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        cv2.imwrite(str(src / f"{i}.png"), level_frame(i))
    deblur = sdk.Deblurrer(onnx_models["affine"], device="cpu", threads=1)
    sdk.run(src, deblur, sinks=[ImageFolderSink(tmp_path / "dst")])
    written = sorted((tmp_path / "dst").glob("*.png"))
    assert [p.name for p in written] == [f"frame_{i:06d}.png" for i in range(4)]
    np.testing.assert_array_equal(cv2.imread(str(written[2])), affine_uint8(level_frame(2), 0.5, 0.25))


def run_slow(drop: str, source, delay: float = 0.08, queue_size: int = 2):
    seen: list[int] = []
    deblur = sdk.Deblurrer(SlowIdentity(delay))
    runner = sdk.run(source, deblur, sinks=[collect(seen)], queue_size=queue_size, drop=drop, block=False)
    assert runner.join(timeout=60), "stream did not finish"
    return runner, seen, deblur


def test_drop_oldest_keeps_the_newest_frames(tmp_path):
    source = PacedLiveSource(count=40, interval=0.005)        # 200 fps camera, 12 fps network
    runner, seen, deblur = run_slow("oldest", source)
    snap = runner.snapshot()
    assert seen == sorted(seen) and len(seen) < 40
    assert seen[-1] == 39                                       # the newest frame always makes it
    assert seen[1] > 2                                          # stale frames were skipped, not queued
    assert snap.dropped == 40 - len(seen) and snap.captured == 40
    assert max(runner.queue_peaks) <= 2                         # no queue grew
    # Dropped frames hand their buffers back: a handful serve all 40 frames.
    assert deblur._pool.allocations <= 8


def test_drop_newest_keeps_what_is_queued():
    source = PacedLiveSource(count=40, interval=0.005)
    runner, seen, _ = run_slow("newest", source)
    snap = runner.snapshot()
    assert seen[:2] == [0, 1]                                   # queued frames keep their place
    assert seen == sorted(seen) and snap.dropped == 40 - len(seen) > 0
    assert max(runner.queue_peaks) <= 2


def test_live_sources_default_to_drop_oldest_and_files_to_block(tmp_path):
    live = sdk.StreamRunner(PacedLiveSource(1, 0.0), lambda x: x)
    assert live.drop == "oldest"
    clip = write_video(tmp_path / "c.mp4", 2)
    assert sdk.StreamRunner(VideoSource(clip), lambda x: x).drop == "block"


def test_block_on_a_file_like_source_drops_nothing_under_a_slow_backend():
    frames = [level_frame(i, (8, 8)) for i in range(15)]
    runner, seen, _ = run_slow("block", VideoSource.from_iterable(frames), delay=0.01)
    assert seen == list(range(15)) and runner.snapshot().dropped == 0
    assert max(runner.queue_peaks) <= 2


def test_stopped_run_leaves_a_playable_file_with_every_written_frame(tmp_path):
    clip = write_video(tmp_path / "long.mp4", 150)
    out = tmp_path / "stopped.mp4"
    runner = sdk.run(clip, sdk.Deblurrer(SlowIdentity(0.01)), sinks=[VideoFileSink(out, fps=25)], block=False)
    deadline = time.monotonic() + 30
    while runner.snapshot().written < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    runner.stop()
    assert runner.join(timeout=30)
    written = runner.snapshot().written
    assert 10 <= written < 150
    assert count_video_frames(out) == (written, written)


def test_ctrl_c_stops_cleanly_and_flushes(tmp_path):
    out = tmp_path / "interrupted.mp4"
    runner = sdk.StreamRunner(PacedLiveSource(count=10_000, interval=0.01), sdk.Deblurrer(SlowIdentity(0.0)),
                              sinks=[VideoFileSink(out, fps=25)]).start()

    done = threading.Event()

    def interrupt() -> None:
        # Ctrl-C once frames are flowing (a loaded machine may take seconds to write the first one).
        deadline = time.monotonic() + 60
        while not done.is_set() and runner.snapshot().written < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        if runner.running and not done.is_set():
            _thread.interrupt_main()    # what Ctrl-C does: KeyboardInterrupt in the main thread

    timer = threading.Thread(target=interrupt, daemon=True)
    timer.start()
    try:
        runner.wait()
    finally:
        done.set()
    assert runner.interrupted and not runner.running
    written = runner.snapshot().written
    assert written > 0 and count_video_frames(out) == (written, written)


def test_on_frame_may_replace_or_drop_frames(onnx_models):
    frames = [level_frame(i, (8, 8)) for i in range(6)]
    results: list[np.ndarray] = []

    def hook(frame, result):
        if frame.index % 2:
            return None
        return 255 - result

    runner = sdk.run(VideoSource.from_iterable(frames), sdk.Deblurrer(onnx_models["identity"], device="cpu"),
                     sinks=[CallbackSink(lambda image, frame: results.append(image))], on_frame=hook)
    snap = runner.snapshot()
    assert (snap.written, snap.dropped_by_hook) == (3, 3)
    assert [level_of(255 - r) for r in results] == [0, 2, 4]


def test_skip_sharp_passes_sharp_frames_through_untouched(onnx_models):
    from sdk.cli.demo import load_demo_image, make_demo_clip

    pairs = make_demo_clip(load_demo_image(), frames=4, size=(64, 96))
    frames = [image for pair in pairs for image in pair]          # blurred, sharp, blurred, sharp, ...
    blurred, sharp = [sdk.blur_score(b) for b, _ in pairs], [sdk.blur_score(s) for _, s in pairs]
    assert max(blurred) < min(sharp)
    threshold = (max(blurred) + min(sharp)) / 2
    results: list[np.ndarray] = []
    runner = sdk.run(VideoSource.from_iterable(frames), sdk.Deblurrer(onnx_models["affine"], device="cpu"),
                     sinks=[CallbackSink(lambda image, frame: results.append(image))], skip_sharp=True,
                     sharp_threshold=threshold)
    assert runner.snapshot().skipped_sharp == 4
    for i, (frame, result) in enumerate(zip(frames, results)):
        expected = frame if i % 2 else affine_uint8(frame, 0.5, 0.25)
        np.testing.assert_array_equal(result, expected)


def test_a_failing_stage_stops_the_stream_and_reraises(tmp_path):
    calls = []

    def flaky(image):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("accelerator fell over")
        return image

    out = tmp_path / "partial.mp4"
    with pytest.raises(RuntimeError, match="accelerator fell over"):
        sdk.run(VideoSource.from_iterable([level_frame(i) for i in range(50)]), flaky,
                sinks=[VideoFileSink(out, fps=25)])
    pyav, opencv = count_video_frames(out)         # what was written before the error is still playable
    assert pyav == opencv and 1 <= pyav <= 4


def test_mjpeg_stream_through_run_with_max_frames(onnx_models):
    server = MjpegServer(per_connection=None, interval=0.01)
    try:
        seen: list[int] = []
        runner = sdk.run(server.url, sdk.Deblurrer(onnx_models["identity"], device="cpu"), sinks=[collect(seen)],
                         max_frames=8, block=False)
        assert runner.join(timeout=30)
        snap = runner.snapshot()
        assert snap.captured == 8 and snap.written == len(seen) >= 1
        assert snap.written + snap.counts["dropped"] >= 8 - 1    # every captured frame is written or counted
    finally:
        server.close()


def test_run_refuses_rgb_deblurrers_and_non_callables(onnx_models):
    rgb = sdk.Deblurrer(onnx_models["identity"], device="cpu", color="rgb")
    with pytest.raises(ValueError, match="color='bgr'"):
        sdk.StreamRunner(PacedLiveSource(1, 0.0), rgb)
    with pytest.raises(TypeError, match="needs a Deblurrer"):
        sdk.StreamRunner(PacedLiveSource(1, 0.0), None)
    with pytest.raises(ValueError, match="drop must be one of"):
        sdk.StreamRunner(PacedLiveSource(1, 0.0), lambda x: x, drop="latest")


@pytest.mark.parametrize("bad, match", [
    ({"queue_size": 0}, "queue_size must be an int >= 1, got 0"),
    ({"queue_size": 1.5}, "queue_size must be an int >= 1"),
    ({"max_frames": 0}, "max_frames must be None or an int >= 1"),
    ({"on_frame": "not a hook"}, "on_frame must be callable"),
    ({"sinks": [object()]}, "every sink needs write"),
    ({"sharp_threshold": "high"}, "sharp_threshold must be a number"),
])
def test_bad_arguments_are_refused_before_the_source_opens(tmp_path, monkeypatch, bad, match):
    import sdk.stream.runner as runner_module

    clip = write_video(tmp_path / "c.mp4", 2)
    opened = []
    real_as_source = runner_module.as_source
    monkeypatch.setattr(runner_module, "as_source", lambda source: opened.append(source) or real_as_source(source))
    with pytest.raises((ValueError, TypeError), match=match):
        sdk.run(str(clip), lambda image: image, **bad)
    assert opened == []


def test_a_source_the_runner_opened_is_closed_when_set_up_fails_after_it(tmp_path, monkeypatch):
    import warnings

    import sdk.stream.runner as runner_module

    clip = write_video(tmp_path / "c.mp4", 2)
    opened: list[VideoSource] = []
    real_as_source = runner_module.as_source

    def spy(source):
        result = real_as_source(source)
        opened.append(result[0])
        return result

    monkeypatch.setattr(runner_module, "as_source", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # the "never dropped" warning now fails the set-up after opening
        with pytest.raises(UserWarning, match="never dropped"):
            sdk.StreamRunner(str(clip), lambda image: image, drop="oldest")
    assert len(opened) == 1 and opened[0].ended and opened[0]._reader.cap is None
