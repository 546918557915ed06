"""The run grid of a workflow configuration: which (dataset, student, method, seed) runs a preset trains.

Used by the workflow (``workflow/rules/common.smk``) and by ``benchmarks/estimate_preset.py``, so both read a
configuration's ``grid`` the same way. Torch-free.
"""

from __future__ import annotations

import itertools


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


def base_method(config: dict, name: str) -> str:
    """The registry method behind a method name of the config: a registry name, or a configured variant
    (``methods.<name>.method``) such as the kernel-size sweep's ``intra_k9``."""
    return config["methods"].get(name, {}).get("method", name)


def needs_teacher(config: dict, method: str) -> bool:
    from intrakd.distill import METHOD_REGISTRY

    return METHOD_REGISTRY[base_method(config, method)].needs_teacher


def run_dir(dataset: str, student: str, method: str, seed) -> str:
    return f"results/runs/{dataset}/{student}/{method}/seed{seed}"


def teacher_dir(config: dict, dataset: str) -> str:
    t = config["teachers"][dataset]
    return f"results/runs/{dataset}/{t['model']}/teacher/seed{config['teacher_seed']}"


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


def student_params(config: dict, dataset: str, student: str, method: str, seed) -> dict:
    """The whole parameter set of one student run (the train notebook's parameters: RunConfig fields plus
    ``synth_if_missing``). Only settings this run depends on are in it, so the workflow's params rerun trigger
    reruns exactly the jobs whose settings changed."""
    method_cfg = config["methods"].get(method, {})
    base = base_method(config, method)
    params = {
        "role": "student",
        **data_params(config, dataset),
        **student_optim(config, dataset, student),
        "student": student,
        "width": (config["students"].get(student) or {}).get("width", 1.0),
        **_backbone(config["students"].get(student) or {}, dataset),
        "method": base,
        "variant": method if base != method else None,
        "method_options": method_cfg.get("options", {}),
        "method_weights": method_cfg.get("weights", {}),
        "seed": int(seed),
        "synth_if_missing": False,
        "out_dir": run_dir(dataset, student, method, seed),
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


def teacher_params(config: dict, dataset: str) -> dict:
    """The parameter set of the teacher run of ``dataset`` (a plain supervised run of the teacher model)."""
    t = config["teachers"][dataset]
    crop = config["datasets"][dataset].get("teacher_crop")
    return {
        "role": "teacher",
        **data_params(config, dataset),
        **({"crop": crop} if crop is not None else {}),  # the teacher's own training crop, where its recipe has one
        **optim_settings(config, "teacher_train", dataset),
        "student": t["model"],
        "width": t["width"],
        **_backbone(t),
        "method": "baseline",
        "seed": int(config["teacher_seed"]),
        "synth_if_missing": False,
        "out_dir": teacher_dir(config, dataset),
        **_checkpoints(config),
    }
