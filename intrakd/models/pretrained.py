"""Pretrained backbones: the run key ``backbone_weights`` (``none``, ``imagenet`` or a file path).

* ``none``: the network keeps its own initialisation (nothing is read; the default).
* ``imagenet``: torchvision's ImageNet weights of the architecture the model declares (``imagenet_backbone``:
  ResNet-18 for the ResNet-18 student and SwiftNetRN-18, ResNet-101 for the PSPNet and DeepLabv3+ teachers), the
  ``IMAGENET1K_V1`` weights: the ones torchvision served when the paper's code bases loaded
  ``model_zoo.load_url(model_urls[...])`` (``IMAGENET1K_V2`` came with torchvision 0.13, in 2022). The file is
  read from torch's hub cache (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``);
  when it is not there it is downloaded once (30 s timeout) unless ``INTRAKD_OFFLINE=1``; when that fails the
  run stops before training with one line naming the file it expected and where to put it.
* a path: a state dict in torchvision's layout (``conv1.weight``, ``layer1.0...``, ``fc.*`` skipped), in this
  project's (an ``intrakd`` ``model.pt``, or a plain state dict with this model's names), or, for ERFNet, the
  official ERFNet's (``encoder.layers.N...``, the Cityscapes checkpoint the ERFNet-CULane recipe starts from);
  ``{"state_dict": ...}`` wrappers and DataParallel's ``module.`` prefix are accepted.

Loading is strict over the backbone: every backbone tensor of the model (``backbone.*`` of the ResNet-based
networks; all but the output layer and the existence head of ENet and ERFNet) must be in the file with its
shape, or the run stops naming the key. BatchNorm's ``num_batches_tracked`` counters are neither needed nor
loaded. Tensors of the file the backbone does not use are listed as ``skipped``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

NONE, IMAGENET = "none", "imagenet"
#: torchvision weights enum of each ImageNet architecture a model may declare (``SegModel.imagenet_backbone``)
IMAGENET_WEIGHTS = {"resnet18": ("ResNet18_Weights", "IMAGENET1K_V1"),
                    "resnet101": ("ResNet101_Weights", "IMAGENET1K_V1")}
DOWNLOAD_TIMEOUT_S = 30
OFFLINE_ENV = "INTRAKD_OFFLINE"


class BackboneWeightsError(ValueError):
    """A ``backbone_weights`` request that cannot be met (one line naming the file, key or model)."""


class MissingBackboneWeights(BackboneWeightsError):
    """The ImageNet file is neither in torch's hub cache nor downloadable."""


def backbone_keys(model: nn.Module) -> list[str]:
    """State-dict names of ``model``'s pretrained part (``num_batches_tracked`` counters aside)."""
    keys = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    prefix = getattr(model, "backbone_prefix", "")
    if prefix:
        return [k for k in keys if k.startswith(prefix)]
    return [k for k in keys if not k.startswith(tuple(getattr(model, "head_prefixes", ())))]


def imagenet_weights(arch: str):
    """torchvision's weights entry for ``arch`` (``ResNet18_Weights.IMAGENET1K_V1``...)."""
    import torchvision.models

    enum, member = IMAGENET_WEIGHTS[arch]
    return getattr(getattr(torchvision.models, enum), member)


def imagenet_file(arch: str) -> Path:
    """Where torch's hub keeps the ImageNet checkpoint of ``arch`` (the file ``weights.get_state_dict`` reads)."""
    name = Path(urlparse(imagenet_weights(arch).url).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _download(url: str, path: Path) -> None:
    """torch.hub's download with a socket timeout, so that a machine without network fails instead of hanging."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), progress=False)
    finally:
        socket.setdefaulttimeout(previous)


def fetch_imagenet(arch: str) -> Path:
    """The cached ImageNet checkpoint of ``arch``, downloaded first when missing and allowed; otherwise one
    :class:`MissingBackboneWeights` line naming the file expected and where to put it."""
    path = imagenet_file(arch)
    if path.is_file():
        return path
    weights = imagenet_weights(arch)
    enum = f"torchvision.models.{IMAGENET_WEIGHTS[arch][0]}.{IMAGENET_WEIGHTS[arch][1]}"
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        why = f"{OFFLINE_ENV} is set"
    else:
        try:
            _download(weights.url, path)
            return path
        except Exception as err:  # noqa: BLE001 -- no network, DNS, HTTP, disk: all end in the same advice
            reason = str(err).splitlines()[0] if str(err).strip() else ""
            why = f"download failed: {type(err).__name__}{': ' + reason if reason else ''}"
    raise MissingBackboneWeights(
        f"backbone_weights imagenet: {path} not found ({why}); it holds {enum} ({weights.url}): "
        f"download that file on a machine with network and put it at {path} (torch's hub cache, "
        f"$TORCH_HOME/hub/checkpoints), then rerun")


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: an intrakd ``model.pt``, a ``{"state_dict": ...}`` wrapper or a plain state
    dict (``weights_only`` loading; ``module.`` prefixes removed)."""
    from intrakd.models.checkpoint import load_trusted

    path = Path(path)
    if not path.is_file():
        raise BackboneWeightsError(f"backbone_weights {path}: no such file")
    blob = load_trusted(path)
    if isinstance(blob, dict) and isinstance(blob.get("state_dict"), dict):
        blob = blob["state_dict"]
    if not isinstance(blob, dict) or not blob or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise BackboneWeightsError(f"backbone_weights {path}: expected a state dict (names -> tensors), "
                                   f"an intrakd model.pt or a {{'state_dict': ...}} checkpoint")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in blob.items()}


def _own_names(model: nn.Module, source: dict[str, torch.Tensor]) -> dict[str, str]:
    """{name in ``model`` -> name in ``source``}: the file's names read in the model's layout (its own, torchvision's
    for a ResNet backbone, or one of the model's ``layout_aliases``)."""
    prefix = getattr(model, "backbone_prefix", "")
    aliases = tuple(getattr(model, "layout_aliases", ()))
    torchvision_layout = bool(prefix) and not any(k.startswith(prefix) for k in source)
    names = {}
    for k in source:
        own = k
        for other, mine in aliases:
            if k.startswith(other):
                own = mine + k[len(other):]
                break
        if torchvision_layout:
            own = prefix + own
        names[own] = k
    return names


def load_backbone(model: nn.Module, backbone_weights: str, model_name: str) -> dict:
    """Load ``backbone_weights`` into ``model``'s backbone, strictly; returns the record kept in metrics.json:
    ``{source, file, loaded_tensors, skipped}``. ``none`` changes nothing."""
    if backbone_weights == NONE:
        return {"source": NONE, "file": None, "loaded_tensors": 0, "skipped": []}
    if backbone_weights == IMAGENET:
        arch = getattr(model, "imagenet_backbone", None)
        if arch is None:
            raise BackboneWeightsError(f"backbone_weights imagenet: model {model_name} has no ImageNet backbone; "
                                       "use none, or a path to a checkpoint of this network")
        path = fetch_imagenet(arch)
        source = f"imagenet (torchvision {IMAGENET_WEIGHTS[arch][0]}.{IMAGENET_WEIGHTS[arch][1]})"
    else:
        path, source = Path(backbone_weights), str(backbone_weights)
    tensors = read_state_dict(path)
    names = _own_names(model, tensors)
    own = model.state_dict()
    wanted = backbone_keys(model)
    if not wanted:
        raise BackboneWeightsError(f"backbone_weights {source}: model {model_name} declares no backbone tensors")
    matched = {}
    for key in wanted:
        if key not in names:
            raise BackboneWeightsError(
                f"backbone_weights {path}: no tensor for {model_name}'s backbone key {key!r} "
                f"(the file has {len(tensors)} tensors, e.g. {sorted(tensors)[:3]})")
        src = tensors[names[key]]
        if tuple(src.shape) != tuple(own[key].shape):
            raise BackboneWeightsError(
                f"backbone_weights {path}: shape of {names[key]!r} is {tuple(src.shape)}, {model_name}'s backbone "
                f"key {key!r} has {tuple(own[key].shape)} (a width other than 1.0, or another network?)")
        matched[key] = src.to(dtype=own[key].dtype)
    unexpected = model.load_state_dict(matched, strict=False).unexpected_keys
    assert not unexpected, unexpected  # matched holds the model's own names only
    used = {names[k] for k in matched}
    skipped = sorted(k for k in tensors if k not in used and not k.endswith("num_batches_tracked"))
    return {"source": source, "file": str(path), "loaded_tensors": len(matched), "skipped": skipped}


def check_request(backbone_weights: str, model_name: str, width: float) -> None:
    """The checks that need no file reading (run at configuration time): a model without an ImageNet backbone, a
    width other than 1.0 with ImageNet weights, a path that is not a file."""
    if backbone_weights == NONE:
        return
    if backbone_weights == IMAGENET:
        from intrakd.models.summary import meta_model

        if getattr(type(meta_model(model_name, 2)), "imagenet_backbone", None) is None:
            raise BackboneWeightsError(f"backbone_weights imagenet: model {model_name} has no ImageNet backbone; "
                                       "use none, or a path to a checkpoint of this network")
        if float(width) != 1.0:
            raise BackboneWeightsError(f"backbone_weights imagenet needs width 1.0 (the published network), "
                                       f"got width {width} for {model_name}")
        return
    if not Path(backbone_weights).is_file():
        raise BackboneWeightsError(f"backbone_weights {backbone_weights!r}: expected none, imagenet or the path of "
                                   "a weights file; no such file")
