"""Two-process DistributedDataParallel training on CPU (gloo), as torchrun would launch it."""

from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp
from tiny_training import MemoryPairs, tiny_config, tiny_model

from training.config import TrainConfig
from training.trainer import Trainer

WORLD_SIZE = 2
STEPS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _trainer(config: TrainConfig, out_dir: str) -> Trainer:
    return Trainer(config, out_dir, model=tiny_model(), train_set=MemoryPairs(),
                   val_set=MemoryPairs(count=1, crop=None), device="cpu", progress=False)


def _rank_main(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD_SIZE))
    trainer = _trainer(tiny_config(steps=STEPS, val_every=STEPS, tensorboard=False), out_dir)
    try:
        result = trainer.fit()
        torch.save({"state_dict": trainer.model.state_dict(), "step": result.step},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        trainer.close()


def test_two_gloo_ranks_end_identical_and_match_one_process_with_the_global_batch(tmp_path, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    # The reference: one process with twice the per-rank batch sees the same samples (the sampler
    # shards one stream), so averaged gradients must give the same weights up to summation order.
    raw = tiny_config(steps=STEPS, val_every=STEPS, tensorboard=False).to_dict()
    raw["data"]["batch_size"] *= WORLD_SIZE
    single = _trainer(TrainConfig.from_dict(raw), str(tmp_path / "single"))
    single.fit()

    # Forked, like DataLoader workers, so the ranks start with everything the run above imported
    # (fresh interpreters cost ~10 s here); each rank drops to one intra-op thread at once.
    mp.start_processes(_rank_main, args=(_free_port(), str(tmp_path / "ddp")), nprocs=WORLD_SIZE, join=True,
                       start_method="fork")
    ranks = [torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE)]
    assert ranks[0]["step"] == ranks[1]["step"] == STEPS
    for name, w0 in ranks[0]["state_dict"].items():
        assert torch.equal(w0, ranks[1]["state_dict"][name]), name
    for name, w in single.model.state_dict().items():
        torch.testing.assert_close(w, ranks[0]["state_dict"][name], rtol=1e-5, atol=1e-6)
    assert not torch.equal(single.model.head.weight, tiny_model().head.weight)   # it did train
    # Only rank 0 wrote the run: one set of checkpoints (keep_last=2) and logs.
    ddp_dir = tmp_path / "ddp"
    assert sorted(p.name for p in (ddp_dir / "checkpoints").iterdir()) == ["step-00000002.pt", "step-00000003.pt"]
    assert len((ddp_dir / "train_log.csv").read_text().splitlines()) == 1 + STEPS
