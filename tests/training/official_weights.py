"""Deterministic weights in the authors' key layout, and the outputs their code gave for them.

The recipe is fixed by ``tests/fixtures/official/README.md``: entry ``i`` of a model's state_dict
(in the JSON's order) is ``default_rng(i).standard_normal(shape) * scale``. Rebuilding the same
weights here lets a test load them through a converter and compare against the recorded outputs.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import numpy as np
import torch

OFFICIAL = Path(__file__).resolve().parents[1] / "fixtures" / "official"
KEYS_FILE = OFFICIAL / "official_state_dict_keys.json"
GOLDEN_FILE = OFFICIAL / "official_golden_outputs.npz"


@cache
def _key_table() -> dict:
    with KEYS_FILE.open() as f:
        return json.load(f)


def official_shapes(model_key: str) -> dict[str, tuple[int, ...]]:
    """Every state_dict entry of the authors' model ``model_key`` with its shape, in state_dict order."""
    table = _key_table()
    if model_key not in table:
        raise KeyError(f"no official model {model_key!r} in {KEYS_FILE.name}; have {sorted(table)}")
    return {name: tuple(shape) for name, shape in table[model_key]["state_dict"].items()}


def official_param_count(model_key: str) -> int:
    """The parameter count the authors' model reported when the fixture was made."""
    return int(_key_table()[model_key]["params"])


def _init_scale(shape: tuple[int, ...]) -> float:
    # Fan-in scaling keeps activations O(1) through deep stacks, so the golden outputs stay informative.
    if len(shape) >= 2:
        return 0.5 / math.sqrt(math.prod(shape[1:]))
    return 0.1


def official_state_dict(model_key: str) -> dict[str, torch.Tensor]:
    """The fixture's deterministic weights for ``model_key`` (e.g. ``"rdafnet_single_stage"``), official names."""
    out: dict[str, torch.Tensor] = {}
    for i, (name, shape) in enumerate(official_shapes(model_key).items()):
        value = np.random.default_rng(i).standard_normal(shape) * _init_scale(shape)
        out[name] = torch.from_numpy(np.asarray(value, dtype=np.float32))
    return out


@cache
def _golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN_FILE) as npz:
        return {k: npz[k] for k in npz.files}


def golden(key: str) -> np.ndarray:
    """One array of the golden npz: ``"input"`` or a recorded output such as ``"rdafnet_single_stage"``."""
    table = _golden()
    if key not in table:
        raise KeyError(f"no golden array {key!r} in {GOLDEN_FILE.name}; have {sorted(table)}")
    return table[key].copy()
