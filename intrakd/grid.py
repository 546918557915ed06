"""The run grid of a workflow configuration: which (dataset, model, method, seed) runs a preset trains, where each
run's folder is, and the one parameter set (the train notebook's ``run``) of each.

Used by the workflow (``workflow/rules/common.smk``) and by ``benchmarks/estimate_preset.py``, so both read a
configuration's ``grid`` the same way. Torch-free: what it needs of the package's registries comes from
:func:`catalogue`, read in a child process.
"""

from __future__ import annotations

import functools
import itertools
import json
import subprocess
import sys
from pathlib import Path

#: One run's place, relative to ``results/runs`` (its folder), ``results/logs/runs`` (its log folder) and
#: ``results/benchmarks/runs`` (``<RUN>.tsv``): the pattern the workflow's rule outputs, logs and ``expand`` share.
RUN = "{dataset}/{model}/{method}/seed{seed}"
RUNS_DIR = "results/runs"
#: The ``method`` segment of a teacher run's folder (a teacher is a plain supervised run of its model).
TEACHER = "teacher"


def validate_config(config: dict, schema_file) -> None:
    """Check a workflow configuration against ``schema_file`` (JSON schema in YAML) in place: its
    ``definitions.recipe`` receives the run keys from the RunConfig dataclass (:func:`catalogue`), a YAML 1.1 string
    such as ``1e-3`` where a number is expected is read as the number (YAML 1.2 and a person read it so; Snakemake
    reads the config as YAML 1.1), defaults are filled in. ValueError naming the key, the value and what was
    expected."""
    import jsonschema
    import yaml

    from intrakd import yamlio

    schema = yaml.safe_load(Path(schema_file).read_text())
    schema["definitions"]["recipe"] = catalogue()["recipe_schema"]
    validator = jsonschema.Draft202012Validator(schema)
    for err in validator.iter_errors(config):
        expected = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        if (err.validator == "type" and "number" in expected and isinstance(err.instance, str)
                and yamlio.EXPONENT_FLOAT.match(err.instance)):
            *parents, key = err.absolute_path
            holder = config
            for k in parents:
                holder = holder[k]
            holder[key] = float(err.instance)
    err = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if err is not None:
        where = ".".join(str(k) for k in err.absolute_path) or "(top level)"
        raise ValueError(f"config {where}: {err.message} (schema: {schema_file})")
    _fill_defaults(config, schema)


def _fill_defaults(value, schema: dict) -> None:
    """Set the ``default`` of every absent property of ``schema`` in ``value`` (objects, recursively)."""
    if not isinstance(value, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in value and "default" in sub:
            value[key] = sub["default"]
        if key in value:
            _fill_defaults(value[key], sub)


def grid_runs(config: dict, *outputs: str) -> list[tuple[str, str, str, int]]:
    """(dataset, student, method, seed) of every ``grid`` entry feeding any of ``outputs`` (tables or figures;
    every entry when none), for every seed of ``config["seeds"]``; sorted, each run once."""
    return sorted(
        {
            (ds, st, me, int(seed))
            for entry in config["grid"]
            if not outputs or set(outputs) & set(entry["tables"])
            for ds, st, me in itertools.product(entry["datasets"], entry["students"], entry["methods"])
            for seed in config["seeds"]
        }
    )


_CATALOGUE = """
import json
import torch
from intrakd.distill import METHOD_REGISTRY
from intrakd.engine.config import recipe_schema
from intrakd.models import MODEL_REGISTRY
print(json.dumps({"models": sorted(MODEL_REGISTRY),
                  "methods": {name: bool(cls.needs_teacher) for name, cls in sorted(METHOD_REGISTRY.items())},
                  "cuda": torch.cuda.is_available(), "recipe_schema": recipe_schema()}))
"""


def _in_child(code: str, payload=None):
    """The JSON a child process of this interpreter prints running ``code`` (which reads ``payload`` as JSON on
    stdin): what needs the package's torch side stays out of Snakemake's process."""
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(payload), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"reading the package in a child process failed ({sys.executable} -c ...):\n"
                           f"{proc.stderr.strip()}")
    return json.loads(proc.stdout)


_BACKBONE_ERRORS = """
import json, sys
from intrakd.models.pretrained import check_request
out = []
for key, weights, model, width in json.load(sys.stdin):
    try:
        check_request(weights, model, width)
        out.append(None)
    except ValueError as err:
        out.append(f"config {key}.backbone_weights: {err}")
print(json.dumps(out))
"""


def backbone_errors(requests: list[tuple[str, str, str, float]]) -> list[str]:
    """The error of each (config key, backbone_weights, model, width) that asks for ImageNet weights the model
    cannot take (``intrakd.models.pretrained.check_request``, read in a child process); [] when none does."""
    asked = [r for r in requests if r[1] == "imagenet"]
    return [e for e in (_in_child(_BACKBONE_ERRORS, asked) if asked else []) if e]


@functools.lru_cache(maxsize=1)
def catalogue() -> dict:
    """What the workflow needs of the package's registries, its run configuration and torch: ``models`` (names),
    ``methods`` ({name: needs a teacher}), ``recipe_schema`` (the JSON schema of the ``train`` / ``teacher_train``
    keys, :func:`intrakd.engine.config.recipe_schema`) and ``cuda`` (whether torch sees a GPU). Read in a child
    process of this interpreter, so that building the DAG keeps torch out of Snakemake's own process."""
    return _in_child(_CATALOGUE)


def base_method(config: dict, name: str) -> str:
    """The registry method behind a method name of the config: a registry name, or a configured variant
    (``methods.<name>.method``) such as the kernel-size sweep's ``intra_k9``."""
    return config["methods"].get(name, {}).get("method", name)


def needs_teacher(config: dict, method: str) -> bool:
    return catalogue()["methods"][base_method(config, method)]


def run_dir(dataset: str, model: str, method: str, seed) -> str:
    """The folder of one run (``method`` :data:`TEACHER` for a teacher run)."""
    return f"{RUNS_DIR}/" + RUN.format(dataset=dataset, model=model, method=method, seed=seed)


def teacher_run(config: dict, dataset: str) -> tuple[str, str, str, int]:
    """(dataset, model, :data:`TEACHER`, seed) of the teacher run of ``dataset``."""
    return dataset, config["teachers"][dataset]["model"], TEACHER, int(config["teacher_seed"])


def teacher_dir(config: dict, dataset: str) -> str:
    return run_dir(*teacher_run(config, dataset))


def data_params(config: dict, dataset: str) -> dict:
    """The data keys of a run's parameters, with the note that every table prints about the data."""
    d = config["datasets"][dataset]
    if d["source"] == "synthetic":
        s = d["synth"]
        world = "".join(f", {k.replace('_', ' ')} x{v:g}" for k, v in sorted(s.get("world", {}).items()))
        note = (f"synthetic {dataset}-format world (intrakd synth, seed {s['seed']}, {s['num']} images, "
                f"{s['size'][0]}x{s['size'][1]}{world})")
    else:
        note = f"real {dataset} dataset at {d['root']}"
    return {
        "dataset": dataset,
        "data_root": d["root"],
        "data_source": note,
        "input_size": d.get("input_size"),
        "crop": d.get("crop"),
        "eval_split": d.get("eval_split", "val"),
    }


def optim_settings(config: dict, kind: str, dataset: str) -> dict:
    """``train`` or ``teacher_train`` with the dataset's overrides: the optimiser settings of one job."""
    return {**config[kind], **config["datasets"][dataset].get(kind, {})}


def student_optim(config: dict, dataset: str, student: str) -> dict:
    """The optimiser settings of one student job: ``train``, then the dataset's overrides
    (``datasets.<dataset>.train``), the student's (``students.<student>.train``) and the student's on that dataset
    (``students.<student>.datasets.<dataset>.train``), the more specific winning."""
    s = config["students"].get(student) or {}
    return {**optim_settings(config, "train", dataset), **s.get("train", {}),
            **s.get("datasets", {}).get(dataset, {}).get("train", {})}


def _backbone(entry: dict, dataset: str | None = None) -> dict:
    """``backbone_weights`` of a students/teachers entry (a student's per-dataset value first), only when not
    ``none``: runs without a pretrained backbone keep the parameters they always had."""
    value = entry.get("backbone_weights", "none")
    if dataset is not None:
        value = entry.get("datasets", {}).get(dataset, {}).get("backbone_weights", value)
    return {} if value == "none" else {"backbone_weights": value}


def backbone_file(params: dict) -> str | None:
    """The weights file a run's ``backbone_weights`` names (a job input), None for ``none`` and ``imagenet``."""
    value = params.get("backbone_weights", "none")
    return None if value in ("none", "imagenet") else value


def _checkpoints(config: dict) -> dict:
    """``keep_checkpoints`` for a run's parameters, only when set: runs trained without it keep their parameters."""
    return {"keep_checkpoints": True} if config.get("keep_checkpoints") else {}


def run_params(config: dict, dataset: str, model: str, method: str, seed) -> dict:
    """The whole parameter set of one run (the train notebook's ``run``: RunConfig fields), a teacher run when
    ``method`` is :data:`TEACHER` (then ``model`` and ``seed`` must be the dataset's teacher and ``teacher_seed``).
    Only settings this run depends on are in it, so the workflow's params rerun trigger reruns exactly the jobs
    whose settings changed."""
    if method == TEACHER:
        t = config["teachers"][dataset]
        if (dataset, model, method, int(seed)) != teacher_run(config, dataset):
            raise ValueError(f"no teacher run {run_dir(dataset, model, method, seed)}: the teacher of {dataset} is "
                             f"{teacher_dir(config, dataset)}")
        crop = config["datasets"][dataset].get("teacher_crop")
        return {
            "role": "teacher",
            **data_params(config, dataset),
            **({"crop": crop} if crop is not None else {}),  # the teacher's own training crop, where its recipe has one
            **optim_settings(config, "teacher_train", dataset),
            "model": t["model"],
            "width": t["width"],
            **_backbone(t),
            "method": "baseline",
            "seed": int(seed),
            "out_dir": run_dir(dataset, model, method, seed),
            **_checkpoints(config),
        }
    method_cfg = config["methods"].get(method, {})
    base = base_method(config, method)
    params = {
        "role": "student",
        **data_params(config, dataset),
        **student_optim(config, dataset, model),
        "model": model,
        "width": (config["students"].get(model) or {}).get("width", 1.0),
        **_backbone(config["students"].get(model) or {}, dataset),
        "method": base,
        "variant": method if base != method else None,
        "method_options": method_cfg.get("options", {}),
        "method_weights": method_cfg.get("weights", {}),
        "seed": int(seed),
        "out_dir": run_dir(dataset, model, method, seed),
        **_checkpoints(config),
    }
    if needs_teacher(config, method):
        t = config["teachers"][dataset]
        params |= {
            "teacher": t["model"],
            "teacher_width": t["width"],
            "teacher_checkpoint": f"{teacher_dir(config, dataset)}/model.pt",
        }
    return params
