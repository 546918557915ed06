"""Checkpoints: round trip, clear refusals, weights_only loading, atomic writes."""

from __future__ import annotations

import pytest
import torch

from intrakd.models import build_model
from intrakd.models.checkpoint import load_weights, save_weights


def _trained_ish(name, classes, **kw):
    m = build_model(name, classes, width=0.25, **kw)
    with torch.no_grad():  # move BN statistics away from their defaults so the test can fail
        m.train()(torch.randn(2, 3, 32, 64))
    return m.eval()


@pytest.mark.parametrize("name,kw", [("erfnet", {"exist_head": True}), ("enet", {}), ("swiftnet_rn18", {})])
def test_round_trip_reproduces_outputs(tmp_path, name, kw):
    m = _trained_ish(name, 5, **kw)
    x = torch.randn(2, 3, 32, 64)
    with torch.no_grad():
        ref = m(x)
    path = save_weights(tmp_path / "w.pt", m, name=name, num_classes=5, width=0.25,
                        exist_head=kw.get("exist_head", False), meta={"epoch": 3, "miou": 0.5})
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]  # no temp file left behind
    loaded, meta = load_weights(path, name=name, num_classes=5)
    assert meta == {"epoch": 3, "miou": 0.5}
    with torch.no_grad():
        got = loaded.eval()(x)
    torch.testing.assert_close(got["logits"], ref["logits"], rtol=0, atol=0)
    if "exist" in ref:
        torch.testing.assert_close(got["exist"], ref["exist"], rtol=0, atol=0)


def test_extra_build_kwargs_survive(tmp_path):
    m = build_model("deeplabv3plus_r101", 3, width=0.0625, decoder_convs=2)
    save_weights(tmp_path / "d.pt", m, name="deeplabv3plus_r101", num_classes=3, width=0.0625, exist_head=False)
    loaded, _ = load_weights(tmp_path / "d.pt", name="deeplabv3plus_r101", num_classes=3)
    assert len(loaded.decoder) == 6


def test_wrong_model_or_classes_named_in_the_error(tmp_path):
    m = build_model("erfnet", 5, width=0.25)
    path = save_weights(tmp_path / "w.pt", m, name="erfnet", num_classes=5, width=0.25, exist_head=False)
    with pytest.raises(ValueError, match=r"name='erfnet'.*name='enet'") as err:
        load_weights(path, name="enet", num_classes=5)
    assert "w.pt" in str(err.value)
    with pytest.raises(ValueError, match=r"num_classes=5.*num_classes=37"):
        load_weights(path, name="erfnet", num_classes=37)
    with pytest.raises(ValueError, match=r"width=0.25.*width=1.0"):
        load_weights(path, name="erfnet", num_classes=5, width=1.0)
    with pytest.raises(ValueError, match="model has 5 classes"):
        save_weights(tmp_path / "x.pt", m, name="erfnet", num_classes=7, width=0.25, exist_head=False)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_weights(tmp_path / "nope.pt", name="erfnet", num_classes=5)
    torch.save({"state_dict": {}}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not an intrakd weights file"):
        load_weights(tmp_path / "plain.pt", name="erfnet", num_classes=5)


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_loading_is_weights_only(tmp_path):
    torch.save({"format": "intrakd-weights/1", "payload": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="is unreadable"):
        load_weights(tmp_path / "evil.pt", name="erfnet", num_classes=5)
