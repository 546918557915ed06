"""KD, AT and FSP against torchdistill 1.1.5 (the oracle), with the documented differences pinned;
hand-computed cases for the baselines torchdistill lacks (SKD pair-wise, IRG, SAD, mimicking)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from intrakd.distill import build_method
from intrakd.distill._ops import pixel_kl
from intrakd.distill.at import at_loss
from intrakd.distill.irg import edge_matrix, transformation
from intrakd.distill.psn import fsp_distance, fsp_matrix
from intrakd.distill.sad import sad_map
from intrakd.distill.skd import pairwise_loss, pairwise_similarity, pool_nodes
from intrakd.distill.toy import ToySegModel

mid_level = pytest.importorskip("torchdistill.losses.mid_level")
torch.set_num_threads(1)


def _io(**maps):
    return {k: {"output": v} for k, v in maps.items()}


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_kd_matches_torchdistill_up_to_pixel_mean_and_t2(temperature):
    zs, zt = torch.randn(2, 5, 6, 7), torch.randn(2, 5, 6, 7)
    oracle = mid_level.KDLoss("s", "output", "t", "output", temperature=temperature, alpha=0.0)
    ref = oracle(_io(s=zs), _io(t=zt))
    # pinned difference: torchdistill = batchmean (sum over pixels / B) and no T^2 when alpha = 0
    ours = pixel_kl(zs, zt, temperature)
    assert ours.item() == pytest.approx(ref.item() * temperature**2 / (6 * 7), rel=1e-5)


def test_kd_valid_only_mask():
    zs, zt = torch.randn(1, 3, 2, 2), torch.randn(1, 3, 2, 2)
    mask = torch.tensor([[[True, False], [False, False]]])
    kl = F.kl_div(F.log_softmax(zs, 1), F.log_softmax(zt, 1), reduction="none", log_target=True).sum(1)
    assert pixel_kl(zs, zt, 1.0, mask).item() == pytest.approx(kl[0, 0, 0].item(), rel=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_kd_gradient_matches_autograd_through_torchdistill(temperature):
    """pixel_kl's closed-form backward, T (p_s - p_t) / pixels, against autograd through torchdistill's KDLoss
    (scaled by the same pinned factor), float64; the teacher logits get no gradient."""
    g = torch.Generator().manual_seed(3)
    zs = torch.randn(2, 5, 6, 7, generator=g, dtype=torch.float64) * 3
    zt = torch.randn(2, 5, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    oracle = mid_level.KDLoss("s", "output", "t", "output", temperature=temperature, alpha=0.0)
    a, b = zs.clone().requires_grad_(True), zs.clone().requires_grad_(True)
    (oracle(_io(s=a), _io(t=zt.detach())) * temperature**2 / (6 * 7)).backward()
    pixel_kl(b, zt, temperature).backward()
    np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert zt.grad is None


def test_kd_gradient_with_a_mask_and_under_autocast():
    # masked: only the counted pixels get a gradient, each 1 / (counted pixels) of d KL / d z_s (F.kl_div by autograd)
    g = torch.Generator().manual_seed(4)
    zs, zt = torch.randn(2, 4, 3, 5, generator=g, dtype=torch.float64), torch.randn(2, 4, 3, 5, generator=g, dtype=torch.float64)
    mask = torch.rand(2, 3, 5, generator=g) > 0.5
    a, b = zs.clone().requires_grad_(True), zs.clone().requires_grad_(True)
    kl = F.kl_div(F.log_softmax(a / 2, 1), F.log_softmax(zt / 2, 1), reduction="none", log_target=True).sum(1)
    ((kl * mask).sum() / mask.sum() * 4).backward()
    pixel_kl(b, zt, 2.0, mask).backward()
    np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert torch.all(b.grad[~mask[:, None].expand_as(b.grad)] == 0)
    # bf16 logits under CPU autocast: the loss in float32, the gradient back in bf16, equal to the float32 one's
    s16 = zs.to(torch.bfloat16).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = pixel_kl(s16, zt.float())
    loss.backward()
    s32 = s16.detach().float().requires_grad_(True)
    ref = pixel_kl(s32, zt.float())
    ref.backward()
    assert loss.dtype == torch.float32 and loss.item() == ref.item()
    assert s16.grad.dtype == torch.bfloat16 and torch.equal(s16.grad, s32.grad.to(torch.bfloat16))


def _kl_and_grad(zs, zt, temperature=1.0, mask=None):
    s = zs.clone().requires_grad_(True)
    loss = pixel_kl(s, zt, temperature, mask)
    loss.backward()
    return loss, s.grad


@pytest.mark.parametrize("width", [64, 48, 37])
def test_kd_in_chunks_of_rows_equals_the_whole_map(monkeypatch, width):
    """On a CPU the KL runs over chunks of rows; where a chunk's rows hold a multiple of 64 elements (widths 64 and
    48 here; 37 cannot) loss and gradient are the whole map's bit for bit, channels-last logits too; otherwise
    within float32 rounding. Chunks of one or a few rows, a mask and a temperature, against autograd."""
    from intrakd.distill import _ops

    g = torch.Generator().manual_seed(5)
    zs, zt = torch.randn(3, 6, 70, width, generator=g) * 3, torch.randn(3, 6, 70, width, generator=g) * 3
    mask = torch.rand(3, 70, width, generator=g) > 0.3
    monkeypatch.setattr(_ops, "KL_CHUNK", 1 << 30)
    assert _ops._kl_rows(zs) == 70
    whole = [_kl_and_grad(zs, zt), _kl_and_grad(zs, zt, 2.0, mask)]
    monkeypatch.setattr(_ops, "KL_CHUNK", 1)  # the smallest aligned chunk: 1 row at width 64, 4 at 48, 64 at 37
    assert _ops._kl_rows(zs) == {64: 1, 48: 4, 37: 64}[width]
    monkeypatch.setattr(_ops, "KL_CHUNK", 3 * 6 * width * 3)  # a few rows a chunk, the last chunk shorter
    rows = _ops._kl_rows(zs)
    assert 1 < rows < 70 and 70 % rows
    chunked = [_kl_and_grad(zs, zt), _kl_and_grad(zs, zt, 2.0, mask)]
    for (lw, gw), (lc, gc) in zip(whole, chunked):
        if width != 37:
            assert lw.item() == lc.item() and torch.equal(gw, gc)
        torch.testing.assert_close(gc, gw, rtol=1e-5, atol=1e-9)
        assert lc.item() == pytest.approx(lw.item(), rel=1e-6)
    a = zs.clone().requires_grad_(True)  # the masked, tempered loss and gradient against autograd
    kl = F.kl_div(F.log_softmax(a / 2, 1), F.log_softmax(zt / 2, 1), reduction="none", log_target=True).sum(1)
    ((kl * mask).sum() / mask.sum() * 4).backward()
    torch.testing.assert_close(chunked[1][1], a.grad, rtol=1e-4, atol=1e-8)
    # channels-last bf16 logits: the contiguous bf16 result, bit for bit
    cl = _kl_and_grad(zs.to(torch.bfloat16).contiguous(memory_format=torch.channels_last), zt.to(torch.bfloat16))
    flat = _kl_and_grad(zs.to(torch.bfloat16), zt.to(torch.bfloat16))
    assert cl[0].item() == flat[0].item() and torch.equal(cl[1], flat[1])
    loss = pixel_kl(zs.clone().requires_grad_(True) * 1.0, zt)  # the backward scales its saved map in place:
    loss.backward(retain_graph=True)  # a second backward is refused, never silently wrong
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.parametrize("mode", ["code", "paper"])
def test_at_matches_torchdistill(mode):
    pairs = {"mid": {"student": {"path": "s1", "io": "output"}, "teacher": {"path": "t1", "io": "output"}, "weight": 1},
             "high": {"student": {"path": "s2", "io": "output"}, "teacher": {"path": "t2", "io": "output"}, "weight": 1}}
    s1, t1 = torch.randn(2, 4, 8, 8), torch.randn(2, 16, 8, 8)
    s2, t2 = torch.randn(2, 6, 4, 4), torch.randn(2, 32, 4, 4)
    ref = mid_level.ATLoss(pairs, mode=mode)(_io(s1=s1, s2=s2), _io(t1=t1, t2=t2))
    ours = at_loss(s1, t1, 2.0, mode) + at_loss(s2, t2, 2.0, mode)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)


def test_at_method_weight_and_resize():
    student, teacher = ToySegModel(3, width=4), ToySegModel(3, width=8)
    m = build_method("at", student, teacher, 3, weights={"at": 2.0})
    x = torch.randn(2, 3, 32, 32)
    so, to = student(x), teacher(x)
    expected = 2.0 * (at_loss(so["feats"]["b3"], to["feats"]["b3"]) + at_loss(so["feats"]["b5"], to["feats"]["b5"]))
    assert m(so, to, {})["at"].item() == pytest.approx(expected.item(), rel=1e-6)
    # a teacher map of another size is resized to the student's before normalisation
    assert torch.isfinite(at_loss(torch.randn(2, 4, 8, 8), torch.randn(2, 7, 4, 4)))


def test_fsp_matches_torchdistill_and_pins_forms():
    pairs = {"p": {"student_first": {"path": "s1", "io": "output"}, "student_second": {"path": "s2", "io": "output"},
                   "teacher_first": {"path": "t1", "io": "output"}, "teacher_second": {"path": "t2", "io": "output"},
                   "weight": 1}}
    s1, s2 = torch.randn(3, 4, 8, 8), torch.randn(3, 6, 4, 4)
    t1, t2 = torch.randn(3, 4, 8, 8), torch.randn(3, 6, 4, 4)
    ref = mid_level.FSPLoss(pairs)(_io(s1=s1, s2=s2), _io(t1=t1, t2=t2))
    gs, gt = fsp_matrix(s1, s2, "max"), fsp_matrix(t1, t2, "max")
    assert gs.shape == (3, 4, 6)
    assert fsp_distance(gs, gt, "torchdistill").item() == pytest.approx(ref.item(), rel=1e-5)
    # the paper: batch mean of squared Frobenius norms; "mse" = that / (m n)
    frob = sum(torch.sum((gs[i] - gt[i]) ** 2) for i in range(3)) / 3
    assert fsp_distance(gs, gt, "paper").item() == pytest.approx(frob.item(), rel=1e-5)
    assert fsp_distance(gs, gt, "mse").item() == pytest.approx(frob.item() / 24, rel=1e-5)


def test_fsp_hand_case():
    f1 = torch.tensor([[[[1.0, 2.0]]]])  # 1 ch, 1 x 2
    f2 = torch.tensor([[[[3.0, 4.0]], [[0.0, 1.0]]]])  # 2 ch
    assert fsp_matrix(f1, f2).tolist() == [[[5.5, 1.0]]]  # (1*3 + 2*4) / 2, (0 + 2) / 2


def test_skd_pairwise_hand_case_and_pooling():
    f = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # two orthogonal position vectors
    assert pairwise_similarity(f)[0].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    # official pool scale 0.5: kernel = stride = floor(0.5 size), ceil mode -> a 2 x 2 to 3 x 3 node grid
    assert pool_nodes(torch.randn(1, 3, 62, 186), 0.5).shape[-2:] == (2, 2)
    assert pool_nodes(torch.randn(1, 3, 63, 187), 0.5).shape[-2:] == (3, 3)
    assert pool_nodes(torch.randn(1, 3, 5, 6), None).shape[-2:] == (5, 6)


def test_irg_edges_and_transformation_hand_case():
    x = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    e = edge_matrix(x)  # squared distances 9, 16, 25; / max 25
    expected = torch.tensor([[0, 9, 16], [9, 0, 25], [16, 25, 0]]) / 25
    assert torch.allclose(e, expected)
    f1 = torch.ones(2, 2, 4, 4)
    f1[1] *= 2
    f2 = torch.zeros(2, 4, 2, 2)  # channels averaged in pairs down to 2, spatial 4x4 pooled to 2x2
    lam = transformation(f1, f2)
    assert torch.allclose(lam, torch.tensor([8 / 32, 1.0]))


def test_sad_map_and_method_schedule():
    f = torch.zeros(1, 2, 1, 2)
    f[0, 0, 0, 1] = math.sqrt(math.log(3.0))  # sum_c F^2 = [0, ln 3] -> softmax [1/4, 3/4]
    assert torch.allclose(sad_map(f), torch.tensor([[0.25, 0.75]]))
    student = ToySegModel(3, width=4)
    m = build_method("sad", student, None, 3, total_steps=30, start_fraction=0.5)  # on from step 15
    out = student(torch.randn(2, 3, 32, 32))
    assert m.switch_step == 15
    assert m(out, None, {}, step=14, epoch=0)["sad"].item() == 0
    assert m(out, None, {}, step=15, epoch=0)["sad"].item() > 0
    assert build_method("sad", student, None, 3, total_steps=30, start_fraction=0).switch_step == 0
    assert build_method("sad", student, None, 3, start_fraction=0).switch_step == 0  # needs no total_steps
    never = build_method("sad", student, None, 3, total_steps=30, start_fraction=1)
    assert not never.active(29)  # the last step of the run (0-based) stays off


def test_mimic_with_identity_adaptor_is_plain_mse():
    student, teacher = ToySegModel(3, width=4), ToySegModel(3, width=4)
    m = build_method("mimic", student, teacher, 3, weights={"mimic": 1.0})
    with torch.no_grad():
        m.adaptors[0][0].weight.copy_(torch.eye(16)[:, :, None, None])
        m.adaptors[0][0].bias.zero_()
    x = torch.randn(2, 3, 32, 32)
    so, to = student(x), teacher(x)
    expected = F.mse_loss(so["feats"]["b5"], to["feats"]["b5"])
    assert m(so, to, {})["mimic"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_psn_adaptors_act_on_the_fsp_matrix_exactly_as_on_the_maps():
    # FSP(A1 F1, A2 F2) = A1 FSP(F1, F2) A2^T for bias-free 1x1 adaptors (avg pooling commutes with them)
    student, teacher = ToySegModel(3, width=4), ToySegModel(3, width=6)
    m = build_method("psn", student, teacher, 3, pool="avg", form="paper", normalise=False)
    assert m.s_names == ["b1", "b3", "b5"] and len(m.adaptors) == 3
    x = torch.randn(2, 3, 32, 32)
    so, to = student(x), teacher(x)
    direct = 0.0
    for i in range(2):
        a = m.adaptors[i](so["feats"][m.s_names[i]])
        b = m.adaptors[i + 1](so["feats"][m.s_names[i + 1]])
        gt = fsp_matrix(to["feats"][m.t_names[i]], to["feats"][m.t_names[i + 1]], "avg")
        direct = direct + fsp_distance(fsp_matrix(a, b, "avg"), gt, "paper")
    ours = m(so, to, {})["fsp"]
    assert ours.item() == pytest.approx(direct.item(), rel=1e-5)
    ours.backward()
    assert all(ad.weight.grad is not None for ad in m.adaptors)
    # default: scale-free, each matrix at unit Frobenius norm; a pair contributes at most 4
    normed = build_method("psn", student, teacher, 3, pool="avg")
    normed.load_state_dict(m.state_dict())
    val = normed(so, to, {})["fsp"]
    unit = 0.0
    for i in range(2):
        a = m.adaptors[i](so["feats"][m.s_names[i]])
        b = m.adaptors[i + 1](so["feats"][m.s_names[i + 1]])
        gs = fsp_matrix(a, b, "avg")
        gt = fsp_matrix(to["feats"][m.t_names[i]], to["feats"][m.t_names[i + 1]], "avg")
        gs = gs / gs.flatten(1).norm(dim=1)[:, None, None]
        gt = gt / gt.flatten(1).norm(dim=1)[:, None, None]
        unit = unit + fsp_distance(gs, gt, "paper")
    assert val.item() == pytest.approx(unit.item(), rel=1e-5) and 0 <= val.item() <= 8


def test_skd_pairwise_matches_official_formula_and_detaches_the_norm():
    # official sim_dis_compute: sum((S_T - S_S)^2) / N^2 / B, S = (f / (||f||_2 + 1e-8)) with the norm detached
    fs = torch.randn(2, 5, 3, 4, requires_grad=True)
    ft = torch.randn(2, 7, 3, 4)

    def sim(f):
        f = f.flatten(2)
        return (f / (f.norm(dim=1, keepdim=True).detach() + 1e-8)).transpose(1, 2) @ (f / (f.norm(dim=1, keepdim=True).detach() + 1e-8))

    official = ((sim(ft) - sim(fs)) ** 2).sum() / 12**2 / 2
    ours = pairwise_loss(fs, ft, None, detach_norm=True)
    assert ours.item() == pytest.approx(official.item(), rel=1e-6)
    g_official = torch.autograd.grad(official, fs)[0]
    g_ours = torch.autograd.grad(ours, fs)[0]
    assert torch.allclose(g_ours, g_official, atol=1e-6)
    # the non-detached cosine has the same value but another gradient
    plain = pairwise_loss(fs, ft, None, detach_norm=False)
    assert plain.item() == pytest.approx(ours.item(), rel=1e-6)
    assert not torch.allclose(torch.autograd.grad(plain, fs)[0], g_ours, atol=1e-6)
