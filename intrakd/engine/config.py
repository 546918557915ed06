"""One training run's configuration: the single object between a notebook's parameters and the engine."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intrakd import yamlio


#: Where the train notebook's standalone demo writes its data and its run, inside the clone (git-ignored ``data/``),
#: whatever the working directory, and outside every preset's ``results/runs``.
DEMO_DIR = "data/notebook-demo"


def repo_root() -> Path:
    """The clone holding this package (the folder with its ``pyproject.toml``); the working directory for a copy
    installed elsewhere."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def demo_path(*parts: str) -> str:
    """``DEMO_DIR/<parts>`` inside the clone, as an absolute path (the notebook demo's data and run folders)."""
    return str(repo_root().joinpath(DEMO_DIR, *parts))


#: The synthetic tree the train notebook's demo generates on first use: images (about 2/3 train, the rest val) and
#: their size [W, H].
DEMO_SYNTH = {"num": 24, "size": [424, 340]}


def demo_run() -> dict[str, Any]:
    """The run of the train notebook when started without one (``run = None``): ERFNet at width 0.25, two epochs
    at 208 x 64 on the demo tree, its data and run folders inside the clone (:func:`demo_path`)."""
    return {
        "dataset": "apolloscape",
        "data_root": demo_path("apolloscape"),
        "data_source": "synthetic (notebook demo: intrakd synth apolloscape, seed 0)",
        "model": "erfnet",
        "width": 0.25,
        "teacher_width": 0.25,
        "epochs": 2,
        "input_size": [208, 64],
        "out_dir": demo_path("runs", "erfnet-baseline-seed0"),
    }


def _setting(default=None, *, factory=None, scope: str = "recipe", **schema):
    """A RunConfig field. ``scope``: ``"recipe"`` (the default: a setting of the workflow's ``train`` /
    ``teacher_train`` sections and their per-dataset overrides) or ``"run"`` (derived by the workflow from the grid,
    the dataset or the rule, never set in those sections). ``schema``: JSON-schema bounds (``minimum``,
    ``exclusiveMinimum``, ``maximum``, ``enum``) checked by :meth:`RunConfig.validate` and written into the workflow's
    schema by :func:`recipe_schema`, so a bound is stated once."""
    meta = {"scope": scope, "schema": schema}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RunConfig:
    """Everything one run needs. Paths are plain strings so the object round-trips through JSON/YAML."""

    role: str = _setting("student", scope="run", enum=["student", "teacher"])  # a teacher run: plain supervised
    dataset: str = _setting("apolloscape", scope="run")
    data_root: str = _setting("data/apolloscape", scope="run")
    # free text recorded in metrics.json and tables ("synthetic ..." or "real ...")
    data_source: str = _setting("synthetic", scope="run")
    model: str = _setting("erfnet", scope="run")  # the network this run trains (a student, or a teacher model)
    width: float = _setting(1.0, scope="run", exclusiveMinimum=0)
    # the trained network's pretrained backbone: "none" (its own initialisation), "imagenet" (torchvision's ImageNet
    # weights, from torch's hub cache) or the path of a weights file (intrakd.models.pretrained); set per student,
    # per student and dataset, or per teacher in the workflow
    backbone_weights: str = _setting("none", scope="run")
    method: str = _setting("baseline", scope="run")
    method_options: dict[str, Any] = _setting(factory=dict, scope="run")
    method_weights: dict[str, float] = _setting(factory=dict, scope="run")
    # Name of this configured variant of ``method`` (e.g. "intra_k9" for a kernel-size sweep); it is the method
    # name recorded in metrics.json and the tables. None: the method's own name.
    variant: str | None = _setting(None, scope="run")
    teacher: str | None = _setting(None, scope="run")
    teacher_width: float = _setting(1.0, scope="run", exclusiveMinimum=0)
    teacher_checkpoint: str | None = _setting(None, scope="run")
    seed: int = _setting(0, scope="run")
    epochs: int = _setting(1, minimum=1)
    batch_size: int = _setting(2, minimum=1)
    # the poly schedule applies to all; "sgd" is the paper recipe's
    optimizer: str = _setting("sgd", enum=["sgd", "adam", "adamw"])
    lr: float = _setting(0.01, exclusiveMinimum=0)
    momentum: float = _setting(0.9, minimum=0, maximum=1)  # SGD only
    weight_decay: float = _setting(1e-4, minimum=0)
    poly_power: float = _setting(0.9, minimum=0)
    # per iteration (intrakd.engine.optim); "cosine" decays to min_lr
    lr_schedule: str = _setting("poly", enum=["poly", "cosine"])
    min_lr: float = _setting(0.0, minimum=0)  # the cosine schedule's last learning rate (below lr)
    # Adam/AdamW betas (None: torch's 0.9, 0.999)
    betas: list[float] | None = _setting(None, minItems=2, maxItems=2, items={"minimum": 0, "exclusiveMaximum": 1})
    # learning-rate and weight-decay multipliers by parameter group (intrakd.engine.optim; 1 and false: one group)
    head_lr_mult: float = _setting(1.0, minimum=0)  # student parameters outside the backbone
    backbone_lr_mult: float = _setting(1.0, minimum=0)  # the backbone's (what backbone_weights loads)
    backbone_wd_mult: float = _setting(1.0, minimum=0)  # weight decay of the backbone
    bias_lr_mult: float = _setting(1.0, minimum=0)  # biases (normalisation layers aside), on top of the part's
    no_decay_norm_bias: bool = _setting(False)  # no weight decay on normalisation-layer parameters and biases
    exist_weight: float = _setting(0.1)
    input_size: list[int] | None = _setting(None, scope="run")  # [W, H] the network sees (None: the recipe's)
    crop: list[int] | None = _setting(None, scope="run")  # [W, H] random training crop after resizing (None: none)
    rotate_deg: float | None = _setting(None)  # training rotation (None: the recipe's)
    train_split: str = _setting("train", scope="run")
    eval_split: str = _setting("val", scope="run")
    val_every: int = _setting(1, minimum=0)  # epochs between validations (0: only at the end)
    max_iters_per_epoch: int | None = _setting(None, minimum=1)  # cap for smoke runs
    max_eval_images: int | None = _setting(None, minimum=1)
    # ApolloScape's test: "single" (one scale at input_size), "official" (test_*_multi_scale.py as released: 4 scales
    # x 4 corner crops, scale 0 computed but never added), "all" (the four scales added); see intrakd.data.apolloscape
    eval_scales: str = _setting("single", enum=["single", "official", "all"])
    num_workers: int = _setting(0, minimum=0)
    threads: int = _setting(0, scope="run", minimum=0)  # torch intra-op threads (0: torch's default); the job's
    device: str = _setting("auto", scope="run")  # "auto" | "cpu" | "cuda" | "cuda:N"
    amp: bool = _setting(True)  # mixed precision on CUDA (bf16 where supported, else fp16 with loss scaling)
    cpu_amp: bool = _setting(False)  # bf16 autocast on the CPU (fast with AVX-512 BF16 / AMX; slow elsewhere)
    channels_last: bool = _setting(True)  # NHWC memory format for the networks and inputs (CUDA and CPU)
    torch_compile: bool = _setting(False)  # torch.compile the student's and the teacher's forward passes
    # Processes for this run (one per GPU on CUDA, gloo processes on CPU); > 1 trains with DDP under torchrun,
    # batch_size staying the global batch (see intrakd.engine.distributed).
    nproc: int = _setting(1, minimum=1)
    sync_bn: bool = _setting(True, scope="run")  # SyncBatchNorm when nproc > 1 on CUDA (gloo has none: ignored)
    out_dir: str = _setting("results/runs/example", scope="run")
    # keep ckpt/ (the resume state) once the run has finished and written its sidecars (top-level workflow key)
    keep_checkpoints: bool = _setting(False, scope="run")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunConfig":
        """The run of a mapping of run parameters (a notebook's ``run``, a run file, a metrics.json ``config``);
        a key of an older release (:data:`RENAMED`) is read under its new name; KeyError naming unknown keys."""
        values = upgrade(values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise KeyError(f"unknown run parameter(s) {unknown}; valid: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def out(self) -> Path:
        return Path(self.out_dir)

    def check_types(self) -> "RunConfig":
        """Check every field's value against its declared type (bool is not an int; an int is a float; an integral
        float such as ``2.0`` is accepted for an int field and stored as ``2``); TypeError naming the key, the value
        and the expected type."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            setattr(self, f.name, _typed(f.name, value, hints[f.name]))
        return self

    def validate(self) -> "RunConfig":
        """Check every value against its declared type and bounds, names against the registries and the files
        this run reads; one clear error each. Called once, where a run enters the engine (:func:`train`); the code
        below trusts a validated run."""
        from intrakd.data import DATASETS
        from intrakd.distill import METHOD_REGISTRY
        from intrakd.models import MODEL_REGISTRY

        self.check_types()
        for f in dataclasses.fields(self):
            _check_bounds(f.name, getattr(self, f.name), f.metadata.get("schema", {}))
        _choice("dataset", self.dataset, DATASETS)
        _choice("model", self.model, MODEL_REGISTRY)
        _choice("method", self.method, METHOD_REGISTRY)
        if self.teacher is not None:
            _choice("teacher", self.teacher, MODEL_REGISTRY)
        needs_teacher = METHOD_REGISTRY[self.method].needs_teacher
        if needs_teacher and (self.teacher is None or not self.teacher_checkpoint):
            raise ValueError(f"method {self.method!r} needs a teacher: set 'teacher' and 'teacher_checkpoint'")
        if self.teacher_checkpoint and needs_teacher and not Path(self.teacher_checkpoint).is_file():
            raise FileNotFoundError(f"teacher_checkpoint {self.teacher_checkpoint!r}: no such file")
        if not Path(self.data_root).is_dir():
            raise FileNotFoundError(f"data_root {self.data_root!r}: no such directory (expected a {self.dataset} tree)")
        if self.nproc > 1:
            if int(self.batch_size) % self.nproc:
                raise ValueError(f"batch_size {self.batch_size} is not divisible by nproc {self.nproc}: batch_size is "
                                 "the global batch, split evenly over the processes")
            if self.device not in ("auto", "cpu", "cuda"):
                raise ValueError(f"device {self.device!r} with nproc {self.nproc}: expected 'auto', 'cpu' or 'cuda' "
                                 "(each process takes the GPU numbered by its LOCAL_RANK)")
        if self.eval_scales != "single" and self.dataset != "apolloscape":
            raise ValueError(f"eval_scales {self.eval_scales!r} is ApolloScape's multi-scale test; dataset "
                             f"{self.dataset!r} has none: use 'single'")
        if not float(self.min_lr) < float(self.lr):
            raise ValueError(f"min_lr must be >= 0 and below lr ({self.lr}), got {self.min_lr!r}")
        from intrakd.models.pretrained import check_request

        check_request(self.backbone_weights, self.model, self.width)
        for key in ("input_size", "crop"):
            size = getattr(self, key)
            if size is not None and (len(size) != 2 or any(int(s) % 8 for s in size)):
                raise ValueError(f"{key} must be [W, H] with both divisible by 8, got {size!r}")
        return self


#: Run parameters renamed since runs were first recorded: {old name: new name}. Old run files, notebooks' ``run``
#: and metrics.json ``config`` objects read through :func:`upgrade`.
RENAMED = {"student": "model"}


def upgrade(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the keys of :data:`RENAMED` under their new names (ValueError when both are given)."""
    both = [old for old, new in RENAMED.items() if old in values and new in values]
    if both:
        raise ValueError(f"run parameters {both[0]!r} and {RENAMED[both[0]]!r} both given: {both[0]!r} is the old "
                         f"name of {RENAMED[both[0]]!r}; give only {RENAMED[both[0]]!r}")
    return {RENAMED.get(k, k): v for k, v in values.items()}


def _check_bounds(key: str, value: Any, bounds: dict) -> None:
    """``value`` within the JSON-schema ``bounds`` of its field (None passes: optional fields)."""
    if value is None:
        return
    if "enum" in bounds and value not in bounds["enum"]:
        raise ValueError(f"{key} must be one of {', '.join(map(str, bounds['enum']))}, got {value!r}")
    if "minimum" in bounds and not value >= bounds["minimum"]:
        raise ValueError(f"{key} must be >= {bounds['minimum']}, got {value!r}")
    if "exclusiveMinimum" in bounds and not value > bounds["exclusiveMinimum"]:
        raise ValueError(f"{key} must be > {bounds['exclusiveMinimum']}, got {value!r}")
    if "maximum" in bounds and not value <= bounds["maximum"]:
        raise ValueError(f"{key} must be <= {bounds['maximum']}, got {value!r}")
    if "exclusiveMaximum" in bounds and not value < bounds["exclusiveMaximum"]:
        raise ValueError(f"{key} must be < {bounds['exclusiveMaximum']}, got {value!r}")
    if not ("minItems" in bounds or "maxItems" in bounds or "items" in bounds):
        return
    if not bounds.get("minItems", 0) <= len(value) <= bounds.get("maxItems", len(value)):
        size = bounds.get("minItems") if bounds.get("minItems") == bounds.get("maxItems") else \
            f"{bounds.get('minItems', 0)}-{bounds.get('maxItems', 'any')}"
        raise ValueError(f"{key} must be a list of {size} items, got {value!r}")
    for i, item in enumerate(value):
        _check_bounds(f"{key}[{i}]", item, bounds.get("items", {}))


def _json_type(hint) -> dict:
    """The JSON-schema type of a RunConfig type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_json_type(a) for a in typing.get_args(hint)]
        if all(set(o) == {"type"} for o in options):  # scalars: one type list, e.g. [integer, "null"]
            return {"type": [o["type"] for o in options]}
        return {"anyOf": options}
    if origin is list:
        return {"type": "array", "items": _json_type(typing.get_args(hint)[0])}
    if origin is dict:
        return {"type": "object"}
    if hint is Any:
        return {}
    return {"type": {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}[hint]}


def recipe_schema() -> dict:
    """The JSON schema of the workflow's ``train`` / ``teacher_train`` sections (and their per-dataset overrides):
    every RunConfig field of scope ``recipe``, its type and bounds, all optional. Generated here so that a new
    recipe field is one edit (the dataclass); ``workflow/schemas/config.schema.yaml`` receives it at load time."""
    hints = typing.get_type_hints(RunConfig)
    properties = {}
    for f in dataclasses.fields(RunConfig):
        if f.metadata.get("scope") == "recipe":
            typed, bounds = _json_type(hints[f.name]), f.metadata.get("schema", {})
            properties[f.name] = {**typed, **bounds}
            if "items" in bounds:  # a list's item bounds join its item type (inside anyOf for an optional list)
                for option in typed.get("anyOf", [typed]):
                    if "items" in option:
                        properties[f.name]["items"] = {**option["items"], **bounds["items"]}
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _choice(key: str, value: Any, registry) -> None:
    """``value`` is a name of ``registry`` (:class:`intrakd.registry.Registry`); its UnknownNameError naming ``key``
    otherwise."""
    if value not in registry:
        raise registry.unknown(value, key)


class ConfigTypeError(TypeError, ValueError):
    """A run parameter of the wrong type (a ValueError too: bad input, reported in one line by the CLI)."""


def _type_name(hint) -> str:
    if hint is Any:
        return "any value"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if origin is list:
        return f"a list ({_type_name(typing.get_args(hint)[0])} each)"
    if origin is dict:
        return f"a mapping ({_type_name(typing.get_args(hint)[1])} each)"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            type(None): "null"}.get(hint, getattr(hint, "__name__", str(hint)))


def _typed(key: str, value, hint):
    """``value`` checked against the type ``hint`` (and an integral float made an int); TypeError otherwise."""
    def bad():
        return ConfigTypeError(
            f"run parameter {key}={value!r}: expected {_type_name(hint)}, got {type(value).__name__}")

    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return value
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own error, which names the offending item of a list
            return _typed(key, value, options[0])
        for option in options:
            try:
                return _typed(key, value, option)
            except TypeError:
                continue
        raise bad()
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise bad()
        return [_typed(f"{key}[{i}]", v, typing.get_args(hint)[0]) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad()
        key_type, value_type = typing.get_args(hint)
        return {_typed(f"{key} key", k, key_type): _typed(f"{key}.{k}", v, value_type) for k, v in value.items()}
    if hint is type(None):
        if value is not None:
            raise bad()
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        return value
    if not isinstance(value, hint):
        raise bad()
    return value


def load_run_file(path: Path | str) -> dict[str, Any]:
    """A YAML or JSON file of run parameters, as a mapping; errors name the file (and the line of a YAML error)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such run configuration file")
    values = yamlio.load_file(path)
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of run parameters, got {type(values).__name__}")
    return values
