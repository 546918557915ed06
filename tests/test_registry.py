"""One registry helper for models, methods and datasets: one error type listing the valid names; the facts the report
shows (method labels and row order, dataset class names, colours and metric) on the registered objects."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from intrakd.data import DATASETS, build_dataset, get_spec
from intrakd.distill import METHOD_REGISTRY, Distiller, build_method, register_method
from intrakd.engine import RunConfig
from intrakd.method_cards import METHOD_CARDS, TEACHER, row_label, row_rank
from intrakd.models import MODEL_REGISTRY, build_model
from intrakd.registry import Registry, UnknownNameError


def test_a_registry_registers_lists_and_refuses_unknown_and_repeated_names():
    reg: Registry[int] = Registry("colour")
    assert reg.register("red", 1) == 1

    @reg.register("blue")
    def blue():
        return 2

    assert reg["blue"] is blue and list(reg) == ["red", "blue"] and reg.names() == ["blue", "red"]
    assert "red" in reg and "green" not in reg and ["x"] not in reg and reg.get("green") is None
    with pytest.raises(UnknownNameError) as err:
        reg["green"]
    assert str(err.value) == "unknown colour 'green'; valid: blue, red"  # unquoted, although a KeyError
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)
    with pytest.raises(UnknownNameError, match=r"unknown colour \['x'\]"):
        reg[["x"]]  # an unhashable name from a YAML file is unknown too, not a TypeError
    with pytest.raises(ValueError, match="colour 'red' registered twice"):
        reg.register("red", 3)
    with pytest.raises(ValueError, match="colour name must be a non-empty string"):
        reg.register("", 3)
    assert reg.unregister("red") == 1 and reg.names() == ["blue"]


@pytest.mark.parametrize("lookup, registry, kind", [
    (lambda: build_model("vgg", 5), MODEL_REGISTRY, "model"),
    (lambda: build_method("vgg", None, None, 5), METHOD_REGISTRY, "method"),
    (lambda: get_spec("vgg"), DATASETS, "dataset"),
    (lambda: build_dataset("vgg", "/nowhere", "val"), DATASETS, "dataset"),
    (lambda: RunConfig(method="kd", teacher="vgg").validate(), MODEL_REGISTRY, "teacher"),  # named by its run key
])
def test_unknown_names_raise_the_one_error_listing_every_valid_name(lookup, registry, kind):
    for caught in (KeyError, ValueError):  # callers of the three former styles catch it either way
        with pytest.raises(caught) as err:
            lookup()
        assert type(err.value) is UnknownNameError
        assert str(err.value) == f"unknown {kind} 'vgg'; valid: {', '.join(sorted(registry))}"
    assert len(registry) >= 4  # the listing is not trivially short: 4 datasets, 7 models, 13 methods


def test_a_method_without_a_card_is_refused_at_registration():
    """Refused rather than placed: a method registered without a card would otherwise show under its bare name at
    the end of every table, which is what a forgotten label looked like before cards."""

    class Uncarded(Distiller):
        name = "uncarded"

    with pytest.raises(UnknownNameError, match=r"method 'uncarded' has no card in intrakd/method_cards.py \(its "
                                               r"label and its place in the tables\); cards: at, baseline"):
        register_method(Uncarded)
    assert "uncarded" not in METHOD_REGISTRY and Uncarded.label == ""


def test_every_method_has_its_cards_label_and_the_cards_set_the_table_order():
    assert list(METHOD_CARDS) and set(METHOD_CARDS) == set(METHOD_REGISTRY)  # no card without a method either
    for name, cls in METHOD_REGISTRY.items():
        assert cls.label == METHOD_CARDS[name].label == row_label(name) == cls.describe()["label"]
    assert METHOD_REGISTRY["intrakd"].label == "+ IntRA-KD" and row_label(TEACHER) == "teacher"
    # teacher first, then the cards as declared, then names without a card (configured variants) by name
    names = ["intra_k9", "kd", "baseline", "aa_variant", TEACHER, "mimic", "intrakd"]
    assert sorted(names, key=row_rank) == ["teacher", "baseline", "intrakd", "kd", "mimic", "aa_variant", "intra_k9"]
    assert row_label("intra_k9") == "intra_k9"


def test_dataset_specs_carry_class_names_colours_and_metric():
    apollo, culane, llamas, cityscapes = (get_spec(n) for n in ("apolloscape", "culane", "llamas", "cityscapes"))
    assert [s.metric for s in (apollo, culane, llamas, cityscapes)] == ["miou", "f1", "map", "miou"]
    for spec in (apollo, culane, llamas, cityscapes):
        assert len(spec.class_names) == spec.num_classes and len(spec.palette) == 256
    # laneMarkDetection.py: train id 1 is s_w_d (ID 200, RGB 70,130,180); 36 merges noise and ignored
    assert apollo.class_names[1] == "s_w_d" and apollo.class_names[-1] == "noise+ignored"
    assert apollo.palette[200] == (70, 130, 180) and apollo.value_names[200] == "s_w_d"
    # cityscapesScripts labels.py: trainId 0 road (ID 7, RGB 128,64,128), 18 bicycle
    assert cityscapes.class_names[0] == "road" and cityscapes.class_names[18] == "bicycle"
    assert cityscapes.palette[7] == (128, 64, 128)
    # unsupervised_llamas dataset_constants: l1 drawn in BGR (0, 0, 255) = red; the lanes' values are 1..4
    assert llamas.class_names == ("background", "l1", "l0", "r0", "r1") and llamas.palette[1] == (255, 0, 0)
    assert dict(llamas.value_names) == dict(enumerate(llamas.class_names)) and llamas.palette[5] == (0, 0, 0)
    assert culane.class_names[4] == "lane 4" and culane.palette[0] == (0, 0, 0)
    with pytest.raises(ValueError, match="apolloscape: 37 class weights and 36 class names for 37 classes"):
        dataclasses.replace(apollo, class_names=apollo.class_names[:-1])
    with pytest.raises(ValueError, match="culane: 5 palette colours, expected 256"):
        dataclasses.replace(culane, palette=culane.palette[:5])


def test_the_report_reads_labels_order_and_metrics_without_torch():
    code = ("import sys\nimport intrakd.report.tables, intrakd.report.verdict, intrakd.method_cards\n"
            "from intrakd.data import get_spec\nget_spec('llamas').metric\n"
            "print(sorted(m for m in ('torch', 'seaborn', 'matplotlib') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
