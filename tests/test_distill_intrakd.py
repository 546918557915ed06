"""IntRA-KD: AOI generation (OpenCV oracle), moment pooling (closed form and loop form), graph and loss."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from intrakd.distill import build_method
from intrakd.distill.intrakd import (affinity_graph, aoi_maps, box_filter, class_fractions, graph_loss, moment_pool,
                                    one_hot)
from intrakd.distill.toy import ToySegModel

torch.set_num_threads(1)


@pytest.mark.parametrize("k", [1, 2, 4, 5, 11])
def test_box_filter_matches_cv2_blur(k):
    x = np.random.default_rng(k).random((3, 13, 17)).astype(np.float32)
    ours = box_filter(torch.from_numpy(x)[None], k, "reflect")[0].numpy()
    ref = np.stack([cv2.blur(c, (k, k)) for c in x])  # BORDER_REFLECT_101, anchor at the kernel centre
    np.testing.assert_allclose(ours, ref, atol=1e-6)


@pytest.mark.parametrize("k", [3, 4, 5])
def test_box_filter_zero_and_valid_padding_match_cv2(k):
    x = np.random.default_rng(k).random((2, 9, 11)).astype(np.float32)
    t = torch.from_numpy(x)[None]
    zeros = np.stack([cv2.blur(c, (k, k), borderType=cv2.BORDER_CONSTANT) for c in x])
    np.testing.assert_allclose(box_filter(t, k, "zeros")[0].numpy(), zeros, atol=1e-6)
    ones = np.ones_like(x[0])
    count = cv2.boxFilter(ones, -1, (k, k), normalize=False, borderType=cv2.BORDER_CONSTANT)
    valid = np.stack([cv2.boxFilter(c, -1, (k, k), normalize=False, borderType=cv2.BORDER_CONSTANT) for c in x]) / count
    np.testing.assert_allclose(box_filter(t, k, "valid")[0].numpy(), valid, atol=1e-6)
    with pytest.raises(ValueError, match="pad"):
        box_filter(t, k, "mirror")


def test_box_filter_valid_padding_keeps_constant_maps():
    x = torch.ones(1, 1, 6, 7)
    np.testing.assert_allclose(box_filter(x, 5, "valid").numpy(), 1.0, atol=1e-6)
    assert box_filter(x, 5, "zeros")[0, 0, 0, 0].item() == pytest.approx(9 / 25)


def test_label_unit_bilinear_matches_official_example_pipeline():
    # official example: one-hot, cv2.blur at label resolution, cv2.resize to (width, height) bilinear
    rng = np.random.default_rng(0)
    label = rng.integers(0, 4, size=(32, 48))
    label[:5, :7] = 255
    ours = aoi_maps(torch.from_numpy(label)[None], 4, (16, 24), kernel=11, kernel_unit="label",
                   downsample="bilinear")[0].numpy()
    for j in range(4):
        blurred = cv2.blur((label == j).astype(np.float32), (11, 11))
        ref = cv2.resize(blurred, (24, 16), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_allclose(ours[j], ref, atol=1e-5)


def test_aoi_one_hot_resize_then_smooth_and_ignore():
    label = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [255, 255, 2, 2], [255, 255, 2, 2]])[None]
    oh = one_hot(label, 3)
    assert oh.shape == (1, 3, 4, 4)
    assert oh[0, :, 2:, :2].sum() == 0  # ignore pixels belong to no AOI
    a = aoi_maps(label, 3, (2, 2), kernel=1, downsample="nearest")  # nearest resize only
    np.testing.assert_array_equal(a[0].argmax(0).numpy(), [[0, 1], [0, 2]])
    assert a[0, :, 1, 0].sum() == 0  # the ignored quadrant
    smooth = aoi_maps(label, 3, (4, 4), kernel=3)
    assert torch.all(smooth <= 1) and torch.all(smooth >= 0)


@pytest.mark.parametrize("width", [4, 6])
def test_area_downsample_keeps_a_thin_line_at_every_offset(width):
    # a vertical line `width` px wide on a 64 x 64 label, at every horizontal offset modulo the 1/8 stride:
    # area downsampling keeps its mass (width/8 per feature row, i.e. width label pixels), nearest does not
    area_mass, nearest_mass = set(), set()
    for offset in range(8):
        label = torch.zeros(1, 64, 64, dtype=torch.long)
        label[0, :, 16 + offset:16 + offset + width] = 1
        for kernel_unit in ("feature", "label"):
            a = aoi_maps(label, 2, (8, 8), kernel=1, kernel_unit=kernel_unit)
            assert a[0, 1].sum().item() * 64 == pytest.approx(64 * width)  # label pixels of class 1
            np.testing.assert_allclose((a[0, 0] + a[0, 1]).numpy(), 1.0, atol=1e-6)
            area_mass.add(round(a[0, 1].sum().item(), 5))
        nearest_mass.add(aoi_maps(label, 2, (8, 8), kernel=1, downsample="nearest")[0, 1].sum().item())
    assert area_mass == {float(width)}
    assert nearest_mass == {0.0, 8.0}  # nearest: the whole line or nothing, depending on the offset


def test_area_downsample_with_smoothing_and_uneven_sizes_keeps_mass():
    rng = np.random.default_rng(1)
    label = torch.from_numpy(rng.integers(0, 3, size=(2, 43, 61)))
    for kernel_unit in ("feature", "label"):
        a = aoi_maps(label, 3, (6, 8), kernel=3, kernel_unit=kernel_unit)
        np.testing.assert_allclose(a.sum(1).numpy(), 1.0, atol=1e-5)  # a partition of unity before and after


@pytest.mark.parametrize("name", ["intrakd", "at", "mimic", "irg"])
def test_teacher_taps_are_chosen_apart_from_the_students(name):
    s, t = ToySegModel(3, width=4), ToySegModel(3, width=8)
    same = build_method(name, s, t, 3)
    assert same.t_names == same.s_names
    other = build_method(name, s, t, 3, taps=("high",), teacher_taps=("mid",))
    assert other.s_names == [s.tap("high").name] and other.t_names == [t.tap("mid").name]
    with pytest.raises(ValueError, match="pair up one to one"):
        build_method(name, s, t, 3, taps=("high",), teacher_taps=("mid", "high"))


def _two_region_case():
    """2 x 8 map, class 0 on columns 0-3, class 1 on columns 4-7 (row 1 duplicates row 0)."""
    label = torch.tensor([[0] * 4 + [1] * 4] * 2)[None]
    ch0 = [0, 0, 0, 4, 2, 2, 2, 2]
    ch1 = [1, 1, 1, 1, 0, 4, 4, 4]
    feat = torch.tensor([[ch0, ch0], [ch1, ch1]], dtype=torch.float32)[None]  # 1 x 2 x 2 x 8
    return label, feat


def test_closed_form_two_region_moments_and_graph():
    label, feat = _two_region_case()
    aoi = aoi_maps(label, 2, feat.shape[-2:], kernel=1)
    mom, mass = moment_pool(feat, aoi)
    s = 2 / math.sqrt(3)  # skewness of [0, 0, 0, 4]: third 6 / var 3 ** 1.5
    expected = torch.tensor([[[1, 1], [2, 3]], [[3, 0], [0, 3]], [[s, 0], [0, -s]]], dtype=torch.float64)
    np.testing.assert_allclose(mom[0].double().numpy(), expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(mass[0].numpy(), [8, 8])
    g = affinity_graph(mom)[0]
    off = g[:, 0, 1].numpy()
    np.testing.assert_allclose(off, [5 / math.sqrt(2 * 13), 0.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(torch.diagonal(g, dim1=-2, dim2=-1).numpy(), 1.0, atol=1e-6)
    gc = affinity_graph(mom, "concat")[0, 0, 0, 1].item()
    assert gc == pytest.approx(5 / math.sqrt((11 + s * s) * (22 + s * s)), abs=1e-5)


def test_closed_form_loss_and_absent_classes_contribute_nothing():
    label, feat = _two_region_case()
    aoi2 = aoi_maps(label, 2, feat.shape[-2:], kernel=1)
    gs = affinity_graph(moment_pool(feat, aoi2)[0])
    gt = torch.ones_like(gs)  # a teacher whose regions all look alike
    present = torch.ones(1, 2, dtype=torch.bool)
    expected = sum(2 * (1 - c) ** 2 / 4 for c in (5 / math.sqrt(26), 0.0, 0.0))
    assert graph_loss(gs, gt, present).item() == pytest.approx(expected, abs=1e-5)
    assert graph_loss(gs, gt, present, diagonal=False).item() == pytest.approx(2 * expected, abs=1e-5)
    # a third class absent from the image: same loss under "present"; under "all" the n^2 = 9 denominator
    aoi3 = aoi_maps(label, 3, feat.shape[-2:], kernel=1)
    mom3, mass3 = moment_pool(feat, aoi3)
    assert torch.all(mom3[0, :, 2] == 0)
    gs3 = affinity_graph(mom3)
    gt3 = torch.rand_like(gs3)
    gt3[..., :2, :2] = 1
    present3 = mass3 > 1e-3
    assert present3.tolist() == [[True, True, False]]
    assert graph_loss(gs3, gt3, present3).item() == pytest.approx(expected, abs=1e-5)
    assert graph_loss(gs3, gt3, present3, reduction="all").item() == pytest.approx(expected * 4 / 9, abs=1e-5)


def _loop_moments(feat, aoi, normaliser, eps=1e-6, second="variance", third="skewness"):
    """Unvectorised two-pass weighted moments (the official example's loop form), numpy float64."""
    f = feat.double().numpy()
    m = aoi.double().numpy()
    b, c = f.shape[:2]
    n = m.shape[1]
    out = np.zeros((b, 3, n, c))
    for i in range(b):
        for j in range(n):
            w = m[i, j].ravel()
            z = w.sum() if normaliser == "mass" else w.size
            if w.sum() == 0:
                continue
            for k in range(c):
                x = f[i, k].ravel()
                mu = (w * x).sum() / z
                var = (w * (x - mu) ** 2).sum() / z
                third_c = (w * (x - mu) ** 3).sum() / z
                out[i, 0, j, k] = mu
                out[i, 1, j, k] = var if second == "variance" else math.sqrt(max(var, 0) + eps)
                out[i, 2, j, k] = third_c if third == "central" else third_c / (max(var, 0) + eps) ** 1.5
    return out


def _random_case(seed=1):
    g = torch.Generator().manual_seed(seed)
    feat = torch.randn(2, 5, 6, 10, generator=g).relu() + 0.5
    label = torch.randint(0, 4, (2, 24, 40), generator=g)
    label[1][label[1] == 3] = 255  # class 3 absent from image 1
    aoi = aoi_maps(label, 5, (6, 10), kernel=3)  # class 4 absent everywhere
    return feat, aoi


@pytest.mark.parametrize("normaliser", ["mass", "constant"])
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_vectorised_moments_match_loop_form(normaliser, precision):
    feat, aoi = _random_case()
    mom, _ = moment_pool(feat, aoi, normaliser=normaliser, precision=precision)
    ref = _loop_moments(feat, aoi, normaliser)
    tol = 1e-6 if precision == "float64" else 2e-3
    np.testing.assert_allclose(mom.double().numpy(), ref, atol=tol, rtol=tol)
    assert torch.all(mom[:, :, 4] == 0) and torch.all(mom[1, :, 3] == 0)


@pytest.mark.parametrize("second,third", [("std", "skewness"), ("variance", "central"), ("std", "central")])
def test_moment_forms_match_loop_form(second, third):
    feat, aoi = _random_case(2)
    mom, _ = moment_pool(feat, aoi, second=second, third=third)
    np.testing.assert_allclose(mom.double().numpy(), _loop_moments(feat, aoi, "mass", second=second, third=third),
                               atol=1e-6, rtol=1e-6)
    assert torch.all(mom[:, :, 4] == 0)  # absent classes stay exactly zero in every form


def _near_constant_case(spread):
    """Channel 0 is 7 + spread * ramp^3 on class 0 and 100..400 on class 1 (channel 1 a plain ramp): class 0's central
    moments of channel 0 are tiny next to mu^2, mu^3 (mu = 7 less the channel's mean, about -121), so the algebraic
    forms cancel."""
    label = torch.tensor([[0] * 8 + [1] * 8] * 4)[None]
    feat = torch.full((1, 2, 4, 16), 7.0)
    feat[0, 0, :, :8] += spread * torch.linspace(0, 1, 32).view(4, 8) ** 3
    feat[0, 0, :, 8:] = torch.linspace(100, 400, 32).view(4, 8)
    feat[0, 1] = torch.linspace(-1, 1, 64).view(4, 16)
    aoi = aoi_maps(label, 2, (4, 16), kernel=1)
    return feat, aoi, _loop_moments(feat, aoi, "mass")


def test_a_constant_region_has_zero_central_moments_in_either_precision():
    # the true variance and skewness are 0; the algebraic form's residues (~1e-12 x mu^3 divided by
    # (0 + eps)^1.5 = 1e-9) gave a skewness of order 1 in float32 before residues within round-off were zeroed
    feat, aoi, ref = _near_constant_case(0.0)
    assert ref[0, 1, 0, 0] == 0 and ref[0, 2, 0, 0] == 0
    for precision in ("float64", "float32"):
        mom = moment_pool(feat, aoi, precision=precision)[0].double().numpy()
        assert mom[0, 1, 0, 0] == 0 and mom[0, 2, 0, 0] == 0
        np.testing.assert_allclose(mom[0, :, 1], ref[0, :, 1], rtol=1e-6, atol=1e-6)  # the other class is exact


def test_float64_resolves_a_small_spread_that_float32_reports_as_unresolved():
    # spread 0.1: variance 8.8e-4 next to mu^2 ~ 1.5e4 (relative 6e-8): float64 matches the loop form (skewness
    # 1.0721 by the loop); float32's round-off (~1e-7 x sqrt(P)) covers it, so it reports 0 rather than noise
    feat, aoi, ref = _near_constant_case(0.1)
    f64 = moment_pool(feat, aoi)[0].double().numpy()
    np.testing.assert_allclose(f64[0, 1:, 0, 0], ref[0, 1:, 0, 0], rtol=1e-4)
    assert ref[0, 2, 0, 0] == pytest.approx(1.0721, abs=1e-4)
    f32 = moment_pool(feat, aoi, precision="float32")[0].double().numpy()
    assert f32[0, 1, 0, 0] == 0 and f32[0, 2, 0, 0] == 0
    # spread 1e-4: the third moment (2.8e-5 x var^1.5 ~ 7e-19) is below float64's round-off of mu^3 terms (~1e-9):
    # unresolved, so 0 (the algebraic form left ~0.93 here); the variance (8.8e-10) is still resolved
    feat, aoi, ref = _near_constant_case(1e-4)
    f64 = moment_pool(feat, aoi)[0].double().numpy()
    assert f64[0, 2, 0, 0] == 0 and f64[0, 1, 0, 0] == pytest.approx(ref[0, 1, 0, 0], rel=1e-2)


def test_moments_and_graph_stay_full_precision_under_autocast():
    feat, aoi = _random_case(3)
    feat_bf16 = feat.to(torch.bfloat16)
    ref_mom, _ = moment_pool(feat_bf16.float(), aoi)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mom, _ = moment_pool(feat_bf16, aoi)
        graph = affinity_graph(mom)
    assert mom.dtype == torch.float32 and graph.dtype == torch.float32
    np.testing.assert_allclose(mom.numpy(), ref_mom.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(graph.numpy(), affinity_graph(ref_mom).numpy(), rtol=1e-6, atol=1e-6)


def test_moment_subset_and_switch_errors():
    feat = torch.rand(1, 3, 4, 4)
    aoi = aoi_maps(torch.zeros(1, 4, 4, dtype=torch.long), 2, (4, 4), kernel=1)
    assert moment_pool(feat, aoi, moments=(1, 3))[0].shape == (1, 2, 2, 3)
    with pytest.raises(ValueError, match="same B, h, w"):
        moment_pool(feat, aoi[..., :3])
    # the options are checked once, where the method is built (moment_pool trusts them)
    student, teacher = ToySegModel(4, width=4), ToySegModel(4, width=4)
    for option, fragment in [({"moments": (4,)}, "moments"), ({"moments": (1, 1)}, "moments"),
                             ({"third": "kurtosis"}, "third"), ({"normaliser": "area"}, "normaliser")]:
        with pytest.raises(ValueError, match=fragment):
            build_method("intrakd", student, teacher, 4, **option)
    with pytest.raises(ValueError, match="kernel_unit"):
        aoi_maps(torch.zeros(1, 4, 4, dtype=torch.long), 2, (4, 4), kernel_unit="sideways")
    with pytest.raises(ValueError, match="downsample"):
        aoi_maps(torch.zeros(1, 4, 4, dtype=torch.long), 2, (4, 4), downsample="bicubic")


def test_teacher_with_other_channels_needs_no_adaptor_and_gets_no_gradient():
    student, teacher = ToySegModel(4, width=4), ToySegModel(4, width=12)
    assert student.tap("high").channels != teacher.tap("high").channels
    method = build_method("intrakd", student, teacher, 4)
    assert len(list(method.parameters())) == 0
    x = torch.randn(2, 3, 32, 32)
    label = torch.randint(0, 4, (2, 32, 32))
    losses = method(student(x), teacher(x), {"image": x, "label": label})  # teacher run WITH autograd on purpose
    assert set(losses) == {"intra", "at", "kd"}
    sum(losses.values()).backward()
    assert all(p.grad is None for p in teacher.parameters())
    grads = [p.grad for p in student.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("opts", [
    {"graph": "concat"}, {"kernel_unit": "label", "kernel": 11}, {"downsample": "nearest"},
    {"kernel_unit": "label", "downsample": "bilinear"}, {"teacher_taps": ("high", "mid")}, {"normaliser": "constant", "reduction": "all"},
    {"diagonal": False, "moments": (1, 2)}, {"pad": "valid", "precision": "float32"},
])
def test_intra_switches_give_finite_graph_loss(opts):
    student, teacher = ToySegModel(4, width=4), ToySegModel(4, width=6)
    method = build_method("intra", student, teacher, 4, **opts)
    x = torch.randn(2, 3, 32, 32)
    label = torch.randint(0, 4, (2, 32, 32))
    with torch.no_grad():
        t_out = teacher(x)
    out = method(student(x), t_out, {"label": label})
    assert set(out) == {"intra"} and torch.isfinite(out["intra"]) and out["intra"] > 0


def test_identical_networks_give_zero_loss():
    student = ToySegModel(4, width=4)
    method = build_method("intra", student, student, 4)
    x = torch.randn(2, 3, 32, 32)
    out = student(x)
    assert method(out, out, {"label": torch.randint(0, 4, (2, 32, 32))})["intra"].item() == pytest.approx(0, abs=1e-10)


@pytest.mark.real_samples
def test_aoi_and_intra_loss_on_genuine_apolloscape_labels(real_samples):
    from intrakd.data.apolloscape import decode_label_ids, ids_to_train

    folder = real_samples / "apolloscape_lane" / "test_eval_data" / "gt_dir" / "labels" / "Record 01" / "Camera 1"
    paths = sorted(folder.glob("*_bin.png"))[:2]
    assert len(paths) == 2
    labels = []
    for p in paths:
        train = torch.from_numpy(ids_to_train(decode_label_ids(p)).astype(np.int64))[1700:]  # rows the official code uses
        half = torch.nn.functional.interpolate(train[None, None].float(), size=(505, 1692), mode="nearest")
        labels.append(half[0, 0, :496, :1488].long())  # x 0.5, then the ERFNet training crop 496 x 1488
    label = torch.stack(labels)
    n = 37
    counts = torch.stack([torch.bincount(lab.flatten(), minlength=n) for lab in label]).double()
    big = counts >= 3000  # classes covering >= 47 feature pixels at 1/8
    assert big[:, 1:36].any()  # genuine lane-mark classes, not only void / merged noise
    for order in ("feature", "label"):
        aoi = aoi_maps(label, n, (62, 186), kernel=5, kernel_unit=order)
        mass = aoi.sum((-1, -2)).double()
        assert torch.all(aoi >= 0) and torch.all(aoi.sum(1) <= 1 + 1e-5)
        # smoothing keeps each class's area: AOI mass x 64 ~ its pixel count at input resolution
        ratio = mass[big] * 64 / counts[big]
        assert torch.all((ratio > 0.8) & (ratio < 1.2)), (order, ratio)
        assert torch.all(mass[counts == 0] == 0)  # classes absent from the crop have no AOI
    # the IntRA term on these labels at both distillation points, student and teacher of other widths
    method = build_method("intra", ToySegModel(n, width=4), ToySegModel(n, width=8), n)
    for size in ((124, 372), (62, 186)):
        fs = torch.randn(2, 16, *size, requires_grad=True)
        ft = torch.randn(2, 48, *size).relu()
        loss = method.intra_loss(fs, ft, label)
        assert torch.isfinite(loss) and loss > 0
        loss.backward()
        assert torch.isfinite(fs.grad).all() and fs.grad.abs().sum() > 0


# ---------------------------------------------------------------- unit cases by value (mutation testing, issue 17)
def test_one_hot_by_hand():
    # classes 0..2; 3 (= n) and 255 are outside the table: all-zero columns
    label = torch.tensor([[[0, 2, 255, 3], [1, 1, 0, 2]]])
    expected = torch.tensor([[[1, 0, 0, 0], [0, 0, 1, 0]],
                             [[0, 0, 0, 0], [1, 1, 0, 0]],
                             [[0, 1, 0, 0], [0, 0, 0, 1]]], dtype=torch.float32)[None]
    oh = one_hot(label, 3)
    assert oh.dtype == torch.float32 and torch.equal(oh, expected)


@pytest.mark.parametrize("pad", ["reflect", "zeros", "valid"])
@pytest.mark.parametrize("batch", [1, 2])
def test_box_filter_keeps_the_shape(pad, batch):
    x = torch.rand(batch, 3, 5, 7)
    assert box_filter(x, 3, pad).shape == x.shape
    assert torch.equal(box_filter(x, 1, pad), x)  # kernel 1: the identity


def test_box_filter_refuses_a_kernel_reflect_padding_cannot_serve():
    x = torch.rand(1, 2, 3, 4)
    # kernel 5 (half-width 2) still reflects inside 3 rows: cv2.blur's value
    ref = np.stack([cv2.blur(c, (5, 5)) for c in x[0].numpy()])
    np.testing.assert_allclose(box_filter(x, 5)[0].numpy(), ref, atol=1e-6)
    with pytest.raises(ValueError, match="AOI kernel 6 too large for a \\(3, 4\\) map"):
        box_filter(x, 6)  # half-width 3 = the 3 rows: no reflection (cv2's BORDER_REFLECT_101 needs > 3 rows)


def _cv2_aoi(label: np.ndarray, n: int, size, kernel: int, kernel_unit: str, downsample: str, pad: str):
    """The AOI pipeline with OpenCV, one class map at a time: box filter (cv2.blur / cv2.boxFilter) at label or
    feature resolution, resize by cv2.resize (INTER_AREA / INTER_NEAREST / INTER_LINEAR; an integer factor here)."""
    h, w = size
    inter = {"area": cv2.INTER_AREA, "nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR}[downsample]

    def blur(x):
        if pad == "valid":
            ones = np.ones_like(x)
            count = cv2.boxFilter(ones, -1, (kernel, kernel), normalize=False, borderType=cv2.BORDER_CONSTANT)
            return cv2.boxFilter(x, -1, (kernel, kernel), normalize=False, borderType=cv2.BORDER_CONSTANT) / count
        border = cv2.BORDER_REFLECT_101 if pad == "reflect" else cv2.BORDER_CONSTANT
        return cv2.blur(x, (kernel, kernel), borderType=border)

    out = np.zeros((label.shape[0], n, h, w), np.float32)
    for b in range(label.shape[0]):
        for j in range(n):
            x = (label[b] == j).astype(np.float32)
            if kernel_unit == "label":
                out[b, j] = cv2.resize(blur(x), (w, h), interpolation=inter)
            else:
                out[b, j] = blur(cv2.resize(x, (w, h), interpolation=inter))
    return out


def test_class_fractions_by_hand():
    # a 4 x 4 label into 2 x 2 cells of 2 x 2 pixels: the fraction of each cell's pixels in each class;
    # 255 and 3 (= n) belong to no class
    label = torch.tensor([[[0, 0, 1, 2], [0, 255, 1, 1], [3, 3, 2, 2], [0, 1, 2, 2]]])
    expected = torch.tensor([[[0.75, 0.0], [0.25, 0.0]], [[0.0, 0.75], [0.25, 0.0]], [[0.0, 0.25], [0.0, 1.0]]])
    assert torch.equal(class_fractions(label, 3, (2, 2)), expected[None])


@pytest.mark.parametrize("shape,size", [((2, 64, 96), (16, 24)), ((3, 248, 744), (31, 93)), ((2, 128, 416), (32, 104)),
                                        ((2, 60, 90), (10, 15)), ((2, 61, 90), (10, 15)), ((1, 40, 40), (40, 40))])
def test_class_fractions_equal_area_pooling_of_the_one_hot(shape, size):
    """The counted path equals adaptive average pooling of the full one-hot: bit for bit at power-of-two cell
    areas (strides 4 and 8 of the distilled taps), within one float32 rounding at other divisible strides (6 x 6),
    and by the pooling itself where the grid does not divide the label (61 rows into 10)."""
    from intrakd.distill._ops import downsample_mass

    label = torch.randint(0, 7, shape, generator=torch.Generator().manual_seed(sum(shape)))
    label[label == 6] = 255
    ref = downsample_mass(one_hot(label, 5), size)
    got = class_fractions(label, 5, size)
    area = (shape[1] // size[0]) * (shape[2] // size[1])
    if shape[1] % size[0] == 0 and shape[2] % size[1] == 0 and area & (area - 1):
        np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=2e-7, atol=0)
    else:
        assert torch.equal(got, ref)


@pytest.mark.parametrize("pad", ["reflect", "zeros", "valid"])
@pytest.mark.parametrize("downsample", ["area", "nearest", "bilinear"])
@pytest.mark.parametrize("kernel_unit", ["feature", "label"])
def test_aoi_maps_match_opencv_for_every_switch(kernel_unit, downsample, pad):
    rng = np.random.default_rng(3)
    label = rng.integers(0, 4, size=(2, 8, 12))  # 3 = n: no class, like 255
    label[0, :2, :3] = 255
    ours = aoi_maps(torch.from_numpy(label), 3, (4, 6), kernel=3, kernel_unit=kernel_unit, downsample=downsample,
                    pad=pad)
    ref = _cv2_aoi(label, 3, (4, 6), 3, kernel_unit, downsample, pad)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-6)
    # the caller's one-hot (built once for every tap) gives the same maps
    given = aoi_maps(torch.from_numpy(label), 3, (4, 6), 3, kernel_unit, downsample, pad,
                     onehot=one_hot(torch.from_numpy(label), 3))
    np.testing.assert_allclose(given.numpy(), ref, atol=1e-6)
    with pytest.raises(ValueError, match="AOI pad must be one of"):
        aoi_maps(torch.from_numpy(label), 3, (4, 6), kernel=3, kernel_unit=kernel_unit, downsample=downsample,
                 pad="edge")


def test_aoi_maps_defaults_are_the_paper_reading():
    # kernel 5 counted in feature pixels, area downsampling, reflect padding (module docstring, option 3)
    label = np.random.default_rng(4).integers(0, 3, size=(1, 16, 24))
    np.testing.assert_allclose(aoi_maps(torch.from_numpy(label), 3, (8, 12)).numpy(),
                               _cv2_aoi(label, 3, (8, 12), 5, "feature", "area", "reflect"), atol=1e-6)


def test_moments_of_a_class_lighter_than_one_feature_pixel():
    # AOI masses 0.5 (class 0: two cells of 0.25) and 0.3 (class 1, one cell): the mass normaliser divides by
    # them, not by a floor of 1 feature pixel; class 2 has no mass and gets exact zeros
    feat = torch.tensor([[[[1.0, 3.0, 2.0], [5.0, 4.0, 0.0]]]])  # 1 x 1 x 2 x 3
    aoi = torch.zeros(1, 3, 2, 3)
    aoi[0, 0, 0, 0] = aoi[0, 0, 0, 1] = 0.25
    aoi[0, 1, 1, 0] = 0.3
    for second, third in (("variance", "skewness"), ("std", "central")):
        mom, mass = moment_pool(feat, aoi, second=second, third=third)
        np.testing.assert_allclose(mass[0].numpy(), [0.5, 0.3, 0.0], atol=1e-7)
        np.testing.assert_allclose(mom.double().numpy(), _loop_moments(feat, aoi, "mass", second=second, third=third),
                                   atol=1e-6)
    # by hand: class 0 = {1, 3} equally weighted: mean 2, variance 1, third central moment 0; class 1 = {5}
    mom, _ = moment_pool(feat, aoi)
    np.testing.assert_allclose(mom[0, :, :, 0].numpy(), [[2, 5, 0], [1, 0, 0], [0, 0, 0]], atol=1e-6)


def test_moment_pool_keeps_float64_inputs_and_leaves_them_untouched():
    feat, aoi = _random_case(4)
    feat64 = feat.double()
    before = feat64.clone()
    with torch.no_grad():
        mom, _ = moment_pool(feat64, aoi)
    assert mom.dtype == torch.float64 and torch.equal(feat64, before)  # no in-place update of the caller's tensor
    np.testing.assert_allclose(mom.numpy(), _loop_moments(feat64, aoi, "mass"), rtol=1e-10, atol=1e-10)
    mom32, _ = moment_pool(feat, aoi)
    assert mom32.dtype == torch.float32


def test_moment_pool_centres_each_channel_against_cancellation():
    # channel offsets of +-1e4 around unit-variance data: E[F^2] ~ 1e8, so the algebraic central moments lose
    # ~1e-8 of it unless each channel is centred first; the two-pass loop form is exact
    g = torch.Generator().manual_seed(5)
    feat = torch.randn(1, 2, 4, 8, generator=g, dtype=torch.float64)
    feat[0, 0] += 1e4
    feat[0, 1] -= 1e4
    label = torch.tensor([[0] * 8, [0] * 8, [1] * 8, [1] * 8])[None]
    aoi = aoi_maps(label, 2, (4, 8), kernel=1)
    mom, _ = moment_pool(feat, aoi)
    np.testing.assert_allclose(mom.numpy(), _loop_moments(feat, aoi, "mass"), rtol=1e-9, atol=1e-9)


def _torch_two_pass(feat, aoi, eps=1e-6, normaliser="mass"):
    """Mean, variance and skewness per class and channel by the two-pass form, autograd through plain ops."""
    f = feat.double().flatten(2)[:, None]  # B x 1 x c x P
    m = aoi.double().flatten(2)[:, :, None]  # B x n x 1 x P
    z = m.sum(-1) if normaliser == "mass" else float(f.shape[-1])
    mu = (m * f).sum(-1) / z
    d = f - mu[..., None]
    var = (m * d**2).sum(-1) / z
    third = (m * d**3).sum(-1) / z
    return torch.stack([mu, var, third / (var + eps) ** 1.5], 1)


@pytest.mark.parametrize("normaliser", ["mass", "constant"])
@pytest.mark.parametrize("moments", [(1, 2, 3), (1,), (1, 2), (3,), (2, 3)])
def test_moment_pool_gradient_matches_the_two_pass_form(moments, normaliser):
    """moment_pool's closed-form backward (_RawMoments) against autograd through the two-pass form, for every
    highest order it builds (1, 2, 3) and for orders whose lower moments only enter through the algebra."""
    feat, aoi = _random_case(6)
    aoi = aoi[:, :3]  # classes present in both images
    weights = torch.randn(2, 3, 3, 5, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    pick = [k - 1 for k in moments]
    grads = []
    for fn in (lambda x, a: moment_pool(x, a, moments, normaliser)[0],
               lambda x, a: _torch_two_pass(x, a, normaliser=normaliser)[:, pick]):
        for dtype in (torch.float32, torch.float64):
            x = feat.to(dtype).detach().clone().requires_grad_(True)
            (fn(x, aoi).double() * weights[:, pick]).sum().backward()
            grads.append(x.grad.double())
    np.testing.assert_allclose(grads[0].numpy(), grads[2].numpy(), rtol=1e-4, atol=1e-4)  # float32 input
    np.testing.assert_allclose(grads[1].numpy(), grads[3].numpy(), rtol=1e-8, atol=1e-8)  # float64 input


def test_float32_precision_moments_are_not_autocast():
    feat, aoi = _random_case(3)
    plain, _ = moment_pool(feat, aoi, precision="float32")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast, _ = moment_pool(feat, aoi, precision="float32")
    assert torch.equal(cast, plain)  # bfloat16 matmuls would be ~1e-2 off


@pytest.mark.parametrize("feat_shape,aoi_shape", [((1, 4, 4), (1, 2, 4, 4)), ((1, 3, 4, 4), (1, 4, 4)),
                                                  ((1, 3, 4, 4), (2, 2, 4, 4)), ((1, 3, 4, 4), (1, 2, 4, 5))])
def test_moment_pool_refuses_mismatched_shapes(feat_shape, aoi_shape):
    with pytest.raises(ValueError, match="same B, h, w"):
        moment_pool(torch.rand(feat_shape), torch.rand(aoi_shape))


def test_affinity_graph_by_hand_keeps_float64_and_promotes_half_precision():
    # nodes (3, 4), (0.3, 0.4) and (0, 0) in one order: cosines 1 between the first two, 0 with the zero node
    nodes = torch.tensor([[[[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]]]], dtype=torch.float64)
    expected = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=np.float64)
    g = affinity_graph(nodes)
    assert g.dtype == torch.float64 and g.shape == (1, 1, 3, 3)
    np.testing.assert_allclose(g[0, 0].numpy(), expected, atol=1e-12)
    g16 = affinity_graph(nodes.to(torch.bfloat16))
    assert g16.dtype == torch.float32
    np.testing.assert_allclose(g16[0, 0].numpy(), expected, atol=1e-6)
    # two orders, (B, K, n, c) = (1, 2, 2, 1): "concat" joins node j's orders into one vector
    two = torch.tensor([[[[1.0], [2.0]], [[0.0], [-2.0]]]])
    np.testing.assert_allclose(affinity_graph(two)[0].numpy(), [[[1, 1], [1, 1]], [[0, 0], [0, 1]]], atol=1e-6)
    cos = (1 * 2 + 0 * -2) / (1 * math.sqrt(8))
    np.testing.assert_allclose(affinity_graph(two, "concat")[0, 0].numpy(), [[1, cos], [cos, 1]], atol=1e-6)
    # below F.normalize's 1e-8 norm floor a node counts as zero (rounding noise of an empty region is not a
    # direction): a node of norm 1e-10 has affinity 1e-10 / 1e-8 squared = 1e-4 with itself
    tiny = torch.tensor([[[[1e-10, 0.0]]]], dtype=torch.float64)
    assert affinity_graph(tiny)[0, 0, 0, 0].item() == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="graph must be"):
        affinity_graph(two, "mean")


def test_graph_loss_denominators_by_hand():
    # n = 3, classes 0 and 1 present: pairs (0,0), (0,1), (1,0), (1,1) (off-diagonal: (0,1), (1,0))
    gs = torch.zeros(2, 2, 3, 3)
    gt = torch.zeros(2, 2, 3, 3)
    gs[0, 0, 0, 0] = 1.0  # image 0, graph 0: a diagonal entry off by 1
    gs[0, 1, 0, 1] = 2.0  # image 0, graph 1: an off-diagonal entry off by 2
    gs[:, :, 2] = 5.0  # rows of the absent class 2: never counted
    gs[1, 0, 1, 0] = 3.0  # image 1, graph 0: off by 3
    present = torch.tensor([[True, True, False], [True, True, False]])
    # per image: sum over graphs of squared differences / pair count; then the batch mean
    assert graph_loss(gs, gt, present).item() == pytest.approx(((1 / 4 + 4 / 4) + 9 / 4) / 2)
    assert graph_loss(gs, gt, present, diagonal=False).item() == pytest.approx(((0 + 4 / 2) + 9 / 2) / 2)
    assert graph_loss(gs, gt, present, reduction="all").item() == pytest.approx(((1 / 9 + 4 / 9) + 9 / 9) / 2)
    assert graph_loss(gs, gt, present, diagonal=False, reduction="all").item() == pytest.approx(
        ((0 + 4 / 6) + 9 / 6) / 2)
    # one present class: its one pair counts once; no present class: zero loss (not 0 / 0)
    one = torch.tensor([[True, False, False], [False, False, False]])
    assert graph_loss(gs, gt, one).item() == pytest.approx((1 / 1 + 0) / 2)
    with pytest.raises(ValueError, match="reduction must be"):
        graph_loss(gs, gt, present, reduction="sum")


def test_intrakd_options_are_checked_when_the_method_is_built():
    s, t = ToySegModel(3, width=2), ToySegModel(3, width=2)
    for key, bad in [("kernel_unit", "pixel"), ("downsample", "bicubic"), ("pad", "edge"), ("normaliser", "area"),
                     ("second", "var"), ("third", "kurtosis"), ("graph", "mean"), ("reduction", "sum"),
                     ("precision", "float16"), ("at_mode", "both"), ("moments", ()), ("moments", (0, 1)),
                     ("kernel", 0), ("kernel", 2.5), ("kernel", "5")]:
        with pytest.raises(ValueError, match=f"option {key}="):
            build_method("intrakd", s, t, 3, **{key: bad})
    for name in ("intrakd", "intra"):  # every alternative is accepted; "intra" has no AT / KD options
        for key, good in [("normaliser", "constant"), ("second", "std"), ("third", "central"), ("graph", "concat"),
                          ("reduction", "all"), ("precision", "float32"), ("pad", "zeros"), ("kernel", 1),
                          ("moments", (1,)), ("moments", (2,)), ("moments", (3,)), ("moments", [3, 1])]:
            assert build_method(name, s, t, 3, **{key: good}).options[key] == (tuple(good) if key == "moments" else good)
    assert build_method("intrakd", s, t, 3, at_mode="paper").options["at_mode"] == "paper"


def _loop_intra(fs, ft, aoi_s, aoi_t, moments=(1, 2, 3), normaliser="mass", eps=1e-6, second="variance",
                third="skewness", graph="per_order", diagonal=True, reduction="present", presence_tau=1e-3):
    """The IntRA term by loops in numpy: two-pass moments, cosines with F.normalize's 1e-8 norm floor, squared
    differences over the pairs of classes present on both sides."""
    ms = _loop_moments(fs, aoi_s, normaliser, eps, second, third)[:, [k - 1 for k in moments]]
    mt = _loop_moments(ft, aoi_t, normaliser, eps, second, third)[:, [k - 1 for k in moments]]
    b, k, n, _ = ms.shape
    if graph == "concat":
        ms = ms.transpose(0, 2, 1, 3).reshape(b, 1, n, -1)
        mt = mt.transpose(0, 2, 1, 3).reshape(b, 1, n, -1)

    def cosine(u, v):
        return u @ v / (max(np.linalg.norm(u), 1e-8) * max(np.linalg.norm(v), 1e-8))

    present = (aoi_s.double().sum((-1, -2)).numpy() > presence_tau) & (aoi_t.double().sum((-1, -2)).numpy() > presence_tau)
    total = 0.0
    for i in range(b):
        for g in range(ms.shape[1]):
            pairs = [(p, q) for p in range(n) for q in range(n)
                     if present[i, p] and present[i, q] and (diagonal or p != q)]
            sq = sum((cosine(ms[i, g, p], ms[i, g, q]) - cosine(mt[i, g, p], mt[i, g, q])) ** 2 for p, q in pairs)
            denom = max(len(pairs), 1) if reduction == "present" else (n * n if diagonal else n * (n - 1))
            total += sq / denom
    return total / b


def _intra_case(seed=8):
    """float64 features (student 3, teacher 5 channels) at 4 x 6 and a 9 x 13 label of 3 classes + ignore;
    class 2 is absent from image 1 and covers 4 feature pixels of image 0."""
    g = torch.Generator().manual_seed(seed)
    fs = torch.randn(2, 3, 4, 6, generator=g, dtype=torch.float64)
    ft = torch.randn(2, 5, 4, 6, generator=g, dtype=torch.float64).abs()
    label = torch.randint(0, 2, (2, 9, 13), generator=g)  # not a multiple of 4 x 6: bilinear is not area
    label[0, 2:6, 2:6] = 2
    label[:, 7:, :3] = 255
    return fs, ft, label


AOI_KEYS = ("kernel", "kernel_unit", "downsample", "pad")


@pytest.mark.parametrize("opts", [
    {}, {"moments": (2, 3)}, {"normaliser": "constant"}, {"second": "std"}, {"third": "central"}, {"eps": 0.5},
    {"graph": "concat"}, {"diagonal": False}, {"reduction": "all"}, {"presence_tau": 7.0}, {"kernel": 1},
    {"kernel_unit": "label"}, {"downsample": "nearest"}, {"downsample": "bilinear"}, {"pad": "zeros"},
    {"pad": "valid"},
])
def test_intra_loss_equals_the_loop_form_and_each_option_changes_it(opts):
    fs, ft, label = _intra_case()
    method = build_method("intra", ToySegModel(3, width=2), ToySegModel(3, width=2), 3, **opts)
    o = method.options
    aoi = aoi_maps(label, 3, (4, 6), *(o[k] for k in AOI_KEYS))  # aoi_maps: the OpenCV-checked AOIs above
    ref = _loop_intra(fs, ft, aoi, aoi, **{k: v for k, v in o.items() if k not in AOI_KEYS + ("taps", "teacher_taps", "precision")})
    loss = method.intra_loss(fs, ft, label)
    assert loss.dtype == torch.float64 and loss.item() == pytest.approx(ref, rel=1e-9, abs=1e-12)
    default = build_method("intra", ToySegModel(3, width=2), ToySegModel(3, width=2), 3).intra_loss(fs, ft, label)
    assert (loss.item() != default.item()) == bool(opts)


def test_float32_precision_option_reaches_the_moments():
    # the small-spread case that float64 resolves and float32 reports as unresolved (zero moments; tests above)
    feat, _, _ = _near_constant_case(0.1)
    fs = feat.double()
    ft = torch.randn(fs.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    label = torch.tensor([[0] * 8 + [1] * 8] * 4)[None]
    losses = {p: build_method("intra", ToySegModel(2, width=2), ToySegModel(2, width=2), 2, kernel=1, precision=p)
              .intra_loss(fs, ft, label).item() for p in ("float64", "float32")}
    aoi = aoi_maps(label, 2, (4, 16), kernel=1)
    assert losses["float64"] == pytest.approx(_loop_intra(fs, ft, aoi, aoi), rel=1e-6)
    assert abs(losses["float32"] - losses["float64"]) > 1e-3


def test_a_class_counts_only_where_both_sides_pass_the_presence_threshold():
    # class 2 is one aligned 2 x 2 block of a 16 x 16 label: AOI mass exactly 1.0 at 8 x 8 (kernel 1, area),
    # 0.25 at 4 x 4. Student at 8 x 8, teacher at 4 x 4 (its own AOIs), tau 0.5: present for the student only,
    # so the class is left out; the same sizes with tau = its mass 1.0: not above the threshold, left out too
    label = torch.zeros(1, 16, 16, dtype=torch.long)
    label[0, :, 8:] = 1
    label[0, 4:6, 2:4] = 2
    g = torch.Generator().manual_seed(9)
    fs = torch.randn(1, 3, 8, 8, generator=g, dtype=torch.float64)
    ft = torch.randn(1, 4, 4, 4, generator=g, dtype=torch.float64)
    ft8 = torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64)
    aoi8, aoi4 = aoi_maps(label, 3, (8, 8), kernel=1), aoi_maps(label, 3, (4, 4), kernel=1)
    assert aoi8[0, 2].sum().item() == 1.0 and aoi4[0, 2].sum().item() == 0.25
    # at the label's own 16 x 16 size the block has mass 4.0: with tau = 1.0 the side at 8 x 8 (exactly 1.0)
    # decides alone, student or teacher
    fs16 = torch.randn(1, 3, 16, 16, generator=g, dtype=torch.float64)
    ft16 = torch.randn(1, 4, 16, 16, generator=g, dtype=torch.float64)
    aoi16 = aoi_maps(label, 3, (16, 16), kernel=1)
    for student, aoi_s, teacher, aoi_t, tau in ((fs, aoi8, ft, aoi4, 0.5), (fs, aoi8, ft8, aoi8, 1.0),
                                                (fs, aoi8, ft16, aoi16, 1.0), (fs16, aoi16, ft8, aoi8, 1.0)):
        method = build_method("intra", ToySegModel(3, width=2), ToySegModel(3, width=2), 3, kernel=1,
                              presence_tau=tau)
        loss = method.intra_loss(student, teacher, label).item()
        assert loss == pytest.approx(_loop_intra(student, teacher, aoi_s, aoi_t, presence_tau=tau), rel=1e-9)
        with_class_2 = _loop_intra(student, teacher, aoi_s, aoi_t, presence_tau=0.1)
        assert abs(loss - with_class_2) > 1e-3


def _fake_outputs(seed, channels):
    """Tap maps of ToySegModel's "mid" (b3, 8 x 8) and "high" (b5, 4 x 4) taps and 3-class 32 x 32 logits."""
    g = torch.Generator().manual_seed(seed)
    return {"feats": {"b3": torch.randn(1, channels, 8, 8, generator=g), "b5": torch.randn(1, channels, 4, 4, generator=g)},
            "logits": torch.randn(1, 3, 32, 32, generator=g)}


def test_intrakd_forward_weights_and_sums_each_term_over_the_taps():
    from intrakd.distill._ops import pixel_kl
    from intrakd.distill.at import at_loss

    s_out, t_out = _fake_outputs(10, 2), _fake_outputs(11, 4)
    label = torch.randint(0, 3, (1, 32, 32), generator=torch.Generator().manual_seed(12))
    method = build_method("intrakd", ToySegModel(3, width=2), ToySegModel(3, width=4), 3,
                          weights={"intra": 2.0, "at": 3.0, "kd": 5.0}, at_mode="paper", kd_temperature=2.0)
    out = method(s_out, t_out, {"label": label})
    taps = ("b3", "b5")
    intra = sum(method.intra_loss(s_out["feats"][t], t_out["feats"][t], label) for t in taps)
    at = sum(at_loss(s_out["feats"][t], t_out["feats"][t], 2.0, "paper") for t in taps)
    assert set(out) == {"intra", "at", "kd"}
    assert out["intra"].item() == pytest.approx(2.0 * intra.item(), rel=1e-6)
    assert out["at"].item() == pytest.approx(3.0 * at.item(), rel=1e-6)
    assert out["kd"].item() == pytest.approx(5.0 * pixel_kl(s_out["logits"], t_out["logits"], 2.0).item(), rel=1e-6)
    assert out["kd"].item() != pytest.approx(5.0 * pixel_kl(s_out["logits"], t_out["logits"], 1.0).item(), rel=1e-3)
    assert at.item() != pytest.approx(sum(at_loss(s_out["feats"][t], t_out["feats"][t], 2.0, "code")
                                          for t in taps).item(), rel=1e-3)
    for off in ("with_at", "with_kd"):
        assert set(build_method("intrakd", ToySegModel(3, width=2), ToySegModel(3, width=4), 3, **{off: False})(
            s_out, t_out, {"label": label})) == {"intra", "at", "kd"} - {off[5:]}


@pytest.mark.parametrize("opts,full_size_calls,aoi_calls", [
    ({}, 0, 2), ({"kernel_unit": "label"}, 1, 2), ({"kernel_unit": "label", "downsample": "bilinear"}, 1, 2),
    ({"downsample": "bilinear"}, 1, 2), ({"downsample": "nearest"}, 0, 2), ({"teacher_taps": ("high", "mid")}, 0, 4)])
def test_the_full_resolution_one_hot_is_built_once_per_batch_and_only_when_needed(monkeypatch, opts, full_size_calls,
                                                                                  aoi_calls):
    """One one-hot of the label per batch for every tap (none when the AOIs come from a resized label or from class
    fractions counted at the feature size: the default, area at feature resolution), one AOI set per tap when student and teacher maps have the same size (two when they differ)."""
    import intrakd.distill.intrakd as module

    shapes, aois = [], []

    def counting(label, n):
        shapes.append(tuple(label.shape))
        return one_hot(label, n)

    def counting_aoi(*args):
        aois.append(args[2])
        return aoi_maps(*args)

    monkeypatch.setattr(module, "one_hot", counting)
    monkeypatch.setattr(module, "aoi_maps", counting_aoi)
    s_out, t_out = _fake_outputs(13, 2), _fake_outputs(14, 2)
    label = torch.randint(0, 3, (1, 32, 32), generator=torch.Generator().manual_seed(15))
    method = build_method("intra", ToySegModel(3, width=2), ToySegModel(3, width=2), 3, **opts)
    method(s_out, t_out, {"label": label})
    assert shapes.count((1, 32, 32)) == full_size_calls  # two taps share it
    assert len(aois) == aoi_calls


def test_matched_size_counts_graph_entries_attention_maps_and_logits():
    s_out, t_out = _fake_outputs(16, 2), _fake_outputs(17, 2)
    s, t = ToySegModel(3, width=2), ToySegModel(3, width=2)
    # 2 taps x 3 graphs (orders) x 3^2 + AT maps 8*8 + 4*4 + KD logits 3 x 32 x 32
    assert build_method("intrakd", s, t, 3).matched_size(s_out, t_out) == 2 * 3 * 9 + 64 + 16 + 3 * 32 * 32
    assert build_method("intrakd", s, t, 3, graph="concat", with_kd=False).matched_size(s_out, t_out) == 2 * 9 + 80
    assert build_method("intra", s, t, 3, moments=(1, 2)).matched_size(s_out, t_out) == 2 * 2 * 9
