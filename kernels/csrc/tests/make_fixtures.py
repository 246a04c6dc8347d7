"""Write the CTest fixtures: inputs and the PyTorch references' outputs on small odd shapes.

The C++ host references (``kernels/csrc/reference``) are held to these outputs, i.e. to the same
PyTorch references (``kernels/*.py``) the Triton kernels are tested against. Run by CTest
(``deblur_fixtures``) before the reference tests; needs PyTorch (``pip install '.[train]'``).

Format: ``<out>/cases.txt`` lists one case per line (``op name ints... [scale]``); each tensor is
``<out>/<case>/<name>.bin``: int32 rank, int32 dims, then float32 values (little-endian, C order).

    python kernels/csrc/tests/make_fixtures.py --out build/kernels/csrc/fixtures
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
H, W = 37, 53                      # odd, and H*W = 1961 is not a multiple of any tile size


def _write(folder: Path, name: str, tensor: Any) -> None:
    import torch

    data = tensor.detach().to(dtype=torch.float32).contiguous().cpu().numpy()
    with open(folder / f"{name}.bin", "wb") as f:
        f.write(struct.pack(f"<i{data.ndim}i", data.ndim, *data.shape))
        f.write(data.astype("<f4").tobytes())


def make(out: Path) -> list[str]:
    import torch

    from kernels.attention_fusion import attention_fusion_reference
    from kernels.pixel_attention import pixel_attention_reference
    from kernels.self_attention import self_attention_reference

    torch.manual_seed(15)
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def case(name: str) -> Path:
        folder = out / name
        folder.mkdir(exist_ok=True)
        return folder

    for name, batch, c in (("pa_c24_b2", 2, 24), ("pa_c130", 1, 130)):
        x = torch.randn(batch, c, H, W)
        weight = torch.randn(c, c, 1, 1) / c ** 0.5
        bias = torch.randn(c) * 0.1
        y, attn = pixel_attention_reference(x, weight, bias, return_map=True)
        folder = case(name)
        for key, t in (("x", x), ("weight", weight), ("bias", bias), ("y", y), ("map", attn)):
            _write(folder, key, t)
        lines.append(f"pixel_attention {name} {batch} {c} {H * W}")

    for name, batch, c, k in (("af_c24_k3_b2", 2, 24, 3), ("af_c130_k2", 1, 130, 2)):
        maps = torch.rand(batch, k * c, H, W)                       # sigmoid maps live in (0, 1)
        fuse_weight = torch.randn(c, k * c, 1, 1) / (k * c) ** 0.5
        fuse_bias = torch.randn(c) * 0.1
        dw_weight = torch.randn(c, 1, 3, 3) / 3
        pw_weight = torch.randn(c, c, 1, 1) / c ** 0.5
        features = torch.randn(batch, c, H, W)
        out_t = attention_fusion_reference(list(maps.split(c, dim=1)), fuse_weight, fuse_bias, dw_weight, pw_weight,
                                           features)
        folder = case(name)
        for key, t in (("maps", maps), ("fuse_weight", fuse_weight), ("fuse_bias", fuse_bias),
                       ("dw_weight", dw_weight), ("pw_weight", pw_weight), ("features", features), ("out", out_t)):
            _write(folder, key, t)
        lines.append(f"attention_fusion {name} {batch} {k * c} {c} {H} {W}")

    # MSAN's layout: tokens on the last axis; self-attention has N == M, the cross case N != M.
    for name, batch, d, dv, n, m, scale in (("sa_c24", 1, 24, 24, H * W, H * W, 1.0),
                                            ("sa_c130", 1, 130, 130, H * W, H * W, 130 ** -0.5),
                                            ("sa_cross_b2", 2, 16, 40, H, W, 0.25)):
        q = torch.randn(batch, d, n) * 0.5
        k_t = torch.randn(batch, d, m) * 0.5
        v = torch.randn(batch, dv, m)
        out_t = self_attention_reference(q, k_t, v, scale)
        folder = case(name)
        for key, t in (("q", q), ("k", k_t), ("v", v), ("out", out_t)):
            _write(folder, key, t)
        lines.append(f"self_attention {name} {batch} {d} {dv} {n} {m} {scale!r}")

    (out / "cases.txt").write_text("\n".join(lines) + "\n")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for cases.txt and the tensors")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))          # the references live in the repository's kernels package
    try:
        import torch  # noqa: F401
    except ImportError:
        print("make_fixtures: PyTorch is not importable by this Python; the fixtures come from the PyTorch "
              "references: pip install '.[train]' (or configure with -DDEBLUR_PYTHON=/path/to/venv/bin/python)",
              file=sys.stderr)
        return 1
    for line in make(args.out):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
