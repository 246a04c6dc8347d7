"""The trainer: exact resume, checkpoints, schedules, configs, SIGTERM, the adversarial loop and the CLI."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio
from tiny_training import MemoryPairs, tiny_config, tiny_model, write_torchvision_vgg19

from training.checkpoint import load_checkpoint, load_model
from training.config import CONFIG_DIR, ConfigError, TrainConfig, load_config
from training.trainer import StepSampler, Trainer, lr_multiplier

REPO = Path(__file__).resolve().parents[2]


def _train(cfg, run_dir, *, max_steps=None, resume=False, model=None, **kwargs):
    trainer = Trainer(cfg, run_dir, model=model or tiny_model(dropout=0.2), train_set=MemoryPairs(),
                      val_set=MemoryPairs(count=2, crop=None), resume=resume, max_steps=max_steps,
                      progress=False, **kwargs)
    result = trainer.fit()
    trainer.close()
    return trainer, result


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_half_run_plus_resume_gives_the_same_weights_as_a_straight_run(tmp_path):
    # Dropout, random crops/flips, warm-up + cosine lr, EMA, clipping and validation in between:
    # everything that could drift if an RNG, the sampler or a scheduler were not restored.
    cfg = tiny_config(ema_decay=0.9)
    straight, result = _train(cfg, tmp_path / "a")
    _train(cfg, tmp_path / "b", max_steps=3)
    resumed, resumed_result = _train(cfg, tmp_path / "b", resume=True)

    assert result.step == resumed_result.step == 6 and result.status == "finished"
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    for a, b in zip(straight.ema.module.state_dict().values(), resumed.ema.module.state_dict().values()):
        assert torch.equal(a, b)
    assert not torch.equal(straight.model.head.weight, tiny_model().head.weight)   # it did train

    # keep_last=2 of the per-step checkpoints; best.pt is the best validation PSNR of the run.
    assert sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir()) == ["step-00000005.pt",
                                                                                    "step-00000006.pt"]
    val = _rows(tmp_path / "a" / "val_log.csv")
    assert [int(r["step"]) for r in val] == [3, 6]
    best = load_checkpoint(tmp_path / "a" / "best.pt")          # loads with weights_only=True
    assert best["val_psnr"] == pytest.approx(max(float(r["psnr"]) for r in val), abs=1e-5)
    last = load_checkpoint(tmp_path / "a" / "checkpoints" / "step-00000006.pt")
    assert last["step"] == 6 and last["config"] == cfg.to_dict()
    assert {"optimizer", "scheduler", "rng", "ema_state_dict"} <= set(last)
    assert len(last["rng"]["python"][1]) == 625 and len(last["rng"]["numpy"][1]) == 624
    assert [int(r["step"]) for r in _rows(tmp_path / "a" / "train_log.csv")] == [1, 2, 3, 4, 5, 6]


def test_resuming_another_model_is_refused(tmp_path):
    _train(tiny_config(), tmp_path, max_steps=1)
    other = TrainConfig.from_dict({**tiny_config().to_dict(), "model": {"name": "tiny-other"}})
    with pytest.raises(ValueError, match="holds model"):
        _train(other, tmp_path, resume=True)


def test_step_sampler_shards_one_stream_across_ranks():
    single = StepSampler(5, 4, seed=1, start=0, stop=3)
    ranks = [StepSampler(5, 2, seed=1, start=0, stop=3, rank=r, world_size=2) for r in range(2)]
    for step in range(3):
        assert ranks[0].keys(step) + ranks[1].keys(step) == single.keys(step)
    # Each epoch visits every item once: positions 0..4 are epoch 0, 5..9 epoch 1.
    stream = [k for step in range(3) for k in single.keys(step)][:10]
    assert sorted(i for e, i in stream if e == 0) == [0, 1, 2, 3, 4]
    assert sorted(i for e, i in stream if e == 1) == [0, 1, 2, 3, 4]
    assert StepSampler(5, 4, seed=1, start=2, stop=3).keys(2) == single.keys(2)


def test_lr_schedule_warmup_hold_and_decays():
    kw = dict(warmup=2, hold=2, min_ratio=0.1)
    assert [lr_multiplier(s, 10, kind="linear", **kw) for s in range(5)] == [0.5, 1.0, 1.0, 1.0, 1.0]
    assert lr_multiplier(7, 10, kind="linear", **kw) == pytest.approx(1 - 0.9 * 3 / 6)
    assert lr_multiplier(10, 10, kind="linear", **kw) == pytest.approx(0.1)
    assert lr_multiplier(7, 10, kind="cosine", **kw) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_multiplier(9, 10, kind="constant", **kw) == 1.0


def test_bundled_configs_state_the_paper_recipes():
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    assert {"rdafnet-single-gopro", "rdafnet-multi-gopro", "msan-gopro", "dsanet-gopro", "bag-gopro",
            "rdafnet-nano-synthetic-cpu"} <= set(names)
    configs = {n: load_config(n) for n in names}
    single, multi = configs["rdafnet-single-gopro"], configs["rdafnet-multi-gopro"]
    assert (single.optim.lr, single.optim.betas, single.train.epochs) == (1e-4, (0.9, 0.99), 3000)
    assert (single.schedule.name, single.schedule.hold, single.schedule.min_lr) == ("linear", 300, 1e-7)
    assert (single.data.batch_size, multi.data.batch_size, single.data.crop) == (4, 2, 256)
    msan = configs["msan-gopro"]
    assert (msan.data.batch_size, msan.train.epochs, msan.schedule.name, msan.schedule.min_lr) == (8, 3000, "cosine", 1e-6)
    dsanet = configs["dsanet-gopro"]
    assert (dsanet.optim.lr, dsanet.train.epochs, dsanet.schedule.min_lr, dsanet.loss["fft_weight"]) == (2e-4, 4000, 1e-6, 0.1)
    bag = configs["bag-gopro"]
    assert (bag.data.batch_size, bag.train.epochs, bag.schedule.hold, bag.schedule.min_lr) == (1, 300, 150, 0.0)
    assert (bag.gan.critic_steps, bag.loss["gp_weight"], bag.loss["perceptual_weight"]) == (5, 10.0, 100.0)


def test_config_errors_name_the_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {name: rdafnet-nano}\noptim: {lr: 2e-4}\ntrain: {steps: 10}\n")
    assert load_config(path).optim.lr == 2e-4                      # YAML 1.1 reads 2e-4 as a string
    assert load_config(path, ["data.batch_size=3"]).data.batch_size == 3
    with pytest.raises(ConfigError, match="unknown keys \\['bach_size'\\]"):
        load_config(path, ["data.bach_size=3"])
    with pytest.raises(ConfigError, match="data.crop must be int"):
        load_config(path, ["data.crop=big"])
    with pytest.raises(ConfigError, match="exactly one of train.epochs and train.steps"):
        load_config(path, ["train.epochs=3"])
    with pytest.raises(FileNotFoundError, match="bundled configs"):
        load_config("no-such-config")


def test_bf16_autocast_step_on_cpu(tmp_path):
    trainer, result = _train(tiny_config(amp="bf16", steps=2, val_every=100), tmp_path)
    assert trainer.amp_dtype == torch.bfloat16
    losses = [float(r["total"]) for r in _rows(tmp_path / "train_log.csv")]
    assert len(losses) == 2 and all(math.isfinite(v) and v > 0 for v in losses)


class TinyCritic(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 4, stride=2, padding=1), torch.nn.LeakyReLU(0.2),
                                       torch.nn.Conv2d(4, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_adversarial_loop_trains_the_critic_and_resumes_exactly(tmp_path):
    write_torchvision_vgg19(tmp_path / "vgg.pth")
    raw = tiny_config(steps=2, val_every=100).to_dict()
    raw["loss"] = {"name": "bag", "vgg_weights": str(tmp_path / "vgg.pth")}
    raw["gan"] = {"critic_steps": 5}
    cfg = TrainConfig.from_dict(raw)
    straight, _ = _train(cfg, tmp_path / "a", critic=TinyCritic())
    _train(cfg, tmp_path / "b", critic=TinyCritic(), max_steps=1)
    resumed, _ = _train(cfg, tmp_path / "b", critic=TinyCritic(), resume=True)
    assert not torch.equal(straight.critic.net[0].weight, TinyCritic().net[0].weight)
    for a, b in zip(straight.critic.state_dict().values(), resumed.critic.state_dict().values()):
        assert torch.equal(a, b)   # the gradient penalty's random mixing restored with the RNG state
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    row = _rows(tmp_path / "a" / "train_log.csv")[-1]
    assert {"adversarial", "perceptual", "critic_wasserstein", "critic_gradient_penalty"} <= set(row)
    assert "critic_state_dict" in load_checkpoint(tmp_path / "a" / "checkpoints" / "step-00000002.pt")


def _write_gopro(root: Path, split: str, count: int, size: int = 40) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        sharp = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (3, 3), 0)
        blur = cv2.blur(sharp, (5, 1))
        for kind, img in (("blur", blur), ("sharp", sharp)):
            (root / split / "seq" / kind).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / split / "seq" / kind / f"{i:03d}.png"), img)


@pytest.mark.parametrize(("workers", "whole_group", "signum"),
                         [(0, False, signal.SIGTERM), (1, True, signal.SIGTERM), (1, True, signal.SIGINT)])
def test_sigterm_writes_a_checkpoint_and_exits(tmp_path, workers, whole_group, signum):
    # whole_group: the signal reaches the loader workers too, as from systemd (KillMode=control-group),
    # `kill -- -PGID` or Ctrl-C in a terminal; a worker ended by it must not crash the run before it saves.
    _write_gopro(tmp_path / "data", "train", 4)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "training.train", "--config", "rdafnet-nano-synthetic-cpu",
           "--data", str(tmp_path / "data"), "--out", str(run), "--no-progress",
           "--set", "model.kwargs.base_channels=4", "--set", "model.kwargs.num_blocks=1",
           "--set", "data.crop=16", "--set", "data.batch_size=1", "--set", f"data.num_workers={workers}",
           "--set", "train.log_every=1", "--set", "train.tensorboard=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    log = run / "train_log.csv"
    try:
        deadline = time.monotonic() + 90
        while not (log.is_file() and len(log.read_text().splitlines()) >= 2):   # header + one step
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "training never logged a step"
            time.sleep(0.05)
        if whole_group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, output
    saved = sorted((run / "checkpoints").glob("step-*.pt"))
    assert len(saved) == 1, output
    ckpt = load_checkpoint(saved[0])
    steps_run = int(_rows(log)[-1]["step"])
    assert ckpt["step"] == steps_run and 1 <= steps_run < 3000
    assert f"stopped by signal {int(signum)} at step {steps_run}" in output


def test_deblur_train_then_eval_on_a_synthesised_dataset(tmp_path, capsys):
    from sdk.cli import main
    from training.data import SynthConfig, synthesize

    data, run = tmp_path / "synth", tmp_path / "run"
    synthesize(data, SynthConfig(seed=0, count=6, size=64, video_share=0.0))
    rc = main(["train", "--config", "rdafnet-nano-synthetic-cpu", "--data", str(data), "--out", str(run),
               "--max-steps", "3", "--no-progress", "--set", "data.batch_size=2", "--set", "data.crop=32",
               "--set", "data.num_workers=0"])
    assert rc == 0
    assert (run / "checkpoints" / "step-00000003.pt").is_file() and (run / "best.pt").is_file()
    assert len(_rows(run / "train_log.csv")) == 1 and len(_rows(run / "val_log.csv")) == 1   # log_every 25
    model, manifest = load_model(run / "best.pt")
    assert manifest.variant == "rdafnet-nano" and load_checkpoint(run / "best.pt")["step"] == 3
    capsys.readouterr()

    images = tmp_path / "restored"
    assert main(["eval", "--checkpoint", str(run / "best.pt"), "--data", str(data),
                 "--save-images", str(images)]) == 0
    printed = capsys.readouterr().out
    assert "input  vs target" in printed and "output vs target" in printed
    rows = _rows(run / "best-test-eval.csv")
    tests = sorted((data / "test").glob("*/blur/*.png"))
    assert len(rows) == len(tests) >= 1
    for row, blur_path in zip(rows, tests):
        sharp = cv2.imread(str(blur_path.parents[1] / "sharp" / blur_path.name))
        blur = cv2.imread(str(blur_path))
        assert float(row["input_psnr"]) == pytest.approx(peak_signal_noise_ratio(sharp, blur, data_range=255), abs=1e-4)
        assert math.isfinite(float(row["output_psnr"])) and 0 < float(row["output_ssim"]) <= 1
        restored = cv2.imread(str(images / Path(row["name"]).with_suffix(".png")))
        assert restored.shape == blur.shape


@pytest.mark.gpu
@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_mixed_precision_steps_on_cuda(tmp_path, amp):
    trainer, result = _train(tiny_config(amp=amp, steps=3, val_every=3), tmp_path, device="cuda")
    assert trainer.amp_dtype == (torch.float16 if amp == "fp16" else torch.bfloat16)
    losses = [float(r["total"]) for r in _rows(tmp_path / "train_log.csv")]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "step-00000003.pt")
    assert (ckpt["scaler"] is not None) == (amp == "fp16") and "cuda" in ckpt["rng"]


def test_ema_decay_ramps_up_so_short_runs_average_trained_weights():
    import torch

    from training.trainer import ema_with_warmup

    update = ema_with_warmup(0.999)
    ema, new = [torch.zeros(3)], [torch.ones(3)]
    update(ema, new, torch.tensor(0))           # d = 1/10: the average moves 90% of the way
    assert torch.allclose(ema[0], torch.full((3,), 0.9))
    ema = [torch.zeros(3)]
    update(ema, new, torch.tensor(10**6))       # late in training the configured decay holds
    assert torch.allclose(ema[0], torch.full((3,), 1 - 0.999))


def _nano_config(**train: object) -> TrainConfig:
    """rdafnet-nano made tiny: a registered network, so that a checkpoint of it can be rebuilt."""
    return TrainConfig.from_dict({**tiny_config(**train).to_dict(),
                                  "model": {"name": "rdafnet-nano", "kwargs": {"base_channels": 4, "num_blocks": 1}}},
                                 source="tiny nano config")


def _nano_trainer(cfg, run_dir, **kwargs):
    return Trainer(cfg, run_dir, train_set=MemoryPairs(), val_set=MemoryPairs(count=2, crop=None),
                   progress=False, **kwargs)


def _ema_checkpoint(tmp_path):
    """A 3-step nano run with EMA (decay 0.5, so EMA and raw weights differ): its last checkpoint."""
    source = _nano_trainer(_nano_config(ema_decay=0.5, steps=3), tmp_path / "source")
    source.fit()
    source.close()
    checkpoint = tmp_path / "source" / "checkpoints" / "step-00000003.pt"
    return checkpoint, load_checkpoint(checkpoint)


def test_init_from_starts_a_new_run_from_a_checkpoints_ema_weights(tmp_path):
    checkpoint, stored = _ema_checkpoint(tmp_path)
    fresh = _nano_trainer(_nano_config(), tmp_path / "fresh")
    tuned = _nano_trainer(_nano_config(init_from=str(checkpoint)), tmp_path / "tuned")
    # The EMA weights (what best.pt and the SDK use), not the raw ones; step 0 and an empty optimiser.
    assert tuned.step == 0 and not tuned.optimizer.state_dict()["state"]
    ema = stored["ema_state_dict"]
    assert any(not torch.equal(ema[k], stored["state_dict"][k]) for k in ema)
    for name, value in tuned.model.state_dict().items():
        assert torch.equal(value, ema[name]), name
    assert any(not torch.equal(v, ema[k]) for k, v in fresh.model.state_dict().items())
    for trainer in (fresh, tuned):
        trainer.close()


def test_init_from_refuses_other_widths_and_other_networks_and_yields_to_resume(tmp_path):
    source = _nano_trainer(_nano_config(steps=2), tmp_path / "source")
    source.fit()
    source.close()
    checkpoint = str(tmp_path / "source" / "checkpoints" / "step-00000002.pt")
    wider = TrainConfig.from_dict({**_nano_config(init_from=checkpoint).to_dict(),
                                   "model": {"name": "rdafnet-nano", "kwargs": {"base_channels": 8, "num_blocks": 1}}})
    with pytest.raises(ValueError, match="other widths"):
        _nano_trainer(wider, tmp_path / "wider")
    with pytest.raises(ValueError, match="holds 'rdafnet-nano'"):
        Trainer(tiny_config(init_from=checkpoint), tmp_path / "tiny", model=tiny_model(), train_set=MemoryPairs(),
                val_set=MemoryPairs(count=2, crop=None), progress=False)
    # A run that already has checkpoints continues from them; init_from only seeds a fresh start.
    resumed = _nano_trainer(_nano_config(steps=2, init_from=checkpoint), tmp_path / "source", resume=True)
    assert resumed.step == 2
    resumed.close()
    # --resume on a folder without checkpoints is a fresh start, so init_from still applies.
    fresh = _nano_trainer(_nano_config(steps=2, init_from=checkpoint), tmp_path / "empty", resume=True)
    stored = load_checkpoint(checkpoint)["state_dict"]       # no EMA in this run: the raw weights
    assert fresh.step == 0 and all(torch.equal(v, stored[k]) for k, v in fresh.model.state_dict().items())
    fresh.close()


def test_engine_validation_pairs_do_not_depend_on_the_training_seed(tmp_path):
    def val_seed(**data):
        cfg = TrainConfig.from_dict({**_nano_config(seed=7).to_dict(),
                                     "data": {"crop": 16, "batch_size": 2, "engine": {}, "val_crop": 32,
                                              "val_max_images": 2, **data}})
        trainer = Trainer(cfg, tmp_path / str(data), progress=False)
        seeds = trainer.train_set.seed, trainer.val_set.seed
        trainer.close()
        return seeds

    # An anneal or a second campaign with another train.seed draws other training samples but is
    # validated on the campaign's own pairs, so the curves compare.
    assert val_seed() == (7, 0)
    assert val_seed(val_seed=5) == (7, 5)


def test_resuming_a_checkpoint_that_predates_a_setting_at_its_default_does_not_warn(tmp_path, recwarn):
    _train(tiny_config(), tmp_path, max_steps=2)
    path = tmp_path / "checkpoints" / "step-00000002.pt"
    ckpt = torch.load(path, weights_only=True)
    del ckpt["config"]["data"]["val_seed"]            # as written before data.val_seed existed
    torch.save(ckpt, path)
    _train(tiny_config(), tmp_path, resume=True)
    assert not [w for w in recwarn if "changed settings" in str(w.message)]
    ckpt["config"]["data"]["val_seed"] = 3           # a real change still warns
    torch.save(ckpt, path)
    (tmp_path / "checkpoints" / "step-00000006.pt").unlink()
    with pytest.warns(UserWarning, match=r"changed settings \['data.val_seed'\]"):
        _train(tiny_config(), tmp_path, resume=path)


def test_a_released_checkpoint_keeps_the_ema_weights_fine_tunes_and_refuses_to_resume(tmp_path):
    from training.checkpoint import load_model
    from training.release import main as release

    checkpoint, stored = _ema_checkpoint(tmp_path)
    released = tmp_path / "model.pt"
    assert release([str(checkpoint), str(released)]) == 0
    slim = load_checkpoint(released)
    assert not {"optimizer", "scheduler", "rng", "ema_state_dict"} & set(slim)
    assert slim["step"] == 3 and slim["released_from"]["weights"] == "ema"
    assert released.stat().st_size < 0.5 * checkpoint.stat().st_size      # no optimiser moments
    model, manifest = load_model(released)
    for name, value in model.state_dict().items():                         # the EMA weights, not the raw ones
        assert torch.equal(value, stored["ema_state_dict"][name]), name
    assert manifest.variant == "rdafnet-nano" and len(manifest.checkpoint_sha256) == 64
    tuned = _nano_trainer(_nano_config(init_from=str(released)), tmp_path / "tuned")
    assert all(torch.equal(v, stored["ema_state_dict"][k]) for k, v in tuned.model.state_dict().items())
    tuned.close()
    with pytest.raises(ValueError, match="weights only.*--init-from"):
        _nano_trainer(_nano_config(), tmp_path / "resumed", resume=released)
