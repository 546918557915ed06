"""IntRA-KD: AOI generation (OpenCV oracle), moment pooling (closed form and loop form), graph and loss."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from intrakd.distill import build_method
from intrakd.distill.intrakd import affinity_graph, aoi_maps, box_filter, graph_loss, moment_pool, one_hot
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


def test_float64_default_survives_a_constant_region_where_float32_cancels():
    # channel 0 is constant (7) on class 0 and large elsewhere: the true variance and skewness there are 0,
    # but E[F^3] - 3 mu E[F^2] + 2 mu^3 cancels; divided by (var + eps)^1.5 = 1e-9, float32's rounding explodes
    label = torch.tensor([[0] * 8 + [1] * 8] * 4)[None]
    feat = torch.full((1, 2, 4, 16), 7.0)
    feat[0, 0, :, 8:] = torch.linspace(100, 400, 32).view(4, 8)
    feat[0, 1] = torch.linspace(-1, 1, 64).view(4, 16)
    aoi = aoi_maps(label, 2, (4, 16), kernel=1)
    ref = _loop_moments(feat, aoi, "mass")
    assert ref[0, 2, 0, 0] == 0
    f64 = moment_pool(feat, aoi)[0].double().numpy()
    assert abs(f64[0, 2, 0, 0]) < 0.05 and abs(f64[0, 1, 0, 0]) < 1e-9
    np.testing.assert_allclose(f64[0, :, 1], ref[0, :, 1], rtol=1e-6, atol=1e-6)  # float32 output
    f32 = moment_pool(feat, aoi, precision="float32")[0].double().numpy()
    assert abs(f32[0, 2, 0, 0]) > 1.0  # why float64 is the default


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
