"""One training run: RunConfig -> data, student, teacher, method -> loop -> checkpoint/resume -> sidecars.

Outputs in ``cfg.out_dir``:
  ``metrics.json`` (written last: its presence means the run finished), ``history.csv`` (one row per epoch),
  ``model.pt`` (final student weights, ``intrakd.models.checkpoint`` format), ``ckpt/last.pt`` (resume state,
  rewritten atomically after every epoch, the one it replaces kept as ``ckpt/prev.pt``; a killed run resumes
  from the newest readable one exactly). Every file is written through :mod:`intrakd.atomic` (fsync, rename).
A run whose checkpoint already holds the last epoch trains nothing and writes its outputs from the checkpoint
(``history.csv`` from its record, ``model.pt`` and ``metrics.json`` from its weights): rerunning a finished run, or
one killed after its last checkpoint, reproduces the uninterrupted run's outputs.
With ``nproc`` > 1 the run trains with DDP under torchrun: see :mod:`intrakd.engine.distributed` for how to run
on N GPUs and what changes (global batch, SyncBatchNorm, learning rate not rescaled).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

from intrakd import atomic, vcs
from intrakd.engine import distributed, provenance
from intrakd.engine.config import RENAMED, RunConfig
from intrakd.engine.errors import NonFiniteLossError
from intrakd.engine.evaluate import evaluate, floor, per_class
from intrakd.engine.optim import build_optimizer, param_groups, scheduled_lr


#: RunConfig keys that do not change a run's weights or history, so a checkpoint written under other values of
#: them is resumed: where the outputs go, data-loader workers and CPU threads (augmentation is seeded per item, so
#: the data order and content do not depend on workers), the device (a run may resume elsewhere; the arithmetic is
#: then the new device's), and the free-text data note recorded in metrics.json.
RESULT_NEUTRAL = ("out_dir", "num_workers", "threads", "device", "data_source", "keep_checkpoints")
#: RunConfig keys under the names checkpoints were fingerprinted with before they were renamed
#: (intrakd.engine.config.RENAMED, inverted), so a run resumes from a checkpoint written before the rename.
_FINGERPRINT_NAMES = {new: old for old, new in RENAMED.items()}
#: RunConfig keys added after checkpoints were first written, with the values that keep a run as it was: left out of
#: the fingerprint at those values, so a checkpoint written before they existed is still resumed.
LATER_KEYS = ("backbone_weights", "lr_schedule", "min_lr", "betas", "head_lr_mult", "backbone_lr_mult",
              "backbone_wd_mult", "bias_lr_mult", "no_decay_norm_bias", "eval_scales")
#: The checkpoint replaced by the newest one, kept beside ``ckpt/last.pt`` (see Trainer.save_checkpoint).
PREVIOUS_CHECKPOINT = "prev.pt"
CHECKPOINT_KEYS = {"epoch", "elapsed", "student", "method", "optimizer", "scaler", "history", "fingerprint"}
#: Files of a run folder written through intrakd.atomic (their stale temporaries are removed when a run starts).
RUN_FILES = ("metrics.json", "history.csv", "model.pt")


def _result_settings(cfg: dict) -> dict:
    """The settings of a run configuration (a dict) that change its result: all but :data:`RESULT_NEUTRAL`, and
    not the teacher's width in a run without a teacher (the train notebook used to default it to 0.25 where
    RunConfig says 1.0: a checkpoint written under either value is resumed)."""
    return {k: v for k, v in cfg.items()
            if k not in RESULT_NEUTRAL and not (k == "teacher_width" and cfg.get("teacher") is None)}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """Data order and augmentation of epoch ``epoch`` depend on (seed, epoch) only: resume is exact."""
    return (seed * 1_000_003 + epoch * 7_919) % 2**31


def _write_json(obj, path: Path) -> None:
    atomic.write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _write_history(rows: list[dict], path: Path) -> None:
    if not rows:
        return
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(path, buf.getvalue())


def _seconds_per_step(history: list[dict]) -> float | None:
    """Mean wall time of one training step (forward, distillation terms, backward, update) over the run."""
    timed = [r for r in history if "train_seconds" in r]
    steps = sum(r.get("steps", 0) for r in timed)
    return round(sum(r["train_seconds"] for r in timed) / steps, 4) if steps else None


def iters_per_epoch(n_items: int, batch_size: int, world_size: int = 1, max_iters: int | None = None) -> int:
    """Training steps of one epoch over ``n_items`` images: each of ``world_size`` processes takes an equal share
    of the (padded) set, ``ceil(n_items / world_size)``, in batches of ``batch_size / world_size``; the loader drops
    a partial last batch (one batch when the share is smaller than a batch); at most ``max_iters``."""
    share = math.ceil(n_items / world_size)
    steps = max(1, share // (batch_size // world_size))
    return min(steps, int(max_iters)) if max_iters else steps


class Trainer:
    """Holds the pieces of a run; :func:`train` is the one public entry point."""

    def __init__(self, cfg: RunConfig, group: distributed.ProcessGroup | None = None):
        from intrakd.data import DATASETS, build_dataset
        from intrakd.distill import build_method
        from intrakd.models import build_model
        from intrakd.models.checkpoint import load_weights
        from intrakd.models.pretrained import load_backbone

        self.cfg = cfg  # validated by train(), the one entry point
        self.group = group or distributed.ProcessGroup()
        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        self.device = self.group.device or provenance.resolve_device(cfg.device)
        self.cuda = self.device.type == "cuda"
        seed_everything(cfg.seed)
        if not self.cuda:
            torch.use_deterministic_algorithms(True, warn_only=True)

        self.spec = DATASETS[cfg.dataset]
        size = dict(input_size=tuple(cfg.input_size) if cfg.input_size else None)
        self.train_set = build_dataset(
            cfg.dataset, cfg.data_root, cfg.train_split, train=True,
            crop=tuple(cfg.crop) if cfg.crop else None, rotate_deg=cfg.rotate_deg, **size,
        )
        self.eval_set = build_dataset(cfg.dataset, cfg.data_root, cfg.eval_split, train=False, **size)
        self.multiscale = None
        if cfg.eval_scales != "single":  # ApolloScape's multi-scale test (RunConfig.validate checked the dataset)
            from intrakd.data.apolloscape import multiscale_test

            self.multiscale = multiscale_test(self.eval_set.input_size, cfg.model, cfg.eval_scales)

        # the schedule, known before the method is built (SAD's start_fraction reads total_steps); per process: an
        # equal share of the (padded) data set in batches of batch_size / world_size, the loader's full batches only
        # (it drops a partial last one: see loader()), so the global steps run 0..total_iters - 1 without a gap
        self.local_batch = cfg.batch_size // self.group.world_size
        self.iters_per_epoch = iters_per_epoch(len(self.train_set), cfg.batch_size, self.group.world_size,
                                               cfg.max_iters_per_epoch)
        self.total_iters = self.iters_per_epoch * cfg.epochs

        # Common random numbers: the student's initial weights depend on the seed alone (nothing above draws from
        # the RNG, and the teacher and the method are built after it), so runs of one seed start equal whatever
        # their method; ``init_sha256`` in metrics.json records it.
        torch.manual_seed(cfg.seed)
        self.student = build_model(
            cfg.model, self.spec.num_classes, width=cfg.width, exist_head=self.spec.has_exist
        )
        # pretrained backbone (``none``: untouched); before the digest, which records the weights training starts from
        self.backbone_record = load_backbone(self.student, cfg.backbone_weights, cfg.model)
        self.init_digest = distributed.parameter_digest(self.student)
        self.student.to(self.device)
        self.teacher = None
        if cfg.teacher_checkpoint and cfg.teacher:
            self.teacher, self.teacher_meta = load_weights(
                cfg.teacher_checkpoint, name=cfg.teacher, num_classes=self.spec.num_classes,
                width=cfg.teacher_width, map_location=self.device,
            )
            self.teacher.to(self.device).eval()
            for p in self.teacher.parameters():
                p.requires_grad_(False)
        self.method = build_method(
            cfg.method, self.student, self.teacher, self.spec.num_classes,
            weights=cfg.method_weights or None, total_steps=self.total_iters, **cfg.method_options,
        ).to(self.device)
        if cfg.channels_last:
            self.student.to(memory_format=torch.channels_last)
            if self.teacher is not None:
                self.teacher.to(memory_format=torch.channels_last)
        self.student = self.group.convert_sync_batchnorm(self.student, cfg.sync_bn)
        self.method = self.group.convert_sync_batchnorm(self.method, cfg.sync_bn)
        self.student_forward = self.student  # DDP-wrapped in run(), after resuming, when in a process group

        self.method_params = [p for p in self.method.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(cfg, param_groups(cfg, self.student, self.method_params))
        self.class_weights = torch.tensor(self.spec.class_weights, dtype=torch.float32, device=self.device)
        self.amp_dtype = None
        if self.cuda and cfg.amp:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        elif not self.cuda and cfg.cpu_amp:
            self.amp_dtype = torch.bfloat16
            if not provenance.cpu_has_bf16():
                print("warning: cpu_amp on a CPU without native bf16 (AVX-512 BF16 / AMX): bf16 autocast is emulated "
                      "and slower than fp32; set cpu_amp: false", flush=True)
        self.teacher_forward = self.teacher
        if cfg.torch_compile and self.teacher is not None:  # the student's forward is compiled in run(), once wrapped
            self.teacher_forward = torch.compile(self.teacher)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype is torch.float16)

        self.ckpt_path = cfg.out / "ckpt" / "last.pt"
        self.history: list[dict] = []
        self.matched_size: int | None = None
        self.start_epoch = 0
        self.elapsed_before = 0.0

    # ------------------------------------------------------------------ checkpointing
    def state(self, epoch: int, elapsed: float) -> dict:
        return {
            "epoch": epoch,
            "elapsed": elapsed,
            "student": self.student.state_dict(),
            "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": self.history,
            "matched_size": self.matched_size,
            "fingerprint": self.fingerprint(),
        }

    def fingerprint(self) -> dict:
        """What a checkpoint must share with this run to be resumed: every setting that changes the result (all
        RunConfig keys but :data:`RESULT_NEUTRAL`) and the identity of the inputs (a retrained teacher or
        regenerated data makes an old checkpoint stale)."""
        cfg = _result_settings(self.cfg.to_dict())
        if self.cfg.nproc == 1:  # one process: as before these keys existed, so older checkpoints stay valid
            cfg.pop("nproc"), cfg.pop("sync_bn")
        defaults = RunConfig().to_dict()
        for key in LATER_KEYS:  # likewise for keys added later, at their defaults
            if cfg.get(key) == defaults[key]:
                cfg.pop(key)
        cfg = {_FINGERPRINT_NAMES.get(k, k): v for k, v in cfg.items()}  # older checkpoints stay valid

        def stamp(path):
            if not path:
                return None
            st = Path(path).stat()
            return [st.st_size, st.st_mtime_ns] if Path(path).is_file() else [st.st_mtime_ns]

        out = {"config": cfg, "teacher": stamp(self.cfg.teacher_checkpoint), "data": stamp(self.cfg.data_root)}
        if self.cfg.backbone_weights not in ("none", "imagenet"):  # a retrained backbone file makes a checkpoint stale
            out["backbone"] = stamp(self.cfg.backbone_weights)
        return out

    @property
    def prev_ckpt_path(self) -> Path:
        return self.ckpt_path.with_name(PREVIOUS_CHECKPOINT)

    def save_checkpoint(self, state: dict) -> None:
        """Write ``ckpt/last.pt`` durably, keeping the checkpoint it replaces as ``ckpt/prev.pt``: whatever moment
        a run is killed at, one of the two is a complete checkpoint."""
        data = atomic.torch_bytes(state)
        if self.ckpt_path.is_file():
            try:
                os.replace(self.ckpt_path, self.prev_ckpt_path)
            except OSError as err:
                raise atomic.write_error(err, self.prev_ckpt_path) from err
        atomic.write_bytes(self.ckpt_path, data)

    def read_checkpoint(self) -> tuple[Path | None, dict | None, list[Path]]:
        """(path, state) of the newest readable checkpoint, ``last.pt`` else ``prev.pt`` ((None, None) when there
        is none), and the unreadable ones (truncated, empty, not a resume checkpoint), each warned about in one
        line."""
        from intrakd.models.checkpoint import load_trusted

        bad = []
        for path in (self.ckpt_path, self.prev_ckpt_path):
            if not path.is_file():
                continue
            try:
                state = load_trusted(path, map_location=self.device)
                if not isinstance(state, dict) or not CHECKPOINT_KEYS <= set(state):
                    raise ValueError(f"checkpoint {path} is not an intrakd resume checkpoint "
                                     f"(expected the keys {sorted(CHECKPOINT_KEYS)})")
            except ValueError as err:
                bad.append(path)
                if self.group.is_main:
                    fallback = path == self.ckpt_path and self.prev_ckpt_path.is_file()
                    then = f"falling back to {self.prev_ckpt_path}" if fallback else "starting afresh"
                    print(f"warning: {err}; {then}", flush=True)
                continue
            return path, state, bad
        return None, None, bad

    def maybe_resume(self) -> bool:
        path, state, bad = self.read_checkpoint()
        self.group.barrier()  # every process has read the checkpoint before process 0 may remove a stale one
        if self.group.is_main:  # an unreadable file must not be kept as the previous checkpoint by the next save
            for p in bad:
                p.unlink(missing_ok=True)
        if state is None:
            return False
        mine = self.fingerprint()
        saved = state.get("fingerprint", {})
        saved_cfg = _result_settings(saved.get("config", {}))
        diff = sorted(k for k in set(saved_cfg) | set(mine["config"]) if saved_cfg.get(k) != mine["config"].get(k))
        diff += [k for k in ("teacher", "data", "backbone") if saved.get(k) != mine.get(k)]
        if diff:
            if self.group.is_main:
                print(f"ignoring stale checkpoint {path}: written with other settings or inputs ({diff}); "
                      "starting afresh", flush=True)
                self.ckpt_path.unlink(missing_ok=True)
                self.prev_ckpt_path.unlink(missing_ok=True)
            return False
        self.student.load_state_dict(state["student"])
        self.method.load_state_dict(state["method"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.history = list(state["history"])
        self.matched_size = state.get("matched_size")
        self.start_epoch = int(state["epoch"])
        self.elapsed_before = float(state["elapsed"])
        if self.group.is_main:
            print(f"resumed from {path} after epoch {self.start_epoch}/{self.cfg.epochs}", flush=True)
        return True

    # ------------------------------------------------------------------ one epoch
    def lr_at(self, it: int, mult: float = 1.0) -> float:
        return scheduled_lr(self.cfg, it, self.total_iters, mult)

    def loader(self, epoch: int) -> DataLoader:
        seed = epoch_seed(self.cfg.seed, epoch)
        # each item's augmentation comes from (seed, item) alone (SegDataset.set_augment_seed); the global RNGs,
        # which dropout draws from, restart from the epoch seed (process r of a group from seed + r)
        self.train_set.set_augment_seed(seed)
        seed_everything(seed + self.group.rank)
        sampler = None
        if self.group.active:
            sampler = DistributedSampler(self.train_set, num_replicas=self.group.world_size, rank=self.group.rank,
                                         shuffle=True, seed=0)
            sampler.set_epoch(seed)  # the permutation is drawn from seed 0 + epoch_seed(seed, epoch)
        share = len(sampler) if sampler is not None else len(self.train_set)  # images this process sees
        return DataLoader(
            self.train_set, batch_size=self.local_batch, sampler=sampler, shuffle=sampler is None,
            drop_last=share >= self.local_batch, num_workers=self.cfg.num_workers,
            generator=torch.Generator().manual_seed(seed + self.group.rank), pin_memory=self.cuda,
            persistent_workers=False,
        )

    def train_epoch(self, epoch: int) -> dict:
        cfg = self.cfg
        self.student.train()
        self.method.train()
        sums: dict[str, float] = {}
        steps = 0
        data_digest = hashlib.sha256()  # of every image and label this process trained on, in order
        t_start = time.perf_counter()
        for step, batch in enumerate(self.loader(epoch)):
            if step >= self.iters_per_epoch:
                break
            for key in ("image", "label"):
                data_digest.update(batch[key].numpy().tobytes())
            it = epoch * self.iters_per_epoch + step
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr_at(it, group.get("lr_mult", 1.0))
            images = batch["image"].to(self.device, non_blocking=True)
            labels = batch["label"].to(self.device, non_blocking=True)
            if cfg.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            batch_dev = {**batch, "image": images, "label": labels}
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                s_out = self.student_forward(images)
                t_out = None
                if self.teacher is not None:
                    with torch.no_grad():
                        t_out = self.teacher_forward(images)
                terms = {"seg": F.cross_entropy(s_out["logits"].float(), labels, weight=self.class_weights,
                                                ignore_index=self.spec.ignore_index)}
                if self.spec.has_exist and "exist" in s_out:
                    exist = batch["exist"].to(self.device)
                    terms["exist"] = cfg.exist_weight * F.binary_cross_entropy_with_logits(s_out["exist"].float(), exist)
                terms.update(self.method(s_out, t_out, batch_dev, step=it, epoch=epoch))
                if self.matched_size is None:  # Table 4's complexity column, as a count per image
                    self.matched_size = self.method.matched_size(s_out, t_out) or 0
                loss = sum(terms.values())
            finite = bool(torch.isfinite(loss))
            if self.group.any(not finite):  # every process stops together
                bad = {k: float(v.detach()) for k, v in terms.items()} if not finite else "on another process"
                kept = self.ckpt_path if self.ckpt_path.is_file() else "none yet"
                raise NonFiniteLossError(
                    f"non-finite loss at epoch {epoch + 1}, step {step} ({bad}); stopped, last good checkpoint: {kept}"
                )
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.group.average_gradients(self.method_params)  # the student's are averaged by DDP
            self.scaler.step(self.optimizer)
            self.scaler.update()
            extra_step = getattr(self.method, "after_student_step", None)
            if extra_step is not None:  # e.g. SKD's discriminator update
                extra_step(s_out, t_out, batch_dev, step=it, epoch=epoch)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            sums["total"] = sums.get("total", 0.0) + float(loss.detach())
            steps += 1
        if self.group.active:  # the losses of the global batch
            sums = dict(zip(sums, self.group.mean(list(sums.values()))))
        row = {"epoch": epoch + 1, "lr": self.lr_at((epoch + 1) * self.iters_per_epoch - 1), "steps": steps,
               "train_seconds": round(time.perf_counter() - t_start, 3), "data_sha256": data_digest.hexdigest()}
        row.update({f"loss_{k}": v / max(steps, 1) for k, v in sums.items()})
        return row

    def validate_now(self, final: bool = True) -> dict:
        """The run's metric on the evaluation set; the multi-scale test (``eval_scales``) only for the ``final``
        score (the per-epoch validations before it stay at one scale, as the official training scripts' are)."""
        return evaluate(
            self.student, self.eval_set, self.spec, self.device, batch_size=self.cfg.batch_size,
            max_images=self.cfg.max_eval_images, amp=self.amp_dtype is not None,
            multiscale=self.multiscale if final else None,
        )

    def floor_now(self) -> dict:
        """The all-background floor of the evaluation set (same images, same metric as :meth:`validate_now`)."""
        result = floor(self.eval_set, self.spec, self.device, batch_size=self.cfg.batch_size,
                       max_images=self.cfg.max_eval_images)
        return {"predictor": result["predictor"], "value": result["value"], "per_class": per_class(result)}

    def data_digest(self) -> str:
        """SHA-256 over the per-epoch digests of the training data (images and labels, in order)."""
        h = hashlib.sha256()
        for row in self.history:
            h.update(str(row.get("data_sha256", "")).encode())
        return h.hexdigest()

    def wrap_student(self) -> None:
        """The student's training forward: DDP-wrapped in a process group, then compiled when ``cfg.torch_compile``."""
        self.student_forward = self.group.wrap(self.student)
        if self.cfg.torch_compile:
            self.student_forward = torch.compile(self.student_forward)

    # ------------------------------------------------------------------ the run
    def run(self) -> dict:
        from intrakd.models.base import count_params
        from intrakd.models.checkpoint import save_weights

        cfg, group = self.cfg, self.group
        cfg.out.mkdir(parents=True, exist_ok=True)
        if group.is_main:  # temporaries of writes a kill -9 interrupted
            atomic.remove_stale_temps(cfg.out, RUN_FILES)
            atomic.remove_stale_temps(self.ckpt_path.parent, (self.ckpt_path.name, PREVIOUS_CHECKPOINT))
        self.maybe_resume()  # every process loads the same checkpoint
        if group.is_main and self.history:  # the checkpoint's record, even when no epoch is left to train
            _write_history(self.history, cfg.out / "history.csv")
        group.broadcast_module(self.method)  # the method's extras start equal (the student's: DDP does it)
        self.wrap_student()
        t0 = time.perf_counter()
        result = None
        with group.synced_optimizers(exclude=self.optimizer):
            for epoch in range(self.start_epoch, cfg.epochs):
                t_epoch = time.perf_counter()
                row = self.train_epoch(epoch)
                last = epoch + 1 == cfg.epochs
                if group.is_main and (last or (cfg.val_every and (epoch + 1) % cfg.val_every == 0)):
                    result = self.validate_now(final=last)
                    row[f"val_{result['metric']}"] = result["value"]
                row["epoch_seconds"] = round(time.perf_counter() - t_epoch, 3)
                self.history.append(row)
                if group.is_main:
                    _write_history(self.history, cfg.out / "history.csv")
                    self.save_checkpoint(self.state(epoch + 1, self.elapsed_before + time.perf_counter() - t0))
                    losses = ", ".join(f"{k[5:]} {v:.4f}" for k, v in row.items() if k.startswith("loss_"))
                    val = f" | val {result['metric']} {result['value']:.2f}" if f"val_{self.spec.metric}" in row else ""
                    print(f"epoch {epoch + 1}/{cfg.epochs} | {losses} | lr {row['lr']:.5f}{val} | "
                          f"{row['epoch_seconds']:.1f}s", flush=True)
                group.barrier()  # the others wait for process 0's validation and checkpoint
        digests = group.gather(distributed.parameter_digest(self.student, self.method)) if group.active else None
        metrics = None
        if group.is_main:
            if result is None:  # resumed after the last epoch: score the final weights again
                result = self.validate_now()
            wall = self.elapsed_before + time.perf_counter() - t0
            save_weights(
                cfg.out / "model.pt", self.student, name=cfg.model, num_classes=self.spec.num_classes,
                width=cfg.width, exist_head=self.spec.has_exist,
                meta={"dataset": cfg.dataset, "method": cfg.method, "seed": cfg.seed},
            )
            metrics = {
                "role": cfg.role,
                "dataset": cfg.dataset,
                "data_source": cfg.data_source,
                "student": cfg.model,  # the tables' column name (a teacher run: the teacher model)
                "method": cfg.variant or cfg.method,
                "base_method": cfg.method,
                "method_options": cfg.method_options,
                "teacher": cfg.teacher if self.teacher is not None else None,
                "backbone_weights": self.backbone_record,
                "seed": cfg.seed,
                "metric": result["metric"],
                "value": result["value"],
                "per_class": per_class(result),
                "floor": self.floor_now(),
                "result": result,
                "params": count_params(self.student),
                "extra_params_train_only": sum(p.numel() for p in self.method.parameters()),
                "matched_size": self.matched_size or None,
                "seconds_per_step": _seconds_per_step(self.history),
                "epochs": cfg.epochs,
                "iterations": self.total_iters,
                "effective_batch_size": cfg.batch_size,
                "world_size": group.world_size,
                "num_train_images": len(self.train_set),
                "wall_seconds": round(wall, 2),
                **provenance.peak_memory_mb(self.device),
                "device": (f"{group.world_size} x " if group.active else "")
                + provenance.device_description(self.device),
                "versions": provenance.library_versions(),
                "git_commit": vcs.git_commit(),
                # common random numbers: equal digests = equal initial weights / the same training data in order
                "init_sha256": self.init_digest,
                "data_sha256": self.data_digest(),
                "config": cfg.to_dict(),
            }
            if group.active:
                identical = len(set(digests)) == 1
                metrics["distributed"] = {
                    "backend": group.backend,
                    "batch_size_per_process": self.local_batch,
                    "sync_batchnorm": group.uses_sync_bn(cfg.sync_bn),
                    "replica_param_sha256": digests,
                    "replicas_identical": identical,
                }
                if not identical:
                    print(f"warning: the {group.world_size} processes ended with different parameters "
                          f"({digests}); model.pt holds process 0's", flush=True)
            _write_json(metrics, cfg.out / "metrics.json")
            if not cfg.keep_checkpoints:  # finished: the resume state is dead weight once the sidecars exist
                shutil.rmtree(self.ckpt_path.parent, ignore_errors=True)
        return group.broadcast(metrics)


def train(cfg: RunConfig | dict) -> dict:
    """Train (or resume) one run and write its sidecars; returns the metrics dict.

    ``cfg.nproc`` > 1 launches the run under torchrun and returns the metrics it wrote; a process started by
    torchrun (``RANK``/``WORLD_SIZE`` set) trains as one member of that group (:mod:`intrakd.engine.distributed`).
    """
    if isinstance(cfg, dict):
        cfg = RunConfig.from_dict(cfg)
    env = distributed.launcher_env()
    if env is not None:
        if cfg.nproc not in (1, env.world_size):
            raise ValueError(f"nproc={cfg.nproc} but this process was started with WORLD_SIZE={env.world_size}: "
                             f"set nproc to 1 or {env.world_size}, or launch through train() without torchrun")
        cfg = dataclasses.replace(cfg, nproc=env.world_size)  # batch and device are checked for this group
    cfg.validate()  # the one check of a run; everything below trusts it
    if env is None:
        if cfg.nproc > 1:
            return distributed.launch(cfg)
        return Trainer(cfg).run()
    if env.world_size == 1:
        return Trainer(cfg).run()
    group = distributed.init_process_group(env, cfg.device)
    try:
        return Trainer(cfg, group).run()
    finally:
        group.close()
