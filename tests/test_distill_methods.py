"""Every method behind the one interface: registry, CLI, teacher isolation, training-only extras,
finite losses that fall on a tiny overfitting problem, and one ERFNet / PSPNet integration run."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from intrakd.distill import METHOD_REGISTRY, TABLE4_FORMS, build_method
from intrakd.distill import cli as distill_cli
from intrakd.distill.toy import ToySegModel

torch.set_num_threads(1)

NAMES = {"baseline", "intrakd", "intra", "kd", "at", "skd", "skd_pair", "psn", "irg", "bifpn", "dks", "sad", "mimic"}
C = 4


def _options(name, overfit=False):
    # SAD's default detached target is a moving target (not a gradient of the loss); the overfitting check
    # uses the attached form, whose loss gradient descent must lower
    return {"sad": {"start_fraction": 0, "detach_target": not overfit}, "bifpn": {"width": 8}}.get(name, {})


def _setup(name, width_t=6, overfit=False):
    student = ToySegModel(C, width=4)
    teacher = ToySegModel(C, width=width_t).eval()
    cls = METHOD_REGISTRY[name]
    method = build_method(name, student, teacher if cls.needs_teacher else None, C, **_options(name, overfit))
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 32, 32, generator=g)
    blocks = torch.randint(0, C, (4, 1, 4, 4), generator=g).float()  # region-like labels, 8 x 8 px blocks
    label = torch.nn.functional.interpolate(blocks, scale_factor=8, mode="nearest")[:, 0].long()
    label[:, :3] = 255
    return student, teacher, method, {"image": x, "label": label}


def test_registry_names_and_table4_mapping():
    assert set(METHOD_REGISTRY) == NAMES
    assert TABLE4_FORMS == {"probability map": "kd", "feature map": "mimic", "pairwise similarity map": "skd_pair",
                            "attention map": "at", "inter-region affinity graph": "intra"}
    assert not METHOD_REGISTRY["baseline"].needs_teacher
    assert not METHOD_REGISTRY["sad"].needs_teacher and not METHOD_REGISTRY["dks"].needs_teacher


def _methods_cli(argv):
    # the distill sub-command through the same registration hook intrakd.cli uses, independent of the
    # other packages' sub-commands
    parser = argparse.ArgumentParser(prog="intrakd")
    distill_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_methods_cli_json(capsys):
    assert _methods_cli(["methods", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == sorted(NAMES)
    for r in rows:
        assert {"name", "needs_teacher", "taps", "default_weights", "description", "default_options",
                "knowledge_form"} <= set(r)
        cls = METHOD_REGISTRY[r["name"]]
        assert r["taps"] == {"student": list(cls.student_taps), "teacher": list(cls.teacher_taps)}
        assert r["default_weights"] == cls.default_weights and r["needs_teacher"] == cls.needs_teacher
        assert r["description"] and "\n" not in r["description"]
        if r["needs_teacher"]:
            assert r["taps"]["teacher"]
        else:
            assert r["taps"]["teacher"] == []
    intra = next(r for r in rows if r["name"] == "intrakd")
    assert intra["default_options"]["kernel"] == 5 and intra["default_options"]["with_at"] is True
    assert intra["default_options"]["moments"] == [1, 2, 3]
    assert _methods_cli(["methods"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in NAMES)


def test_bad_names_options_and_weights_raise_clear_errors():
    student, teacher = ToySegModel(C, 4), ToySegModel(C, 6)
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        build_method("nope", student, teacher, C)
    with pytest.raises(ValueError, match="no option.*kernal"):
        build_method("intrakd", student, teacher, C, kernal=3)
    with pytest.raises(ValueError, match="no loss term.*kl"):
        build_method("kd", student, teacher, C, weights={"kl": 1.0})
    with pytest.raises(ValueError, match="needs a teacher"):
        build_method("kd", student, None, C)
    with pytest.raises(ValueError, match="no tap 'nowhere'"):
        build_method("at", student, teacher, C, taps=("nowhere",))
    with pytest.raises(ValueError, match="graph='triangle'"):
        build_method("intra", student, teacher, C, graph="triangle")
    with pytest.raises(ValueError, match="moments"):
        build_method("intra", student, teacher, C, moments=(1, 4))
    with pytest.raises(ValueError, match="no option.*with_at"):
        build_method("intra", student, teacher, C, with_at=True)  # AT/KD belong to "intrakd"
    with pytest.raises(ValueError, match="terms"):
        build_method("skd", student, teacher, C, terms=("holistic",))
    with pytest.raises(ValueError, match="temperature"):
        build_method("kd", student, teacher, C, temperature=0)


@pytest.mark.parametrize("name", sorted(NAMES - {"baseline"}))
def test_teacher_gets_no_gradient_and_extras_are_the_methods_own(name):
    student, teacher, method, batch = _setup(name)
    t_out = teacher(batch["image"]) if method.needs_teacher else None  # autograd left on on purpose
    losses = method(student(batch["image"]), t_out, batch)
    sum(losses.values()).backward()
    assert all(p.grad is None for p in teacher.parameters())
    own = {id(p) for p in method.parameters()}
    assert not own & {id(p) for p in teacher.parameters()}
    assert not own & {id(p) for p in student.parameters()}
    with_extras = {"psn", "mimic", "dks", "bifpn"}
    assert (len(own) > 0) == (name in with_extras)
    # the extras get a gradient from the loss (the engine optimises them), the models' weights are not theirs
    assert all(p.grad is not None for p in method.parameters())


@pytest.mark.parametrize("name", sorted(NAMES - {"baseline"}))
def test_loss_is_finite_and_falls_on_tiny_overfitting_problem(name):
    student, teacher, method, batch = _setup(name, overfit=True)
    # SAD's spatial softmax of sum_c F^2 is nearly one-hot on this toy net (flat loss surface): a larger step
    lr = 3e-2 if name == "sad" else 1e-2
    opt = torch.optim.Adam(list(student.parameters()) + list(method.parameters()), lr=lr)
    with torch.no_grad():
        t_out = teacher(batch["image"]) if method.needs_teacher else None
    history = []
    for step in range(30):
        losses = method(student(batch["image"]), t_out, batch, step=step, epoch=0)
        total = sum(losses.values())
        assert torch.isfinite(total), (name, step, losses)
        history.append(total.item())
        opt.zero_grad()
        total.backward()
        opt.step()
    assert min(history[-5:]) < 0.9 * history[0], (name, history[0], history[-5:])


def test_sad_target_block_gets_no_gradient_when_detached():
    student, _, method, batch = _setup("sad")
    sum(method(student(batch["image"]), None, batch).values()).backward()
    last = dict(zip([t.name for t in student.feature_info], student.blocks))["b5"]
    assert all(p.grad is None or not p.grad.any() for p in last.parameters())
    assert student.blocks[0][0].weight.grad.abs().sum() > 0


def test_baseline_returns_nothing():
    student, _, method, batch = _setup("baseline")
    assert method(student(batch["image"]), None, batch) == {}


def _engine_steps(method, student, teacher, batch, steps, seed=0):
    """The engine's training step (intrakd.engine.train.Trainer.train_epoch) in miniature: one SGD over the
    student's and the method's parameters, teacher under no_grad, then ``after_student_step``."""
    torch.manual_seed(seed)
    groups = [{"params": list(student.parameters())}, {"params": [p for p in method.parameters() if p.requires_grad]}]
    opt = torch.optim.SGD([g for g in groups if g["params"]], lr=1e-2, momentum=0.9, weight_decay=1e-4)
    logs = []
    for it in range(steps):
        s_out = student(batch["image"])
        with torch.no_grad():
            t_out = teacher(batch["image"])
        terms = {"seg": torch.nn.functional.cross_entropy(s_out["logits"], batch["label"], ignore_index=255)}
        terms.update(method(s_out, t_out, batch, step=it, epoch=0))
        loss = sum(terms.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        logs.append(method.after_student_step(s_out, t_out, batch, step=it, epoch=0))
    return opt, logs


def test_skd_adversarial_discriminator_has_its_own_optimiser_under_the_engine_loop():
    student, teacher, _, batch = _setup("kd")
    method = build_method("skd", student, teacher, C, adversarial=True, conv_dim=8)
    d_params = list(method.discriminator.parameters())
    assert d_params and {id(p) for p in d_params} <= {id(p) for p in method.parameters()}
    with torch.no_grad():
        t_out = teacher(batch["image"])
    # the generator term reaches the student but never D
    losses = method(student(batch["image"]), t_out, batch)
    assert set(losses) == {"pixel", "pair", "adv"}
    losses["adv"].backward()
    assert all(p.grad is None for p in d_params)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(p.requires_grad for p in d_params)
    student.zero_grad(set_to_none=True)
    # under the engine's loop D moves only through its own Adam step, and the main SGD never holds a D gradient
    before = [p.detach().clone() for p in d_params]
    opt, logs = _engine_steps(method, student, teacher, batch, steps=2)
    assert all(set(log) == {"d_loss"} and torch.isfinite(torch.tensor(log["d_loss"])) for log in logs)
    assert any(not torch.equal(a, p) for a, p in zip(before, d_params))
    assert all(p.grad is None for p in d_params)
    assert all(id(p) not in {id(q) for q in opt.state} for p in d_params)
    # the discriminator and its optimiser state travel in the method's state_dict (exact resume)
    state = method.state_dict()
    assert state["_extra_state"]["d_optimizer"]["state"]
    fresh = build_method("skd", student, teacher, C, adversarial=True, conv_dim=8)
    fresh.load_state_dict(state)
    got = fresh.d_optimizer().state_dict()
    want = method.d_optimizer().state_dict()
    assert got["param_groups"] == want["param_groups"]
    for k, v in want["state"].items():
        assert all(torch.equal(v[key], got["state"][k][key]) for key in v)
    assert build_method("kd", student, teacher, C).after_student_step({}, {}, {}) == {}
    with pytest.raises(ValueError, match="adversarial=False"):
        build_method("skd", student, teacher, C).load_state_dict(state, strict=False)


@pytest.mark.parametrize("name", ["intrakd", "bifpn", "psn", "dks"])
def test_methods_run_under_the_engine_loop_and_state_dict_round_trips(name):
    """After two engine steps, a method rebuilt from the state dict gives the trained method's losses on a new batch,
    and a freshly built one does not (its extras were never trained). IntRA-KD has no extras: its state dict is
    empty, and a fresh method gives exactly the trained one's losses (nothing it learns could be lost on resume)."""
    student, teacher, method, batch = _setup(name)
    _engine_steps(method, student, teacher, batch, steps=2)

    def rebuilt():
        return build_method(name, student, teacher if method.needs_teacher else None, C, **_options(name))

    clone, fresh = rebuilt(), rebuilt()
    clone.load_state_dict(method.state_dict())
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(11))  # a batch the steps never saw
    new = {"image": x, "label": torch.roll(batch["label"], 1, dims=0)}
    with torch.no_grad():
        s_out, t_out = student.eval()(x), teacher(x)

    def losses(m):
        with torch.no_grad():
            return {k: float(v) for k, v in m.eval()(s_out, t_out, new).items()}

    want = losses(method)
    assert want and all(v != 0 for v in want.values())
    assert losses(clone) == want
    if name == "intrakd":
        assert method.state_dict() == {} and losses(fresh) == want
    else:
        assert method.state_dict() and losses(fresh) != want


def test_matched_sizes_are_the_table4_counts():
    student, teacher = ToySegModel(C, 4), ToySegModel(C, 6)
    x = torch.randn(1, 3, 32, 64)
    so, to = student(x), teacher(x)
    hf, wf = 4, 8  # the 1/8 tap
    sizes = {name: build_method(name, student, teacher, C).matched_size(so, to) for name in TABLE4_FORMS.values()}
    assert sizes["kd"] == 32 * 64 * C
    assert sizes["mimic"] == hf * wf * teacher.tap("high").channels
    assert sizes["skd_pair"] == (hf * wf) ** 2
    assert sizes["at"] == hf * wf + 8 * 16  # 1/8 and 1/4 taps
    assert sizes["intra"] == 2 * 3 * C * C  # 2 taps x 3 moment orders x n^2
    assert build_method("intra", student, teacher, C, graph="concat").matched_size(so, to) == 2 * C * C
    # the headline method matches the graphs, the two attention maps and the probability map
    assert build_method("intrakd", student, teacher, C).matched_size(so, to) == sizes["intra"] + sizes["at"] + sizes["kd"]


def test_every_method_runs_with_erfnet_student_and_pspnet_teacher():
    from intrakd.models import build_model

    n = 37
    student = build_model("erfnet", n, width=0.25)
    teacher = build_model("pspnet_r101", n, width=0.25).eval()
    x = torch.randn(3, 3, 64, 128)  # IRG's max-normalised B x B edges are constant for B = 2
    label = torch.randint(0, n, (3, 64, 128))
    with torch.no_grad():
        t_out = teacher(x)
    for name in sorted(NAMES):
        cls = METHOD_REGISTRY[name]
        method = build_method(name, student, teacher if cls.needs_teacher else None, n, **_options(name))
        losses = method(student(x), t_out if cls.needs_teacher else None, {"image": x, "label": label})
        assert set(losses) <= set(cls.default_weights)
        for term, value in losses.items():
            assert value.dim() == 0 and torch.isfinite(value), (name, term)
            student.zero_grad(set_to_none=True)
            value.backward(retain_graph=True)
            grads = [p.grad for p in student.parameters() if p.grad is not None]
            assert grads and all(torch.isfinite(g).all() for g in grads), (name, term)
            assert any(g.abs().sum() > 0 for g in grads), (name, term)  # the term trains the student
        student.zero_grad(set_to_none=True)


def test_bifpn_pyramid_runs_in_float32_under_cpu_bf16_autocast():
    """Under CPU bf16 autocast the BiFPN adaptor's weights went non-finite within two Adam steps (ENet, standard
    preset); its pyramid therefore runs in float32 whatever the autocast, and its losses are float32."""
    from intrakd.distill import build_method
    from intrakd.models import build_model

    torch.manual_seed(0)
    student = build_model("erfnet", num_classes=5, width=0.125)
    teacher = build_model("erfnet", num_classes=5, width=0.125).eval()
    method = build_method("bifpn", student, teacher, 5, width=8)
    seen = []
    method.pyramid.register_forward_hook(lambda m, i, o: seen.append((i[0][0].dtype, o[0].dtype)))
    x, label = torch.randn(2, 3, 32, 64), torch.randint(0, 5, (2, 32, 64))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        s_out = student(x)
        with torch.no_grad():
            t_out = teacher(x)
        out = method(s_out, t_out, {"label": label, "image": x})
    assert s_out["logits"].dtype == torch.bfloat16  # autocast was on for the student
    assert seen == [(torch.float32, torch.float32)]
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in out.values())
