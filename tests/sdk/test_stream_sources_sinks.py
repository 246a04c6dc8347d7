"""VideoSource (file, folder, glob, image, HTTP MJPEG with reconnects, iterables) and the sinks."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from stream_helpers import MjpegServer, count_video_frames, level_frame, level_of, write_video

from sdk.stream import (
    CallbackSink,
    Frame,
    ImageFileSink,
    ImageFolderSink,
    NullSink,
    VideoFileSink,
    VideoSource,
    WindowSink,
    open_sink,
)
from sdk.stream.sinks import opencv_has_gui


def test_video_file_yields_every_frame_in_order_with_index_and_timestamp(tmp_path):
    path = write_video(tmp_path / "clip.mp4", 12, fps=20)
    with VideoSource(path) as source:
        assert (source.kind, source.is_live, source.fps, source.frame_count) == ("file", False, 20.0, 12)
        frames = list(source)
        assert source.ended and source.read() is None
    assert [f.index for f in frames] == list(range(12))
    assert [level_of(f.image) for f in frames] == list(range(12))
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(12) / 20, atol=1e-3)


def test_image_folder_glob_and_single_image(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2, 10):                                # natural order: 2 before 10
        cv2.imwrite(str(folder / f"f{i}.png"), level_frame(i))
    (folder / "notes.txt").write_text("not an image")
    frames = list(VideoSource(folder, fps=10))
    assert [level_of(f.image) for f in frames] == [1, 2, 10]
    assert [f.timestamp for f in frames] == [0.0, 0.1, 0.2]
    assert [level_of(f.image) for f in VideoSource(str(folder / "f1*.png"))] == [1, 10]
    single = VideoSource(folder / "f2.png")
    assert single.kind == "image" and [level_of(f.image) for f in single] == [2]


def test_source_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="video source not found"):
        VideoSource(tmp_path / "nope.mp4")
    with pytest.raises(FileNotFoundError, match="no images match"):
        VideoSource(str(tmp_path / "*.png"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        VideoSource(tmp_path / "empty")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(ValueError, match="not a video OpenCV can decode"):
        VideoSource(bad)
    with pytest.raises(ValueError, match="csi://N"):
        VideoSource("csi://front")


def test_http_mjpeg_stream_is_live_and_reads_with_timeout():
    server = MjpegServer(per_connection=None, interval=0.01)
    try:
        with VideoSource(server.url) as source:
            assert (source.kind, source.is_live) == ("http", True)
            frames = [source.read(timeout=5.0) for _ in range(5)]
            assert all(isinstance(f, Frame) for f in frames)
            assert frames[0].image.shape == (48, 64, 3)
            indices = [f.index for f in frames]
            assert indices == sorted(indices) and len(set(indices)) == 5
    finally:
        server.close()


def test_live_source_reconnects_when_the_stream_drops():
    server = MjpegServer(per_connection=4, interval=0.01)      # the server hangs up every 4 frames
    try:
        source = VideoSource(server.url, backoff=(0.05, 0.2))
        got, deadline = [], time.monotonic() + 20
        while len(got) < 10 and time.monotonic() < deadline:
            frame = source.read(timeout=1.0)
            if frame is not None:
                got.append(frame)
        source.close()
        assert len(got) >= 10, f"only {len(got)} frames in 20 s"
        assert source.reconnects >= 2 and server.connections >= 3
        assert source.ended                                  # closed: no more frames
    finally:
        server.close()


def test_live_source_gives_up_after_max_reconnects():
    server = MjpegServer(per_connection=4, interval=0.01)
    source = VideoSource(server.url, backoff=(0.05, 0.05), max_reconnects=1)
    server.close()                                           # the camera goes away for good
    deadline = time.monotonic() + 15
    while not source.ended and time.monotonic() < deadline:
        source.read(timeout=0.2)
    assert source.ended and isinstance(source.error, ConnectionError)
    source.close()


def test_iterable_source_live_and_not():
    frames = [level_frame(i) for i in range(5)]
    assert [f.index for f in VideoSource.from_iterable(frames)] == [0, 1, 2, 3, 4]
    live = VideoSource.from_iterable(iter(frames), live=True, buffer=8)
    got = []
    while not live.ended:
        frame = live.read(timeout=1.0)
        if frame is not None:
            got.append(frame.index)
    assert got == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_video_file_sink_writes_a_playable_file_with_every_frame(tmp_path, backend):
    path = tmp_path / f"out_{backend}.mp4"
    sink = VideoFileSink(path, fps=15, backend=backend)
    for i in range(9):
        sink.write(level_frame(i, (37, 51)))                 # odd size: padded to even for yuv420p
    sink.write(level_frame(9, (37, 51))[..., 0])             # grayscale
    sink.write(np.full((37, 51, 3), 0.5, np.float32))        # float in [0, 1]
    sink.close()
    assert sink.backend == backend
    assert count_video_frames(path) == (11, 11)
    cap = cv2.VideoCapture(str(path))
    ok, first = cap.read()
    cap.release()
    assert ok and first.shape == (38, 52, 3) and level_of(first) == 0


def test_video_file_sink_refuses_a_size_change_and_unknown_suffix(tmp_path):
    sink = VideoFileSink(tmp_path / "a.mp4")
    sink.write(level_frame(0, (32, 32)))
    with pytest.raises(ValueError, match="frames must all be 32x32"):
        sink.write(level_frame(0, (64, 64)))
    sink.close()
    with pytest.raises(ValueError, match="video output must end in"):
        VideoFileSink(tmp_path / "a.gif")


def test_image_sinks(tmp_path):
    frame = Frame(level_frame(3), 7, 0.0, 0.0)
    folder = ImageFolderSink(tmp_path / "out")
    rgba = np.dstack([level_frame(3), np.full((48, 64), 200, np.uint8)])
    folder.write(rgba, frame)
    saved = cv2.imread(str(tmp_path / "out" / "frame_000007.png"), cv2.IMREAD_UNCHANGED)
    assert saved.shape == (48, 64, 4) and (saved[..., 3] == 200).all()
    single = ImageFileSink(tmp_path / "one.jpg")
    single.write(level_frame(2), frame)
    assert level_of(cv2.imread(str(tmp_path / "one.jpg"))) == 2
    with pytest.raises(ValueError, match="single image but the input has several frames"):
        single.write(level_frame(2), frame)
    seen = []
    callback = CallbackSink(lambda image, f: seen.append(f.index))
    callback.write(level_frame(0), frame)
    null = NullSink()
    null.write(level_frame(0), frame)
    assert seen == [7] and null.frames == 1


def test_open_sink_picks_by_suffix(tmp_path):
    assert isinstance(open_sink(tmp_path / "v.mkv"), VideoFileSink)
    assert isinstance(open_sink(tmp_path / "dir"), ImageFolderSink)
    assert isinstance(open_sink(tmp_path / "x.png", single_image=True), ImageFileSink)
    with pytest.raises(ValueError, match="input is a stream"):
        open_sink(tmp_path / "x.png")
    with pytest.raises(ValueError, match="unknown output type"):
        open_sink(tmp_path / "x.xyz")


@pytest.mark.skipif(opencv_has_gui(), reason="this OpenCV has a GUI")
def test_window_sink_on_headless_opencv_says_what_to_install():
    with pytest.raises(RuntimeError, match="pip install opencv-python"):
        WindowSink()


def test_video_file_sink_closes_the_file_even_when_flushing_fails(tmp_path):
    sink = VideoFileSink(tmp_path / "flush.mp4", backend="pyav")
    sink.write(level_frame(0, (32, 32)))
    real_container, real_stream = sink._container, sink._stream
    closed = []

    class FailingFlush:
        def encode(self, frame=None):
            if frame is None:
                raise RuntimeError("encoder flush failed")
            return real_stream.encode(frame)

    class RecordingContainer:
        def mux(self, packet):
            real_container.mux(packet)

        def close(self):
            closed.append(True)
            real_container.close()

    sink._stream, sink._container = FailingFlush(), RecordingContainer()
    with pytest.raises(RuntimeError, match="encoder flush failed"):
        sink.close()
    assert closed == [True] and sink._container is None
    sink.close()                                  # a second close has nothing left to do
    assert closed == [True]
