"""Soak test: a looping RTSP stream through ``sdk.run`` with the bundled model for a long time, with
server crashes (SIGKILL) and restarts on the way; writes ``benchmarks/results/<machine>/soak_rtsp.{json,md}``.

What it checks (and records): no stage crashed, every server restart was recovered (the source
reconnected and frames were written again), resident memory grew by less than ``--max-rss-growth-mb``
after warm-up, and the output video plays (PyAV and OpenCV decode the same number of frames, and
``ffprobe`` reads it when installed).

Example::

    taskset -c 0 python -m benchmarks.soak_rtsp --minutes 30 --restarts 2
    python -m benchmarks.soak_rtsp --minutes 1 --restarts 1 --results /tmp/soak   # a quick try
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2

from .report import refuse_overwrite, results_pair, write_json_and_markdown

RESULTS = Path(__file__).resolve().parent / "results"


def rss_mb() -> float:
    """This process's resident set size in MiB (from /proc, as `ps` reports it)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def write_frames(folder: Path, size: tuple[int, int], frames: int = 24) -> None:
    """The demo clip's blurred frames (a pan across sdk/data/demo_sharp.png), resized, as 00000.png ..."""
    from sdk.cli.demo import load_demo_image, make_demo_clip

    folder.mkdir(parents=True, exist_ok=True)
    for i, (blurred, _sharp) in enumerate(make_demo_clip(load_demo_image(), frames=frames)):
        small = cv2.resize(blurred, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"{i:05d}.png"), small)


def decoded_frames(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Frames decoded by PyAV and by OpenCV: a playable file gives the same count in both."""
    import av

    with av.open(str(path)) as container:
        pyav = sum(1 for _ in container.decode(video=0))
    cap = cv2.VideoCapture(str(path))
    opencv = 0
    while cap.read()[0]:
        opencv += 1
    cap.release()
    return pyav, opencv


def video_plays(path: Path) -> dict[str, Any]:
    """Decode the whole file with PyAV and OpenCV (and probe it with ffprobe when present)."""
    pyav, opencv = decoded_frames(path)
    report: dict[str, Any] = {"bytes": path.stat().st_size, "frames_pyav": pyav, "frames_opencv": opencv}
    if shutil.which("ffprobe"):
        probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                                "stream=nb_read_frames,codec_name,width,height", "-of", "json", str(path)],
                               capture_output=True, text=True, timeout=600)
        report["ffprobe_rc"] = probe.returncode
        report["ffprobe"] = json.loads(probe.stdout or "{}").get("streams", [{}])[0] if probe.returncode == 0 else probe.stderr[-500:]
    report["plays"] = pyav > 0 and pyav == opencv and report.get("ffprobe_rc", 0) == 0
    return report


def soak(minutes: float, restarts: int, size: tuple[int, int], fps: float, down_s: float, workdir: Path,
         max_rss_growth_mb: float, warmup_s: float) -> dict[str, Any]:
    import sdk
    from sdk.stream import VideoFileSink, VideoSource

    from .rtsp_server import RtspServer

    frames_dir = workdir / "frames"
    write_frames(frames_dir, size)
    output = workdir / "soak.mp4"
    duration = minutes * 60.0
    server = RtspServer(fps=fps, size=size, frames=frames_dir).start()
    samples: list[dict[str, float]] = []
    events: list[dict[str, Any]] = []
    runner = None
    t0 = time.monotonic()
    try:
        deblur = sdk.Deblurrer(None, device="cpu", threads=1)
        source = VideoSource(server.url, connect_timeout=30.0)
        runner = sdk.run(source, deblur, sinks=[VideoFileSink(output, fps=fps)], block=False)
        restart_at = [duration * (i + 1) / (restarts + 1) for i in range(restarts)]
        baseline: float | None = None
        while True:
            elapsed = time.monotonic() - t0
            snap = runner.snapshot()
            rss = rss_mb()
            if baseline is None and elapsed >= warmup_s:
                baseline = rss
            samples.append({"t_s": round(elapsed, 1), "rss_mb": round(rss, 1), "written": snap.counts["written"],
                            "dropped": snap.counts["dropped"], "reconnects": snap.counts["reconnects"]})
            if not runner.running:
                events.append({"t_s": round(elapsed, 1), "event": "runner stopped early", "error": repr(runner.error)})
                break
            if elapsed >= duration:
                break
            if restart_at and elapsed >= restart_at[0]:
                restart_at.pop(0)
                events.append(_restart(server, runner, down_s, t0))
            time.sleep(min(5.0, max(0.1, duration - elapsed)))
        runner.stop()
        crashed: str | None = None
        try:
            runner.join(timeout=60.0)
        except Exception as exc:  # noqa: BLE001 - a stage's error is what a soak reports, not what stops it
            crashed = repr(exc)
        final = runner.snapshot()
        source.close()
        deblur.close()
    finally:
        if runner is not None and runner.running:
            runner.stop()
            runner.join(timeout=30.0)
        server.stop()
    rss = [s["rss_mb"] for s in samples]
    baseline = baseline if baseline is not None else rss[0]
    after = [s["rss_mb"] for s in samples if s["t_s"] >= warmup_s] or rss
    restarts_ok = [e for e in events if e.get("event") == "server restart" and e["recovered"]]
    playback = video_plays(output)
    checks = {
        "no_crash": crashed is None and not any(e.get("event") == "runner stopped early" for e in events),
        "every_restart_recovered": len(restarts_ok) == restarts,
        "rss_growth_under_limit": max(after) - baseline < max_rss_growth_mb,
        "output_plays": playback["plays"] and playback["frames_pyav"] == final.counts["written"],
    }
    return {
        "minutes": minutes, "size_hw": list(size), "server_fps": fps, "restarts": restarts, "server_down_s": down_s,
        "crash": crashed, "events": events,
        "rss_mb": {"baseline_after_warmup": round(baseline, 1), "warmup_s": warmup_s, "max_after_warmup": max(after),
                   "final": rss[-1], "growth_max": round(max(after) - baseline, 1),
                   "growth_final": round(rss[-1] - baseline, 1), "limit": max_rss_growth_mb},
        "stats": final.to_dict(), "output": playback, "checks": checks, "passed": all(checks.values()),
        "samples": samples,
    }


def _restart(server: Any, runner: Any, down_s: float, t0: float) -> dict[str, Any]:
    """Kill the server, keep it down ``down_s`` s, start it again; recovered = reconnected and writing again."""
    before = runner.snapshot().counts
    killed_at = time.monotonic()
    server.kill()
    time.sleep(down_s)
    server.start()
    deadline = time.monotonic() + 120.0
    recovered = False
    while time.monotonic() < deadline:
        now = runner.snapshot().counts
        if now["reconnects"] > before["reconnects"] and now["written"] > before["written"] + 5:
            recovered = True
            break
        time.sleep(0.5)
    return {"t_s": round(killed_at - t0, 1), "event": "server restart", "recovered": recovered,
            "recovery_s": round(time.monotonic() - killed_at, 1), "reconnects": runner.snapshot().counts["reconnects"]}


def machine() -> dict[str, Any]:
    from .devices import detect_device, library_versions, notable_cpu_flags

    info = detect_device("cpu")
    versions = library_versions()
    for dist in ("av", "opencv-python", "opencv-python-headless"):
        try:
            import importlib.metadata as metadata

            versions[dist] = metadata.version(dist)
        except Exception:  # noqa: BLE001 - not installed
            continue
    gst = subprocess.run(["gst-inspect-1.0", "--version"], capture_output=True, text=True, check=False) \
        if shutil.which("gst-inspect-1.0") else None
    if gst is not None and gst.returncode == 0:
        versions["gstreamer"] = gst.stdout.splitlines()[-1].strip()
    return {"name": info.name, "slug": info.slug, "cpu_flags": notable_cpu_flags(),
            "platform": platform.platform(), "versions": versions}


def markdown(result: dict[str, Any]) -> str:
    r, m = result["soak"], result["machine"]
    lines = [f"# RTSP soak: {r['minutes']:g} min, {r['restarts']} server restarts -> "
             f"{'PASSED' if r['passed'] else 'FAILED'}", "",
             f"Machine: {m['name']}; CPU flags {', '.join(m['cpu_flags'])}; {m['platform']}.",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
             f"Note: {result['note']}", "",
             f"Stream: bundled model (ONNX Runtime, CPU, 1 thread), {r['size_hw'][1]}x{r['size_hw'][0]} MJPEG/RTP "
             f"at {r['server_fps']:g} fps from GStreamer's RTSP server on 127.0.0.1, looping the 24-frame demo clip.",
             "", "| check | result |", "|---|---|"]
    lines += [f"| {k} | {'yes' if v else 'NO'} |" for k, v in r["checks"].items()]
    s, rss = r["stats"], r["rss_mb"]
    lines += ["", f"Frames captured {s['captured']}, written {s['written']}, dropped {s['dropped']} "
              f"(newest-frame policy: inference is slower than the stream), reconnects {s['reconnects']}.",
              f"RSS after {rss['warmup_s']:g} s warm-up {rss['baseline_after_warmup']} MiB, max later "
              f"{rss['max_after_warmup']} MiB (growth {rss['growth_max']} MiB, limit {rss['limit']}), final {rss['final']}.",
              "Restarts: " + "; ".join(f"at {e['t_s']} s recovered={e['recovered']} in {e['recovery_s']} s"
                                       for e in r["events"] if e.get("event") == "server restart"),
              f"Output: {r['output']}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--size", default="128x192", help="stream HxW (default 128x192)")
    parser.add_argument("--fps", type=float, default=8.0, help="server frame rate")
    parser.add_argument("--down", type=float, default=5.0, help="seconds the server stays down at each restart")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the RSS baseline is taken")
    parser.add_argument("--max-rss-growth-mb", type=float, default=50.0)
    parser.add_argument("--results", type=Path, help="results folder (default benchmarks/results/<machine>)")
    parser.add_argument("--note", default="", help="recorded in the results (e.g. that the machine was shared)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing results files")
    args = parser.parse_args(argv)
    h, w = (int(v) for v in args.size.split("x"))
    info = machine()
    folder = args.results or RESULTS / info["slug"]
    refuse_overwrite(results_pair(folder, "soak_rtsp"), args.overwrite)
    with tempfile.TemporaryDirectory(prefix="deblur-soak-") as tmp:
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        result = {"benchmark": "soak_rtsp", "started_utc": started, "machine": info, "note": args.note,
                  "soak": soak(args.minutes, args.restarts, (h, w), args.fps, args.down, Path(tmp),
                               args.max_rss_growth_mb, args.warmup)}
    write_json_and_markdown(folder, "soak_rtsp", result, markdown(result), overwrite=args.overwrite)
    print(markdown(result))
    return 0 if result["soak"]["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
