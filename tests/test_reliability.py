"""Reliability as a careful user meets it (issue 13): runs that must never get stuck, and bad input of every kind.

Each bad input goes through the console script (``intrakd.cli.main``, in-process) and must end with exit code 1
(2 for usage errors) and ONE line on stderr naming the file, key or value, with nothing partial left looking
complete (no ``metrics.json``, no ``model.pt``, no temporaries). Each stuck-run reproduction must end like an
uninterrupted run: the same ``history.csv``, the same weights, the same metrics.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from intrakd.cli import main
from intrakd.engine import RunConfig, train

from helpers import history_without_timings, poison_second_epoch, same_weights, tiny_apollo, tiny_cfg

train_module = importlib.import_module("intrakd.engine.train")
OUTPUTS = ("metrics.json", "history.csv", "model.pt")


@pytest.fixture(scope="module")
def apollo_root(tmp_path_factory) -> Path:
    return tiny_apollo(tmp_path_factory, num=4)


@pytest.fixture(scope="module")
def reference(apollo_root, tmp_path_factory) -> tuple[Path, dict]:
    """An uninterrupted two-epoch run that keeps its resume state (``keep_checkpoints``, which no result depends
    on): (its folder, its metrics). Its copies stand for a run killed after its last checkpoint, before its
    sidecars were written (when a finished run's ``ckpt/`` is deleted)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    return out, train(tiny_cfg(apollo_root, out, keep_checkpoints=True))


def _finished_copy(reference, tmp_path) -> Path:
    """A copy of the reference run folder (checkpoints included) with its outputs deleted: what Snakemake leaves
    when it reruns a finished job (--forcerun, a params change, a kill after the last checkpoint)."""
    out = tmp_path / "run"
    shutil.copytree(reference[0], out)
    for name in OUTPUTS:
        (out / name).unlink()
    return out


def _no_training(monkeypatch):
    def refuse(self, epoch):
        raise AssertionError(f"epoch {epoch + 1} was trained again")

    monkeypatch.setattr(train_module.Trainer, "train_epoch", refuse)


def _assert_equal_to_reference(reference, out: Path, *, timings: bool) -> None:
    ref_dir, ref_metrics = reference
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("value", "per_class", "floor", "matched_size", "data_sha256", "init_sha256", "epochs", "params"):
        assert metrics[key] == ref_metrics[key], key
    assert same_weights(ref_dir, out)
    if timings:  # the checkpoint's own record, byte for byte
        assert (out / "history.csv").read_bytes() == (ref_dir / "history.csv").read_bytes()
    else:
        assert history_without_timings(out).equals(history_without_timings(ref_dir))


def _temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob(".*.tmp"))


def _cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error:" in lines[0] and "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ---------------------------------------------------------------------------------------------- stuck runs
def test_finished_run_with_lost_outputs_is_completed_from_its_checkpoint(reference, tmp_path, monkeypatch, capsys):
    out = _finished_copy(reference, tmp_path)
    _no_training(monkeypatch)
    train(tiny_cfg(_data_root(reference), out))
    assert "after epoch 2/2" in capsys.readouterr().out
    _assert_equal_to_reference(reference, out, timings=True)


def test_finished_run_without_checkpoint_and_lost_outputs_is_retrained_equal(reference, tmp_path):
    """By default a finished run drops ``ckpt/``; losing its outputs then means training again, to the same result."""
    out = _finished_copy(reference, tmp_path)
    shutil.rmtree(out / "ckpt")
    train(tiny_cfg(_data_root(reference), out))
    _assert_equal_to_reference(reference, out, timings=False)
    assert not (out / "ckpt").exists()


def _data_root(reference) -> str:
    return json.loads((reference[0] / "metrics.json").read_text())["config"]["data_root"]


@pytest.mark.parametrize("neutral", [{"num_workers": 1}, {"threads": 2}, {"data_source": "another note"}])
def test_settings_that_do_not_change_results_keep_the_checkpoint(reference, tmp_path, monkeypatch, neutral):
    out = _finished_copy(reference, tmp_path)
    _no_training(monkeypatch)
    train(tiny_cfg(_data_root(reference), out, **neutral))
    _assert_equal_to_reference(reference, out, timings=True)


def test_rerunning_a_finished_run_leaves_it_unchanged(reference, tmp_path, monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(reference[0], out)
    _no_training(monkeypatch)
    train(tiny_cfg(_data_root(reference), out))
    _assert_equal_to_reference(reference, out, timings=True)


def test_the_previous_checkpoint_is_kept(reference):
    prev = torch.load(reference[0] / "ckpt" / "prev.pt", weights_only=True)
    last = torch.load(reference[0] / "ckpt" / "last.pt", weights_only=True)
    assert (prev["epoch"], last["epoch"]) == (1, 2)


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_unreadable_last_checkpoint_falls_back_to_the_previous_one(reference, tmp_path, capsys, damage):
    out = _finished_copy(reference, tmp_path)
    last = out / "ckpt" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2] if damage == "truncated" else b"")
    train(tiny_cfg(_data_root(reference), out))
    log = capsys.readouterr().out
    warning = [line for line in log.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and str(last) in warning[0] and f"falling back to {out / 'ckpt' / 'prev.pt'}" in warning[0]
    assert "after epoch 1/2" in log
    _assert_equal_to_reference(reference, out, timings=False)


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_unreadable_checkpoints_without_a_fallback_restart_the_run(reference, tmp_path, capsys):
    out = _finished_copy(reference, tmp_path)
    marker = tmp_path / "payload-ran"
    torch.save({"epoch": 2, "payload": _Payload(marker)}, out / "ckpt" / "last.pt")  # a pickle payload
    (out / "ckpt" / "prev.pt").write_bytes(b"")
    train(tiny_cfg(_data_root(reference), out))
    log = capsys.readouterr().out
    assert not marker.exists()  # weights_only refused it
    assert log.count("warning:") == 2 and "starting afresh" in log and "resumed" not in log
    _assert_equal_to_reference(reference, out, timings=False)


def test_temporaries_of_a_killed_write_are_removed(reference, tmp_path, monkeypatch):
    out = _finished_copy(reference, tmp_path)
    stale = [out / ".model.pt.k1ll3d.tmp", out / ".metrics.json.x.tmp", out / "ckpt" / ".last.pt.y.tmp"]
    for path in stale:
        path.write_bytes(b"partial")
    keep = out / ".notes.tmp"  # not one of ours
    keep.write_text("mine")
    _no_training(monkeypatch)
    train(tiny_cfg(_data_root(reference), out))
    assert _temporaries(out) == [keep]


# ------------------------------------------------------------------------------ full disk, read-only folder
@contextlib.contextmanager
def _tmpfs(where: Path, options: str):
    where.mkdir(parents=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs permission to mount a small tmpfs (root in a container that allows it)")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def _run_yaml(tmp_path: Path, cfg: RunConfig) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    return path


def test_full_disk_is_one_line_naming_the_file_and_leaves_no_temporaries(apollo_root, tmp_path, capsys):
    with _tmpfs(tmp_path / "small", "size=48k") as small:
        out = small / "run"
        rc, _, err = _cli(capsys, "train", _run_yaml(tmp_path, tiny_cfg(apollo_root, out)))
        assert rc == 1
        _one_line_error(err, "no space left on device writing", str(out))
        assert _temporaries(small) == [] and not (out / "metrics.json").exists() and not (out / "model.pt").exists()


def test_read_only_output_folder_is_one_line(apollo_root, tmp_path, capsys):
    with _tmpfs(tmp_path / "ro", "size=1m,ro") as ro:
        rc, _, err = _cli(capsys, "train", _run_yaml(tmp_path, tiny_cfg(apollo_root, ro / "run")))
        assert rc == 1
        _one_line_error(err, "read-only file system", str(ro / "run"))


# ------------------------------------------------------------------------------------------- config typing
def test_set_lr_in_exponent_notation_is_a_float(apollo_root, tmp_path, capsys):
    cfg = tiny_cfg(apollo_root, tmp_path / "run", epochs=1)
    rc, _, err = _cli(capsys, "train", _run_yaml(tmp_path, cfg), "--set", "lr=1e-3", "--set", "weight_decay=5E-4")
    assert rc == 0, err
    recorded = json.loads((tmp_path / "run" / "metrics.json").read_text())["config"]
    assert recorded["lr"] == 0.001 and recorded["weight_decay"] == 0.0005


@pytest.mark.parametrize(
    "setting, fragments",
    [
        ("epochs=true", ["epochs=True", "expected an integer", "got bool"]),
        ("epochs=1.5", ["epochs=1.5", "expected an integer"]),
        ("epochs=ten", ["epochs='ten'", "expected an integer"]),
        ("lr=fast", ["lr='fast'", "expected a number"]),
        ("method_options=5", ["method_options=5", "expected a mapping"]),
        ("input_size=[104, x]", ["input_size[1]='x'", "expected an integer"]),
        ("amp=1", ["amp=1", "expected true or false"]),
        ("learning_rate=0.1", ["learning_rate", "valid:"]),
        ("dataset=kitti", ["unknown dataset 'kitti'", "valid: apolloscape"]),
        ("model=vgg", ["unknown model 'vgg'"]),
        ("method=magic", ["unknown method 'magic'"]),
        ("lr=[", ["--set lr:", "invalid YAML"]),
        ("lr", ["--set 'lr'", "KEY=VALUE"]),
    ],
)
def test_bad_settings_are_one_line_naming_key_and_value(apollo_root, tmp_path, capsys, setting, fragments):
    cfg = tiny_cfg(apollo_root, tmp_path / "run")
    rc, _, err = _cli(capsys, "train", _run_yaml(tmp_path, cfg), "--set", setting)
    assert rc == 1
    _one_line_error(err, *fragments)
    assert not (tmp_path / "run").exists()


def test_yaml_syntax_error_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "run.yaml"
    bad.write_text("epochs: 2\nlr: [0.1\nseed: 0\n")
    rc, _, err = _cli(capsys, "train", bad)
    assert rc == 1
    _one_line_error(err, f"{bad}:3:", "invalid YAML")


def test_run_file_that_is_not_a_mapping_or_missing(tmp_path, capsys):
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    rc, _, err = _cli(capsys, "train", tmp_path / "list.yaml")
    assert rc == 1
    _one_line_error(err, "list.yaml", "expected a mapping")
    rc, _, err = _cli(capsys, "train", tmp_path / "nowhere.yaml")
    assert rc == 1
    _one_line_error(err, "nowhere.yaml", "no such run configuration file")


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train"])
    assert exit_.value.code == 2
    assert main([]) == 2


def test_run_config_types_are_checked_in_the_engine_too(apollo_root, tmp_path):
    from intrakd.engine.config import ConfigTypeError

    with pytest.raises(ConfigTypeError, match=r"run parameter width='0.5': expected a number, got str"):
        tiny_cfg(apollo_root, tmp_path, width="0.5").validate()
    cfg = tiny_cfg(apollo_root, tmp_path, epochs=2.0, method_weights={"kd": 1}).validate()
    assert cfg.epochs == 2 and isinstance(cfg.epochs, int)  # an integral float is the int it spells


# ------------------------------------------------------------------------------ failing runs, bad checkpoints
def test_bad_intrakd_options_are_one_line(apollo_root, reference, tmp_path, capsys):
    cfg = tiny_cfg(apollo_root, tmp_path / "run", method="intrakd", teacher="erfnet", teacher_width=0.125,
                   teacher_checkpoint=str(reference[0] / "model.pt"), method_options={"no_such_option": 3})
    rc, _, err = _cli(capsys, "train", _run_yaml(tmp_path, cfg))
    assert rc == 1
    _one_line_error(err, "no_such_option")
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize("kind", ["wrong model", "pickle payload", "truncated"])
def test_bad_teacher_checkpoints_are_one_line(apollo_root, reference, tmp_path, capsys, kind):
    ckpt = tmp_path / "teacher.pt"
    if kind == "wrong model":
        shutil.copy(reference[0] / "model.pt", ckpt)  # an ERFNet, asked for as a PSPNet
        teacher, fragments = "pspnet_r101", ["holds name='erfnet'", "pspnet_r101"]
    elif kind == "pickle payload":
        torch.save({"format": "intrakd-weights/1", "x": _Payload(tmp_path / "ran")}, ckpt)
        teacher, fragments = "erfnet", [str(ckpt), "is unreadable"]
    else:
        ckpt.write_bytes((reference[0] / "model.pt").read_bytes()[:1000])
        teacher, fragments = "erfnet", [str(ckpt), "is unreadable"]
    cfg = tiny_cfg(apollo_root, tmp_path / "run", method="kd", teacher=teacher, teacher_width=0.125,
                   teacher_checkpoint=str(ckpt))
    rc, _, err = _cli(capsys, "train", _run_yaml(tmp_path, cfg))
    assert rc == 1
    _one_line_error(err, *fragments)
    assert not (tmp_path / "ran").exists() and not (tmp_path / "run" / "metrics.json").exists()


def test_non_finite_loss_is_one_line_and_keeps_the_last_good_checkpoint(apollo_root, tmp_path, capsys,
                                                                         monkeypatch):
    poison_second_epoch(monkeypatch)
    out = tmp_path / "run"
    rc, _, err = _cli(capsys, "train", _run_yaml(tmp_path, tiny_cfg(apollo_root, out)))
    assert rc == 1
    _one_line_error(err, "non-finite loss at epoch 2", str(out / "ckpt" / "last.pt"))
    assert not (out / "metrics.json").exists() and not (out / "model.pt").exists()


# ----------------------------------------------------------------------------------------------- data
@pytest.fixture
def tree(apollo_root, tmp_path) -> Path:
    dst = tmp_path / "apollo"
    shutil.copytree(apollo_root, dst)
    return dst


def _check(capsys, root, split="val"):
    return _cli(capsys, "data", "check", "apolloscape", root, "--split", split)


def _first_record(root: Path, split="val"):
    from intrakd.data import build_dataset

    return build_dataset("apolloscape", root, split).records[0]


def test_list_entry_escaping_the_root_is_refused(tree, tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    lst = tree / "list" / "val.txt"
    first, *rest = lst.read_text().splitlines()
    image, label = first.split(".jpg ")
    shutil.copy(tree / (image + ".jpg"), outside / "x.jpg")
    lst.write_text("\n".join([*rest, f"../outside/x.jpg {label}"]) + "\n")
    rc, _, err = _check(capsys, tree)
    assert rc == 1
    _one_line_error(err, f"{lst}:{len(rest) + 1}", "'../outside/x.jpg'", "outside the dataset root")


def _flip_bytes(path: Path) -> None:
    """64 flipped bytes mid-scan: libjpeg patches over them with a "Corrupt JPEG data" warning (JPEG has no
    checksum, so a flip the decoder does not notice cannot be found by anyone)."""
    data = bytearray(path.read_bytes())
    for k in range(len(data) // 2, len(data) // 2 + 64):
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, fragment",
    [
        ("flipped bytes", "is corrupt (the decoder warned: Corrupt JPEG data"),
        ("truncated", "truncated"),
        ("zero bytes", "truncated"),
        ("not an image", "cannot be decoded"),
    ],
)
def test_corrupt_images_fail_data_check(tree, capsys, damage, fragment):
    image = _first_record(tree).image
    if damage == "flipped bytes":
        _flip_bytes(image)
    elif damage == "truncated":
        image.write_bytes(image.read_bytes()[:-300])
    elif damage == "zero bytes":
        image.write_bytes(b"")
    else:
        image.write_bytes(b"\xff\xd8 not a jpeg at all \xff\xd9")
    rc, _, err = _check(capsys, tree)
    assert rc == 1
    _one_line_error(err, str(image), fragment)


def test_flipped_bytes_still_load_for_training(tree):
    """Training reads leniently (as the official tools do); only `data check` is strict."""
    from intrakd.data.io import read_image

    image = _first_record(tree).image
    _flip_bytes(image)
    assert read_image(image).ndim == 3
    with pytest.raises(ValueError, match="Corrupt JPEG data"):
        read_image(image, strict=True)


@pytest.mark.parametrize("damage", ["out-of-table value", "size mismatch", "not a label image"])
def test_bad_labels_fail_data_check(tree, capsys, damage):
    label = _first_record(tree).label
    im = Image.open(label)
    ids = np.asarray(im).copy()
    if damage == "out-of-table value":
        ids[3, 4] = 7  # not an ApolloScape label ID
        fragment = "[7]"
    elif damage == "size mismatch":
        ids = ids[:-8]
        fragment = "label"
    if damage == "not a label image":
        label.write_bytes(b"garbage")
        fragment = "cannot be decoded"
    else:
        out = Image.fromarray(ids, mode="P")
        out.putpalette(im.getpalette())
        out.save(label)
    rc, _, err = _check(capsys, tree)
    assert rc == 1
    _one_line_error(err, label.name, fragment)


def test_missing_root_and_empty_list(tree, tmp_path, capsys):
    rc, _, err = _check(capsys, tmp_path / "nowhere")
    assert rc == 1
    _one_line_error(err, "nowhere", "does not exist")
    (tree / "list" / "val.txt").write_text("\n")
    rc, _, err = _check(capsys, tree)
    assert rc == 1
    _one_line_error(err, "val.txt", "empty")


def test_missing_and_mis_sized_predictions(tmp_path, capsys):
    gt = np.zeros((6, 8), np.uint8)
    Image.fromarray(gt).save(tmp_path / "g.png")
    Image.fromarray(np.zeros((4, 8), np.uint8)).save(tmp_path / "small.png")
    (tmp_path / "gl.txt").write_text("g.png\n")
    base = ["evaluate", "apolloscape", "--gt-root", tmp_path, "--pred-root", tmp_path, "--gt-list", tmp_path / "gl.txt"]
    (tmp_path / "missing.txt").write_text("nothere.png\n")
    rc, _, err = _cli(capsys, *base, "--pred-list", tmp_path / "missing.txt")
    assert rc == 1
    _one_line_error(err, "nothere.png")
    (tmp_path / "small.txt").write_text("small.png\n")
    rc, _, err = _cli(capsys, *base, "--pred-list", tmp_path / "small.txt")
    assert rc == 1
    _one_line_error(err, "small.png")


def test_malformed_llamas_json_is_one_line(tmp_path):
    from intrakd.data.llamas import read_label_json

    bad = tmp_path / "label.json"
    bad.write_text('{"lanes": [')
    with pytest.raises(ValueError, match="label.json") as err:
        read_label_json(bad)
    assert len(str(err.value).splitlines()) == 1


def test_rgb_label_is_decoded_by_colour_or_refused(tree, capsys):
    label = _first_record(tree).label
    rgb = Image.open(label).convert("RGB")
    rgb.save(label)
    rc, out, err = _check(capsys, tree)
    assert rc == 0, err  # the genuine ApolloScape colour table: an RGB label decodes by colour
    arr = np.asarray(rgb).copy()
    arr[0, 0] = (1, 2, 3)  # a colour in no table
    Image.fromarray(arr).save(label)
    rc, _, err = _check(capsys, tree)
    assert rc == 1
    _one_line_error(err, label.name)


def test_strict_decode_passes_a_good_image(tmp_path):
    """No false alarm: a clean JPEG decodes under the strict check."""
    from intrakd.data.io import read_image

    img = (np.random.RandomState(0).rand(32, 48, 3) * 255).astype(np.uint8)
    path = tmp_path / "ok.jpg"
    cv2.imwrite(str(path), img)
    assert read_image(path, strict=True).shape == (32, 48, 3)  # a good image passes
