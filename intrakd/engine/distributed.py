"""Multi-process (DDP) training: the process group of one run (what each process of a torchrun job shares).

How a run is launched on N processes, and how a failed one reports back: :mod:`intrakd.engine.launch`.
A process started by torchrun finds ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` in its environment
(:func:`launcher_env`) and joins the group (:func:`init_process_group`). On a CPU-only machine the processes use
gloo (tests); on CUDA, NCCL with the GPU ``LOCAL_RANK``.

What changes against one process
--------------------------------
* ``batch_size`` stays the *global* batch: each process takes ``batch_size // nproc`` images per step
  (``batch_size`` must be divisible by ``nproc``), so iterations per epoch and the poly schedule are unchanged.
  The learning rate is **not** rescaled (the global batch is the paper's; there is nothing to rescale).
* BatchNorm: with ``sync_bn`` (default) on CUDA, the student's and the method's BatchNorm layers become
  ``SyncBatchNorm``, so statistics are those of the global batch as in one process. gloo has no SyncBatchNorm:
  on CPU each process normalises its own share of the batch (and process 0's running statistics are kept,
  which DDP broadcasts at every step).
* Data order: a ``DistributedSampler`` whose epoch is ``epoch_seed(seed, epoch)``; an item's augmentation comes
  from (``epoch_seed(seed, epoch)``, item) whichever process loads it, dropout from ``epoch_seed + r`` on process
  r; ``data_sha256`` in metrics.json covers process 0's share of the data. A killed run resumes exactly (every
  process loads the same ``ckpt/last.pt``), but the result of an N-process run differs from a one-process run of
  the same seed, and the checkpoint of one is stale for the other (``nproc`` is part of the fingerprint).
* The student is wrapped in ``DistributedDataParallel``; the method's trainable extras (adaptors,
  discriminators) are averaged by :meth:`ProcessGroup.average_gradients` before every optimiser step,
  including optimisers a method steps itself (SKD's discriminator).
* Process 0 alone evaluates, logs and writes ``history.csv``, ``ckpt/last.pt``, ``model.pt`` and
  ``metrics.json``; the others wait at a barrier. ``metrics.json`` records ``world_size``,
  ``effective_batch_size`` (global) and, under ``distributed``, a SHA-256 of every process's parameters
  (``replicas_identical`` checks DDP kept the replicas in step). Peak memory is process 0's.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

# A barrier waits while process 0 validates a whole split; NCCL's default (10 min) would abort a long one.
TIMEOUT = datetime.timedelta(hours=2)


@dataclass(frozen=True)
class LauncherEnv:
    rank: int
    world_size: int
    local_rank: int


def launcher_env() -> LauncherEnv | None:
    """``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` set by torchrun (or srun wrappers); None outside a launcher."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    values = {}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        raw = os.environ.get(key, os.environ["RANK"] if key == "LOCAL_RANK" else None)
        try:
            values[key] = int(raw)
        except ValueError:
            raise ValueError(f"environment variable {key}={raw!r}: expected an integer (set by torchrun)") from None
    if values["WORLD_SIZE"] < 1 or not 0 <= values["RANK"] < values["WORLD_SIZE"]:
        raise ValueError(f"environment RANK={values['RANK']} WORLD_SIZE={values['WORLD_SIZE']}: expected "
                         "0 <= RANK < WORLD_SIZE")
    return LauncherEnv(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])


@dataclass
class ProcessGroup:
    """This process's place in the run. The default (one process) makes every collective a no-op."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device | None = None  # None: one process, the engine resolves cfg.device itself
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if not self.active:
            return
        if self.backend == "nccl":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()

    # ------------------------------------------------------------------ models
    def uses_sync_bn(self, enabled: bool) -> bool:
        """Whether BatchNorm is synchronised: only with NCCL (gloo has no SyncBatchNorm; CPU processes normalise
        their own share of the batch)."""
        return self.active and enabled and self.backend == "nccl"

    def convert_sync_batchnorm(self, module: nn.Module, enabled: bool) -> nn.Module:
        """BatchNorm -> SyncBatchNorm when :meth:`uses_sync_bn` (parameters kept, so optimisers built later see
        the same tensors)."""
        return nn.SyncBatchNorm.convert_sync_batchnorm(module) if self.uses_sync_bn(enabled) else module

    def wrap(self, module: nn.Module) -> nn.Module:
        """The module to call in training: DDP around it in a group, the module itself alone. Every student
        parameter lies on the path of the engine's own losses (segmentation logits, lane existence: see
        tests/test_engine_ddp.py), so no method can leave one unused and ``find_unused_parameters`` is off."""
        if not self.active:
            return module
        ids = [self.device.index] if self.backend == "nccl" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=False)

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy process 0's parameters and buffers into ``module`` on every process."""
        if not self.active:
            return
        with torch.no_grad():
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)

    def average_gradients(self, params: Iterable[torch.Tensor]) -> None:
        """Average ``.grad`` over processes, in two collectives. A gradient missing on every process stays
        None (as in one process: SGD then leaves that tensor alone); one missing on some counts as zero."""
        if not self.active:
            return
        params = [p for p in params if p.requires_grad]
        if not params:
            return
        present = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=self.device)
        dist.all_reduce(present)
        used = [p for p, n in zip(params, present.tolist()) if n]
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for p in used:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            by_dtype.setdefault(p.grad.dtype, []).append(p)
        for group in by_dtype.values():
            flat = torch.cat([p.grad.reshape(-1) for p in group])
            dist.all_reduce(flat)
            flat /= self.world_size
            offset = 0
            for p in group:
                n = p.grad.numel()
                p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
                offset += n

    @contextmanager
    def synced_optimizers(self, exclude: torch.optim.Optimizer):
        """While open, every optimiser but ``exclude`` averages its gradients before stepping (optimisers a
        method owns and steps itself, e.g. SKD's discriminator). ``exclude`` (the engine's own, stepped through
        the GradScaler) is synced explicitly before ``scaler.step`` so every process sees the same inf check."""
        if not self.active:
            yield
            return

        def hook(optimizer, _args, _kwargs):
            if optimizer is not exclude:
                self.average_gradients(p for g in optimizer.param_groups for p in g["params"])

        handle = register_optimizer_step_pre_hook(hook)
        try:
            yield
        finally:
            handle.remove()

    # ------------------------------------------------------------------ values
    def mean(self, values: list[float]) -> list[float]:
        """Element-wise mean over processes (float64)."""
        if not self.active or not values:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return (t / self.world_size).tolist()

    def any(self, flag: bool) -> bool:
        """True on every process when ``flag`` is true on one."""
        if not self.active:
            return bool(flag)
        t = torch.tensor([int(bool(flag))], dtype=torch.int32, device=self.device)
        dist.all_reduce(t)
        return bool(t.item())

    def gather(self, obj) -> list:
        """``[obj of process 0, obj of process 1, ...]`` on every process."""
        if not self.active:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        """Process 0's ``obj`` on every process."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def init_process_group(env: LauncherEnv, device_name: str) -> ProcessGroup:
    """Join the group torchrun set up: NCCL on GPU ``LOCAL_RANK`` when the run uses CUDA, gloo on CPU.
    ``device_name`` is a validated ``RunConfig.device`` of a multi-process run: "auto", "cpu" or "cuda"."""
    from intrakd.engine import provenance

    if provenance.resolve_device(device_name).type == "cuda":
        if env.local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={env.local_rank} but only {torch.cuda.device_count()} GPU(s) are visible: "
                             "start at most one process per GPU")
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", timeout=TIMEOUT, device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo", timeout=TIMEOUT)
    return ProcessGroup(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=env.local_rank,
                        device=device, backend=dist.get_backend())


def parameter_digest(*modules: nn.Module) -> str:
    """SHA-256 of the bytes of every parameter of ``modules`` (in order): equal digests, equal weights."""
    h = hashlib.sha256()
    for module in modules:
        for name, p in module.named_parameters():
            h.update(name.encode())
            h.update(p.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()
