"""Integration checks by value: the numbers a run produces, recomputed independently from the same tensors.

- SAD inside an engine run: zero before its switch step, on from it, equal to its direct computation;
  and every preset's SAD runs switch on before they end.
- IntRA-KD's three terms (intra, AT, KD) against a direct computation written with plain torch/numpy loops
  (cv2.blur for the AOI box filter, two-pass moments, explicit cosines), and each option changing the value.
- The engine's score on each of the four datasets (synthetic worlds) against the saved model's predictions written
  in the benchmark's submission format and re-scored from the files (cityscapesScripts for mIoU).
- A partial last batch leaves no gap in the global steps; restoring to full size puts a marker pixel at its scaled
  coordinate.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from intrakd.distill import build_method
from intrakd.distill.toy import ToySegModel

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------- SAD inside an engine run
def _direct_sad(feats: list[torch.Tensor], weight: float) -> float:
    """SAD by its definition (sad.py docstring): a_m = sum_c F^2, the later map bilinearly resized to the earlier
    map's size, both spatially softmaxed, MSE (mean) summed over consecutive pairs, times the weight."""
    total = 0.0
    for early, late in zip(feats[:-1], feats[1:]):
        a_e = early.double().pow(2).sum(1, keepdim=True)
        a_l = F.interpolate(late.double().pow(2).sum(1, keepdim=True), size=early.shape[-2:], mode="bilinear",
                            align_corners=False)
        p_e, p_l = (torch.softmax(a.flatten(1), 1) for a in (a_e, a_l))
        total += float(((p_e - p_l) ** 2).mean())
    return weight * total


def test_sad_is_off_before_and_on_after_its_switch_inside_an_engine_run(tmp_path_factory, tmp_path, monkeypatch):
    """4 training images, batch 2, 2 epochs: global steps 0..3; start_fraction 0.5 -> on from ceil(0.5 x 4) = 2,
    the first step of the second epoch. The recorded term is 0 at steps 0, 1 and equals the direct SAD of the
    student's block features at steps 2, 3; history.csv's epoch means say the same."""
    import pandas as pd
    from helpers import tiny_apollo, tiny_cfg

    from intrakd.distill.sad import SAD
    from intrakd.engine import train

    seen = []
    original = SAD.forward

    def recording(self, s_out, t_out, batch, step=0, epoch=0):
        out = original(self, s_out, t_out, batch, step=step, epoch=epoch)
        feats = [s_out["feats"][n].detach() for n in self.s_names]
        seen.append((step, epoch, float(out["sad"].detach()), _direct_sad(feats, self.weights["sad"])))
        return out

    monkeypatch.setattr(SAD, "forward", recording)
    root = tiny_apollo(tmp_path_factory, num=6)  # 2/3 of 6 = 4 training images
    out = tmp_path / "sad"
    train(tiny_cfg(root, out, method="sad", epochs=2, method_options={"start_fraction": 0.5}))
    assert [(s, e) for s, e, *_ in seen] == [(0, 0), (1, 0), (2, 1), (3, 1)]
    for step, _, got, direct in seen:
        if step < 2:
            assert got == 0.0
        else:
            assert direct > 0 and got == pytest.approx(direct, rel=1e-4)
    history = pd.read_csv(out / "history.csv")
    assert history["loss_sad"].iloc[0] == 0.0
    assert history["loss_sad"].iloc[1] == pytest.approx((seen[2][2] + seen[3][2]) / 2, rel=1e-6)


def test_a_partial_last_batch_leaves_no_gap_in_the_steps_the_schedule_counts(tmp_path_factory, tmp_path, monkeypatch):
    """5 training images, batch 2: the loader drops the partial last batch, so an epoch is 2 steps (not
    ceil(5 / 2) = 3). The global steps the methods see run 0..3 without a gap, metrics.json's ``iterations`` is
    the 4 steps run, and the poly LR (power 0.9, 0.01) of epoch 2's last step is 0.01 x (1 - 3/4)^0.9."""
    import json

    import pandas as pd
    from helpers import tiny_cfg

    from intrakd.data.synth import generate
    from intrakd.distill.sad import SAD
    from intrakd.engine import train

    steps = []
    original = SAD.forward
    monkeypatch.setattr(SAD, "forward", lambda self, *a, step=0, epoch=0: steps.append(step) or original(
        self, *a, step=step, epoch=epoch))
    root = tmp_path_factory.mktemp("odd") / "apolloscape"
    generate("apolloscape", root, num=8, seed=0, size=(424, 340))  # 2/3 of 8 = 5 training images
    out = tmp_path / "odd"
    metrics = train(tiny_cfg(root, out, method="sad", epochs=2, lr=0.01, method_options={"start_fraction": 0.5}))
    history = pd.read_csv(out / "history.csv")
    assert metrics["num_train_images"] == 5 and history["steps"].tolist() == [2, 2]
    assert steps == [0, 1, 2, 3]
    assert metrics["iterations"] == json.loads((out / "metrics.json").read_text())["iterations"] == 4
    assert history["lr"].iloc[1] == pytest.approx(0.01 * (1 - 3 / 4) ** 0.9)
    assert history["loss_sad"].iloc[0] == 0.0 and history["loss_sad"].iloc[1] > 0  # on from ceil(0.5 x 4) = 2


def _preset_configs() -> dict[str, Path]:
    files = {p.parent.parent.name: p for p in sorted((REPO / "presets").glob("*/config/config.yaml"))}
    return files | {"default": REPO / "config/config.yaml", ".test": REPO / ".test/config/config.yaml"}


#: Training images per split of the genuine datasets (datasets_metrics.md: CULane train 88,880 §1.1; LLAMAS train
#: 58,269 §2; Cityscapes gtFine train 2,975 §4). ApolloScape's split is the maintainer's random one: the paper's
#: dataset table says 103,653 train ([mem] in datasets_metrics.md §3), the smallest plausible count; any count of
#: that order gives the same answer below.
GENUINE_TRAIN = {"culane": 88_880, "llamas": 58_269, "cityscapes": 2_975, "apolloscape": 103_653}


def _train_images(config: dict, dataset: str) -> int:
    from intrakd.data.synth import split_counts

    d = config["datasets"][dataset]
    return split_counts(d["synth"]["num"])[0] if d["source"] == "synthetic" else GENUINE_TRAIN[dataset]


def _sad_runs(config: dict) -> list[tuple[str, str]]:
    from intrakd.grid import base_method

    runs = set()
    for block in config["grid"]:
        for method in block["methods"]:
            if base_method(config, method) == "sad":
                runs |= {(d, s, method) for d in block["datasets"] for s in block["students"]}
    return sorted(runs)


@pytest.mark.parametrize("preset", sorted(_preset_configs()))
def test_every_presets_sad_runs_switch_on_before_they_end(preset):
    """For every SAD run of every preset: the steps the engine runs (per epoch the loader's full batches, at most
    ``max_iters_per_epoch``) reach the switch step ``ceil(start_fraction x total_steps)`` before the last one."""
    from intrakd.distill.sad import START_FRACTION
    from intrakd.engine.train import iters_per_epoch
    from intrakd.grid import student_optim
    from intrakd.yamlio import load_file

    config = load_file(_preset_configs()[preset])
    runs = _sad_runs(config)
    if not runs:
        pytest.skip(f"the {preset} preset has no SAD run")
    for dataset, student, method in runs:
        p = student_optim(config, dataset, student)  # a run's epochs and batch (grid.run_params without the rest)
        n, batch, epochs = _train_images(config, dataset), p["batch_size"], p["epochs"]
        total = iters_per_epoch(n, batch, max_iters=p.get("max_iters_per_epoch")) * epochs  # the Trainer's count
        fraction = config["methods"][method].get("options", {}).get("start_fraction", START_FRACTION)
        sad = build_method("sad", ToySegModel(3, width=4), None, 3, total_steps=total, start_fraction=fraction)
        assert sad.switch_step <= total - 1, (f"{preset}: SAD run {dataset}/{student}/{method} never switches on: "
                                              f"switch step {sad.switch_step}, last step {total - 1}")
        assert 0 < sad.switch_step, f"{preset}: SAD run {dataset}/{student}/{method} is on from the first step"


# ---------------------------------------------------------------------- IntRA-KD terms by value
C = 4


def _setup():
    torch.manual_seed(0)
    student = ToySegModel(C, width=4).eval()
    teacher = ToySegModel(C, width=6).eval()
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 32, 32, generator=g)
    blocks = torch.randint(0, C, (2, 1, 4, 4), generator=g).float()  # 8 x 8 px class blocks
    label = F.interpolate(blocks, scale_factor=8, mode="nearest")[:, 0].long()
    label[0, :5] = 255  # ignored rows
    label[1, 10:12, 3:20] = (label[1, 10:12, 3:20] + 1) % C  # a 2-px line thinner than the 1/8 stride
    with torch.no_grad():
        s_out, t_out = student(x), teacher(x)
    return student, teacher, s_out, t_out, {"image": x, "label": label}


def _intra_direct(fs, ft, label, moments=(1, 2, 3), kernel=5, unit="feature", downsample="area") -> float:
    """The IntRA graph loss of one tap pair from the direct AOIs and graphs (tests/helpers.py): the squared
    student-teacher graph difference averaged over the pairs of classes present in both (AOI mass above 1e-3),
    summed over moment orders, averaged over the batch."""
    from helpers import direct_aoi, direct_graphs

    total = 0.0
    for b in range(fs.shape[0]):
        graphs, present = [], []
        for feat in (fs[b], ft[b]):
            aoi = direct_aoi(label[b].numpy(), feat.shape[-2:], C, kernel, unit, downsample)
            g, mass = direct_graphs(feat, aoi, moments)
            graphs.append(g)
            present.append(mass > 1e-3)
        both = present[0] & present[1]
        pairs = [(i, j) for i in range(C) for j in range(C) if both[i] and both[j]]
        total += sum(np.mean([(graphs[0][k, i, j] - graphs[1][k, i, j]) ** 2 for i, j in pairs])
                     for k in range(len(moments)))
    return total / fs.shape[0]


def test_skewness_of_a_channel_constant_over_a_region_is_zero():
    """A channel that is 0 over class 0's half and ~340 over class 1's: class 0's variance and skewness of that channel
    are 0 by definition (the two-pass form gives 0); the float64 algebraic form left a skewness of about 7 before its
    round-off residues were zeroed (issue 17's report)."""
    from intrakd.distill.intrakd import moment_pool

    feat = torch.zeros(1, 1, 8, 8)
    feat[0, 0, :, 4:] = 337.77 * (1 + 0.1 * torch.rand(8, 4, generator=torch.Generator().manual_seed(0)))
    aoi = torch.zeros(1, 2, 8, 8)
    aoi[0, 0, :, :4] = 1
    aoi[0, 1, :, 4:] = 1
    nodes, _ = moment_pool(feat, aoi)
    assert abs(float(nodes[0, 1, 0, 0])) < 1e-9  # the variance is right
    assert abs(float(nodes[0, 2, 0, 0])) < 1e-3


def _at_direct(fs, ft) -> float:
    """AT (authors' code): normalised flattened channel means of F^2, mean squared difference."""
    q = [F.normalize(f.double().pow(2).mean(1).flatten(1), dim=1) for f in (fs, ft)]
    return float(((q[0] - q[1]) ** 2).mean())


def _kd_direct(ls, lt) -> float:
    """Pixel-wise KL(p_t || p_s) at T = 1, mean over images and pixels."""
    ls, lt = ls.double(), lt.double()
    pt, log_pt, log_ps = lt.softmax(1), lt.log_softmax(1), ls.log_softmax(1)
    return float((pt * (log_pt - log_ps)).sum(1).mean())


def _taps(s_out, t_out):
    return [(s_out["feats"][n], t_out["feats"][n]) for n in ("b3", "b5")]  # ToySegModel's "mid" and "high"


def test_intrakd_terms_equal_their_direct_computation():
    """Default weights intra 1, AT 500, KD 1 (intrakd.py), each term summed once over the two taps."""
    student, teacher, s_out, t_out, batch = _setup()
    got = build_method("intrakd", student, teacher, C)(s_out, t_out, batch)
    taps = _taps(s_out, t_out)
    assert set(got) == {"intra", "at", "kd"}
    intra = sum(_intra_direct(fs, ft, batch["label"]) for fs, ft in taps)
    assert intra > 0 and float(got["intra"]) == pytest.approx(intra, rel=1e-5)
    assert float(got["at"]) == pytest.approx(500 * sum(_at_direct(fs, ft) for fs, ft in taps), rel=1e-5)
    assert float(got["kd"]) == pytest.approx(_kd_direct(s_out["logits"], t_out["logits"]), rel=1e-5)


@pytest.mark.parametrize("options, direct", [
    ({"downsample": "nearest"}, {"downsample": "nearest"}),
    ({"kernel_unit": "label"}, {"unit": "label"}),
    ({"kernel_unit": "label", "downsample": "nearest"}, {"unit": "label", "downsample": "nearest"}),
    ({"kernel": 3}, {"kernel": 3}),
    ({"moments": (1,)}, {"moments": (1,)}),
    ({"moments": (2, 3)}, {"moments": (2, 3)}),
])
def test_each_aoi_and_moment_option_changes_the_intra_term_to_its_direct_value(options, direct):
    student, teacher, s_out, t_out, batch = _setup()
    default = float(build_method("intra", student, teacher, C)(s_out, t_out, batch)["intra"])
    got = float(build_method("intra", student, teacher, C, **options)(s_out, t_out, batch)["intra"])
    want = sum(_intra_direct(fs, ft, batch["label"], **direct) for fs, ft in _taps(s_out, t_out))
    assert got == pytest.approx(want, rel=1e-5)
    assert abs(got - default) > 1e-4 * default


def test_bilinear_aoi_downsampling_changes_the_intra_term():
    student, teacher, s_out, t_out, batch = _setup()
    values = {d: float(build_method("intra", student, teacher, C, downsample=d)(s_out, t_out, batch)["intra"])
              for d in ("area", "nearest", "bilinear")}
    assert len({round(v, 6) for v in values.values()}) == 3, values


def test_weights_and_switches_reach_the_loss():
    """A weight scales exactly its own term; with_at / with_kd False drop the term; the same tensors throughout."""
    student, teacher, s_out, t_out, batch = _setup()
    base = {k: float(v) for k, v in build_method("intrakd", student, teacher, C)(s_out, t_out, batch).items()}
    weighted = build_method("intrakd", student, teacher, C, weights={"intra": 3.0, "at": 1.0, "kd": 0.5})
    got = {k: float(v) for k, v in weighted(s_out, t_out, batch).items()}
    assert got["intra"] == pytest.approx(3 * base["intra"], rel=1e-6)
    assert got["at"] == pytest.approx(base["at"] / 500, rel=1e-6)
    assert got["kd"] == pytest.approx(base["kd"] / 2, rel=1e-6)
    only = build_method("intrakd", student, teacher, C, with_at=False, with_kd=False)(s_out, t_out, batch)
    assert set(only) == {"intra"} and float(only["intra"]) == pytest.approx(base["intra"], rel=1e-6)


# ---------------------------------------------------------------------- the engine's score, re-scored from files
#: (synthetic tree size W x H, network input W x H): the quick preset's sizes (presets/quick/config/config.yaml)
SCORED = {"apolloscape": ((424, 340), (208, 64)), "culane": ((410, 148), (240, 56)),
          "llamas": ((320, 180), (240, 64)), "cityscapes": ((256, 128), (128, 64))}


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """A 6-image synthetic tree per dataset (4 train, 2 val images): {dataset: folder holding ``data/``}."""
    from intrakd.data.synth import generate

    out = {}
    for dataset, (size, _) in SCORED.items():
        out[dataset] = tmp_path_factory.mktemp(dataset)
        generate(dataset, out[dataset] / "data", num=6, seed=0, size=size)
    return out


@pytest.fixture(scope="module")
def scored_runs(trees):
    """One 2-epoch ERFNet run per dataset on its tree: {dataset: (run config, folder)}."""
    from helpers import tiny_cfg

    from intrakd.engine import train

    runs = {}
    for dataset, (_, input_size) in SCORED.items():
        base = trees[dataset]
        cfg = tiny_cfg(base / "data", base / "run", dataset=dataset, input_size=list(input_size), epochs=2, lr=0.05)
        train(cfg)
        runs[dataset] = (cfg, base)
    return runs


def _eval_set(cfg):
    from intrakd.data import build_dataset

    return build_dataset(cfg.dataset, cfg.data_root, cfg.eval_split, train=False, input_size=tuple(cfg.input_size))


def _predictions(cfg, dataset, model=None):
    """(eval dataset, [(index, float logits C x h x w, exist logits or None)]) of ``model`` (default the run's
    model.pt, rebuilt from the file), run here image by image (not through the engine's loader)."""
    from intrakd.data import DATASETS
    from intrakd.models.checkpoint import load_weights

    ds = _eval_set(cfg)
    if model is None:
        model, _ = load_weights(cfg.out / "model.pt", name=cfg.model, num_classes=DATASETS[dataset].num_classes)
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(len(ds)):
            o = model(ds[i]["image"][None])
            out.append((i, o["logits"][0].float(), o["exist"][0].float() if "exist" in o else None))
    return ds, out


def _rescore_apolloscape(cfg, base, monkeypatch):
    """Argmax at the network size, the submission PNG of metrics.writers (trainId -> ID, nearest resize into the
    kept rows of a void image), scored by cityscapesScripts with the ApolloScape table against the label PNGs."""
    from helpers import apollo_submission_files, cityscapes_scripts_oracle

    from intrakd.models.checkpoint import load_weights

    model, _ = load_weights(cfg.out / "model.pt", name=cfg.model, num_classes=37)  # 37 outputs (datasets_metrics.md)
    pairs = apollo_submission_files(model, _eval_set(cfg), base)
    return 100 * cityscapes_scripts_oracle(monkeypatch, *zip(*pairs), "apolloscape")[1]


def _rescore_cityscapes(cfg, base, monkeypatch):
    """Logits upsampled bilinearly to the label size before the argmax (torch's own interpolate), written as
    ``*_pred_labelIds.png`` by metrics.writers, scored by cityscapesScripts against the gtFine labelIds PNGs."""
    from helpers import cityscapes_scripts_oracle

    from intrakd.metrics.writers import write_cityscapes_label_ids

    ds, preds = _predictions(cfg, "cityscapes")
    pred_files, gt_files = [], []
    for i, logits, _ in preds:
        w, h = ds.full_size(i)
        full = F.interpolate(logits[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        stem = "_".join(Path(ds.label_path(i)).name.split("_")[:3])
        pred_files.append(write_cityscapes_label_ids(base / "pred" / f"{stem}_pred_labelIds.png",
                                                     full.argmax(0).numpy()))
        gt_files.append(ds.label_path(i))
    return 100 * cityscapes_scripts_oracle(monkeypatch, pred_files, gt_files, "cityscapes")[1]


class _LaneLookup(torch.nn.Module):
    """A CULane "network" whose output is a fixed function of its input image: logits 6 x one-hot of a lane map
    chosen per image (by the image's bytes), all lanes declared present. The 2-epoch net predicts no lane at all
    (F1 0 = 0), so the engine's scoring is also compared on these predictions, which hold hits and misses."""

    def __init__(self, images, lane_maps):
        super().__init__()
        self.table = {img.numpy().tobytes(): torch.nn.functional.one_hot(m, 5).permute(2, 0, 1).float() * 6
                      for img, m in zip(images, lane_maps)}

    def forward(self, x):
        logits = torch.stack([self.table[img.numpy().tobytes()] for img in x])
        return {"logits": logits, "exist": torch.full((len(x), 4), 5.0)}


def _lane_lookup(cfg):
    """The lookup net of the CULane eval images: image 0's true slot map without slot 2 (a missed lane), image 1's
    shifted 12 px right (lanes off their ground truth)."""
    ds = _eval_set(cfg)
    maps = [ds[i]["label"].clone() for i in range(len(ds))]
    maps = [torch.where(m == 255, 0, m) for m in maps]
    maps[0][maps[0] == 2] = 0
    maps[1] = torch.roll(maps[1], 12, dims=1)
    return _LaneLookup([ds[i]["image"] for i in range(len(ds))], maps)


def _rescore_culane(cfg, base, monkeypatch, model=None):
    """prob2lines on the lane probabilities and existence (metrics.writers.write_culane_lines), one
    ``.lines.txt`` per image, scored by the file-based evaluator against the tree's ``.lines.txt`` ground truth."""
    from intrakd.metrics import culane
    from intrakd.metrics.writers import write_culane_lines

    ds, preds = _predictions(cfg, "culane", model)
    names = []
    for i, logits, exist in preds:
        name = str(Path(ds.records[i].image).relative_to(cfg.data_root))
        names.append(name)
        write_culane_lines(base / "pred" / (name[:-4] + ".lines.txt"), torch.softmax(logits, 0)[1:].numpy(),
                           torch.sigmoid(exist).numpy(), **ds.prob2lines_kwargs())
    (base / "list.txt").write_text("".join(f"/{n}\n" for n in names))
    result = culane.evaluate(cfg.data_root, base / "pred", base / "list.txt", workers=1, **ds.metric_kwargs())
    return 100 * result["f1"], result


def _rescore_llamas(cfg, base, monkeypatch):
    """Softmax maps resized bilinearly to the kept rows (torch's interpolate), the dropped rows background, written
    as the five ``<ts>.json_<c>.png`` per image by metrics.writers, scored by the file-based evaluator against the
    label JSONs."""
    from intrakd.metrics import llamas
    from intrakd.metrics.writers import write_llamas_probs

    ds, preds = _predictions(cfg, "llamas")
    items = []
    for i, logits, _ in preds:
        w, h = ds.full_size(i)
        top = ds.top_rows(h)
        probs = F.interpolate(torch.softmax(logits, 0)[None], size=(h - top, w), mode="bilinear",
                              align_corners=False)[0].numpy()
        full = np.zeros((5, h, w))
        full[0, :top] = 1.0
        full[:, top:] = probs
        write_llamas_probs(base / "pred", ds.key(i), full)
        items.append((ds.key(i), ds.label_path(i)))
    return 100 * llamas.evaluate(base / "pred", items, workers=1)["map"]


@pytest.mark.parametrize("dataset", sorted(SCORED))
def test_the_engines_score_equals_a_rescoring_of_the_saved_models_written_predictions(dataset, scored_runs,
                                                                                     monkeypatch):
    """metrics.json's value (the engine's evaluation at the end of the run) against model.pt's predictions written
    in each benchmark's submission format and scored from the files by the official-equivalent scorer."""
    import json

    from intrakd.engine.evaluate import paper_units

    cfg, base = scored_runs[dataset]
    metrics = json.loads((cfg.out / "metrics.json").read_text())
    if dataset == "culane":
        assert metrics["value"] == _rescore_culane(cfg, base, monkeypatch)[0] == 0.0  # no lane predicted
        from intrakd.data import DATASETS
        from intrakd.engine.evaluate import evaluate

        lookup = _lane_lookup(cfg)
        engine = evaluate(lookup, _eval_set(cfg), DATASETS["culane"], torch.device("cpu"))
        got, counts = _rescore_culane(cfg, base, monkeypatch, lookup)
        assert counts["tp"] > 0 and counts["fp"] > 0 and counts["fn"] > 0, counts
        assert (engine["tp"], engine["fp"], engine["fn"]) == (counts["tp"], counts["fp"], counts["fn"])
        assert engine["value"] == pytest.approx(got, abs=1e-9)
        return
    got = globals()[f"_rescore_{dataset}"](cfg, base, monkeypatch)
    if dataset == "llamas":  # LLAMAS mAP is reported as a fraction, the re-scoring above in percent
        got = paper_units("map", got / 100)
    assert metrics["value"] == pytest.approx(got, abs=1e-9), (dataset, metrics["value"], got)
    assert metrics["value"] != metrics["floor"]["value"], "the run scores its floor: the comparison is weak"


# ---------------------------------------------------------------------- restore to full resolution
def _nearest_span(i: int, small: int, full: int) -> range:
    """Full-size indices X an OpenCV INTER_NEAREST upscale from ``small`` to ``full`` reads from index ``i``:
    floor(X x small / full) == i, i.e. ceil(i x full / small) <= X < ceil((i + 1) x full / small)."""
    return range(math.ceil(i * full / small), math.ceil((i + 1) * full / small))


#: dataset: (marker train id, its label ID, the background's label ID) from the published tables
#: (datasets_metrics.md): ApolloScape trainId 2 is s_y_d, ID 204, trainId 0 void, ID 0 (§3.2); Cityscapes trainId 13
#: is car, ID 26, trainId 0 road, ID 7 (§4); CULane slots are their own values; LLAMAS class 2 is l0.
MARKERS = {"apolloscape": (2, 204, 0), "culane": (3, 3, 0), "cityscapes": (13, 26, 7), "llamas": (2, None, None)}


@pytest.mark.parametrize("dataset", sorted(SCORED))
def test_restore_puts_a_marker_pixel_at_its_scaled_coordinate(dataset, trees):
    """A background prediction at the network size with one marker pixel at (x, y) = (37, 21): restored to the full
    image, the marker covers exactly the nearest-neighbour block of (x, y) below the dropped top rows, centred on
    its scaled coordinate ((x + 0.5) W / w, top + (y + 0.5) (H - top) / h), and nothing else moved."""
    from intrakd.data import build_dataset

    w, h = SCORED[dataset][1]
    ds = build_dataset(dataset, trees[dataset] / "data", "val", train=False, input_size=(w, h))
    W, H = ds.full_size(0)
    top = ds.top_rows(H)
    assert (dataset == "cityscapes") == (top == 0)  # the lane datasets drop their top rows (datasets_metrics.md)
    x, y = 37, 21
    pred = np.zeros((h, w), np.uint8)
    marker, marker_id, background_id = MARKERS[dataset]
    pred[y, x] = marker
    out = ds.restore_prediction(0, pred)
    rows, cols = _nearest_span(y, h, H - top), _nearest_span(x, w, W)
    assert cols.start <= (x + 0.5) * W / w <= cols.stop and rows.start <= (y + 0.5) * (H - top) / h <= rows.stop
    block = np.zeros((H, W), bool)
    block[top + rows.start:top + rows.stop, cols.start:cols.stop] = True
    if dataset == "llamas":  # five 0/255 maps: the marker's class map holds the block, map 0 the rest
        assert out.shape == (5, H, W)
        assert np.array_equal(out[marker] == 255, block) and np.array_equal(out[0] == 255, ~block)
        assert not out[[1, 3, 4]].any()
        return
    assert out.shape == (H, W)
    assert np.array_equal(out == marker_id, block) and (out[~block] == background_id).all()


def test_cityscapes_logits_are_upsampled_so_a_marker_peak_lands_at_its_scaled_coordinate(trees):
    """Cityscapes upsamples the logits bilinearly before the argmax (engine.evaluate.label_size_logits): a class-13
    logit peak at (x, y) of the 128 x 64 map wins at the full-size pixel nearest its scaled coordinate
    ((x + 0.5) x 2 - 0.5 = 74.5 -> 74 or 75, (y + 0.5) x 2 - 0.5 = 42.5 -> 42 or 43) and nowhere 3 px away."""
    from intrakd.data import build_dataset
    from intrakd.engine.evaluate import label_size_logits

    ds = build_dataset("cityscapes", trees["cityscapes"] / "data", "val", train=False, input_size=(128, 64))
    assert ds.full_size(0) == (256, 128)
    logits = torch.zeros(19, 64, 128)
    logits[13, 21, 37] = 10.0
    win = label_size_logits(logits, ds, 0).argmax(0) == 13
    assert win[42:44, 74:76].all()
    ys, xs = torch.nonzero(win, as_tuple=True)
    assert (ys - 42.5).abs().max() < 3 and (xs - 74.5).abs().max() < 3
