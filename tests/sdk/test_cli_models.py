from __future__ import annotations

from sdk.cli import main


def test_deblur_models_prints_every_model_with_counts(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "14,195,072" in out and "28,967,302" in out and "8,924,720" in out
    for name in ("rdafnet-nano", "rdafnet-small", "dsanet", "bag", "bag-critic"):
        assert name in out
