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


@dataclass
class RunConfig:
    """Everything one run needs. Paths are plain strings so the object round-trips through JSON/YAML."""

    role: str = "student"  # "student" or "teacher" (a teacher run is a plain supervised run of a teacher model)
    dataset: str = "apolloscape"
    data_root: str = "data/apolloscape"
    data_source: str = "synthetic"  # free text recorded in metrics.json and tables ("synthetic" or "real")
    student: str = "erfnet"
    width: float = 1.0
    # the trained network's pretrained backbone: "none" (its own initialisation), "imagenet" (torchvision's ImageNet
    # weights, from torch's hub cache) or the path of a weights file (intrakd.models.pretrained)
    backbone_weights: str = "none"
    method: str = "baseline"
    method_options: dict[str, Any] = field(default_factory=dict)
    method_weights: dict[str, float] = field(default_factory=dict)
    # Name of this configured variant of ``method`` (e.g. "intra_k9" for a kernel-size sweep); it is the method
    # name recorded in metrics.json and the tables. None: the method's own name.
    variant: str | None = None
    teacher: str | None = None
    teacher_width: float = 1.0
    teacher_checkpoint: str | None = None
    seed: int = 0
    epochs: int = 1
    batch_size: int = 2
    optimizer: str = "sgd"  # "sgd" (the paper recipe's) | "adam" | "adamw"; the poly schedule applies to all
    lr: float = 0.01
    momentum: float = 0.9  # SGD only
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    lr_schedule: str = "poly"  # "poly" | "cosine" (to min_lr), per iteration (intrakd.engine.optim)
    min_lr: float = 0.0  # the cosine schedule's last learning rate
    betas: list[float] | None = None  # Adam/AdamW betas (None: torch's 0.9, 0.999)
    # learning-rate and weight-decay multipliers by parameter group (intrakd.engine.optim; 1 and false: one group)
    head_lr_mult: float = 1.0  # student parameters outside the backbone
    backbone_lr_mult: float = 1.0  # the backbone's (what backbone_weights loads)
    backbone_wd_mult: float = 1.0  # weight decay of the backbone
    bias_lr_mult: float = 1.0  # biases (normalisation layers aside), on top of the part's multiplier
    no_decay_norm_bias: bool = False  # no weight decay on normalisation-layer parameters and biases
    exist_weight: float = 0.1
    input_size: list[int] | None = None  # [W, H] the network sees (None: the paper recipe's size)
    crop: list[int] | None = None  # [W, H] random training crop after resizing (None: no crop)
    rotate_deg: float | None = None  # training rotation (None: the recipe's)
    train_split: str = "train"
    eval_split: str = "val"
    val_every: int = 1  # epochs between validations (0: only at the end)
    max_iters_per_epoch: int | None = None  # cap for smoke runs
    max_eval_images: int | None = None
    # ApolloScape's test: "single" (one scale at input_size), "official" (test_*_multi_scale.py as released: 4 scales
    # x 4 corner crops, scale 0 computed but never added), "all" (the four scales added); see intrakd.data.apolloscape
    eval_scales: str = "single"
    num_workers: int = 0
    threads: int = 0  # torch intra-op threads (0: leave torch's default)
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    amp: bool = True  # mixed precision on CUDA (bf16 where supported, else fp16 with loss scaling)
    cpu_amp: bool = False  # bf16 autocast on the CPU (fast where the CPU has AVX-512 BF16 / AMX; slow elsewhere)
    channels_last: bool = True  # NHWC memory format for the networks and inputs (CUDA and CPU)
    torch_compile: bool = False  # torch.compile the student's and the teacher's forward passes
    # Processes for this run (one per GPU on CUDA, gloo processes on CPU); > 1 trains with DDP under torchrun,
    # batch_size staying the global batch (see intrakd.engine.distributed).
    nproc: int = 1
    sync_bn: bool = True  # BatchNorm -> SyncBatchNorm when nproc > 1 on CUDA (gloo has none: ignored on CPU)
    out_dir: str = "results/runs/example"
    keep_checkpoints: bool = False  # keep ckpt/ (the resume state) once the run has finished and written its sidecars

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunConfig":
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
        """Check every value against its declared type, names against the registries and values against their
        ranges; one clear error each."""
        from intrakd.data import DATASETS
        from intrakd.distill import METHOD_REGISTRY
        from intrakd.models import MODEL_REGISTRY

        self.check_types()
        _choice("dataset", self.dataset, DATASETS)
        _choice("student", self.student, MODEL_REGISTRY)
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
        if self.role not in ("student", "teacher"):
            raise ValueError(f"role must be 'student' or 'teacher', got {self.role!r}")
        for key in ("epochs", "batch_size"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)!r}")
        if self.nproc < 1:  # its type (an int, not a bool) is checked by check_types
            raise ValueError(f"nproc must be >= 1 (processes for this run), got {self.nproc!r}")
        if self.nproc > 1:
            if int(self.batch_size) % self.nproc:
                raise ValueError(f"batch_size {self.batch_size} is not divisible by nproc {self.nproc}: batch_size is "
                                 "the global batch, split evenly over the processes")
            if self.device not in ("auto", "cpu", "cuda"):
                raise ValueError(f"device {self.device!r} with nproc {self.nproc}: expected 'auto', 'cpu' or 'cuda' "
                                 "(each process takes the GPU numbered by its LOCAL_RANK)")
        from intrakd.data.apolloscape import EVAL_SCALES

        if self.eval_scales not in EVAL_SCALES:
            raise ValueError(f"eval_scales must be one of {', '.join(EVAL_SCALES)}, got {self.eval_scales!r}")
        if self.eval_scales != "single" and self.dataset != "apolloscape":
            raise ValueError(f"eval_scales {self.eval_scales!r} is ApolloScape's multi-scale test; dataset "
                             f"{self.dataset!r} has none: use 'single'")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        for key in ("lr", "width", "teacher_width"):
            if not float(getattr(self, key)) > 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)!r}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, got {self.lr_schedule!r}")
        if not 0 <= float(self.min_lr) < float(self.lr):
            raise ValueError(f"min_lr must be >= 0 and below lr ({self.lr}), got {self.min_lr!r}")
        if self.betas is not None and (len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas)):
            raise ValueError(f"betas must be [beta1, beta2] in [0, 1), got {self.betas!r}")
        for key in ("head_lr_mult", "backbone_lr_mult", "backbone_wd_mult", "bias_lr_mult"):
            if not float(getattr(self, key)) >= 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)!r}")
        from intrakd.models.pretrained import check_request

        check_request(self.backbone_weights, self.student, self.width)
        for key in ("input_size", "crop"):
            size = getattr(self, key)
            if size is not None and (len(size) != 2 or any(int(s) % 8 for s in size)):
                raise ValueError(f"{key} must be [W, H] with both divisible by 8, got {size!r}")
        return self


OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("poly", "cosine")


def _choice(key: str, value: Any, valid) -> None:
    if value not in valid:
        raise ValueError(f"unknown {key} {value!r}; valid: {', '.join(sorted(valid))}")


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
