"""Building blocks shared by several networks: a width-scalable (dilated) ResNet encoder made of
torchvision's residual blocks, the lane-existence head, and small helpers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from intrakd.models.base import SegModel, Tap, scaled


def resize(x: torch.Tensor, size, mode: str = "bilinear") -> torch.Tensor:
    """Resize a B x C x h x w map to ``size`` (no-op when it already has it); bilinear with align_corners=False, the
    convention used across the project (the networks' upsampling and the distillation methods' alignments)."""
    size = tuple(int(s) for s in size)
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def init_conv_bn(module: nn.Module) -> None:
    """torchvision's ResNet initialisation (Kaiming fan-out convs, BN weight 1 / bias 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def set_taps(model: SegModel, taps: list[Tap], roles: dict[str, str], groups: dict[str, list[str]]) -> None:
    """Attach the contract attributes, checking every role/group names a declared tap."""
    names = [t.name for t in taps]
    for ref in list(roles.values()) + [n for g in groups.values() for n in g]:
        if ref not in names:
            raise ValueError(f"{type(model).__name__}: role/group refers to undeclared tap {ref!r}")
    model.feature_info = list(taps)
    model.tap_roles = dict(roles)
    model.tap_groups = {k: list(v) for k, v in groups.items()}


class ResNetEncoder(nn.Module):
    """ResNet stem + layer1..4 from torchvision's ``BasicBlock``/``Bottleneck`` with a width multiplier.

    Module names match ``torchvision.models.resnetXX`` (minus ``fc``), so ImageNet state dicts load at
    width 1.0. ``dilate`` replaces the stride of layer2..4 by dilation (as torchvision's
    ``replace_stride_with_dilation``). ``first_dilation="previous"`` is torchvision's convention (first
    block of a dilated stage keeps the previous dilation); ``"same"`` dilates every block of the stage,
    as the official IntRA-KD ``fc_resnet`` does. torchvision's ``BasicBlock`` refuses dilation, so its
    3x3 convs are patched after construction (recipe in models_baselines.md §A.7).
    """

    def __init__(self, depth: int, width: float = 1.0, dilate=(False, False, False), first_dilation="previous"):
        super().__init__()
        block, layers = {18: (BasicBlock, [2, 2, 2, 2]), 101: (Bottleneck, [3, 4, 23, 3])}[depth]
        if first_dilation not in ("previous", "same"):
            raise ValueError(f"first_dilation must be 'previous' or 'same', got {first_dilation!r}")
        self.block = block
        stem = scaled(64, width)
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.inplanes, self.dilation = stem, 1
        self.stem_channels = stem
        self.channels: list[int] = []
        self.strides: list[int] = []
        stride_now = 4
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            dil = i > 0 and dilate[i - 1]
            layer = self._make_layer(block, scaled(planes, width), n, stride, dil, first_dilation)
            setattr(self, f"layer{i + 1}", layer)
            if stride == 2 and not dil:
                stride_now *= 2
            self.channels.append(self.inplanes)
            self.strides.append(stride_now)
        init_conv_bn(self)

    def _make_layer(self, block, planes, blocks, stride, dilate, first_dilation):
        previous = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        dils = [previous if first_dilation == "previous" else self.dilation] + [self.dilation] * (blocks - 1)
        mods = []
        for j, d in enumerate(dils):
            blk = _block(block, self.inplanes, planes, stride if j == 0 else 1, downsample if j == 0 else None, d)
            mods.append(blk)
            self.inplanes = planes * block.expansion
        return nn.Sequential(*mods)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def stage_taps(self, channels, strides=(4, 4, 8, 8, 8)) -> list[Tap]:
        """Taps ``stem, layer1..layer4`` with their channels and strides (output stride 8 encoders)."""
        chans = [self.stem_channels, *channels]
        names = ["stem", "layer1", "layer2", "layer3", "layer4"]
        return [Tap(n, c, s) for n, c, s in zip(names, chans, strides)]

    def features(self, x: torch.Tensor) -> dict:
        """Run stem and layer1..4, returning every stage output by tap name."""
        feats = {"stem": self.stem(x)}
        y = feats["stem"]
        for i in range(1, 5):
            y = feats[f"layer{i}"] = getattr(self, f"layer{i}")(y)
        return feats


#: Tap groups shared by the ResNet-based networks (SAD's successive blocks, FSP's stage pairs).
RESNET_GROUPS = {"blocks": ["layer2", "layer3", "layer4"], "stages": ["stem", "layer1", "layer2", "layer3", "layer4"]}


def _block(block, inplanes, planes, stride, downsample, dilation):
    if block is Bottleneck:
        return Bottleneck(inplanes, planes, stride, downsample, dilation=dilation)
    blk = BasicBlock(inplanes, planes, stride, downsample)
    if dilation > 1:  # torchvision's BasicBlock raises on dilation>1: patch both 3x3 convs
        for conv in (blk.conv1, blk.conv2):
            conv.dilation, conv.padding = (dilation, dilation), (dilation, dilation)
    return blk


def basic_layer_with_skip(layer: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a stage of torchvision ``BasicBlock``s, also returning the last block's pre-ReLU residual sum
    (SwiftNet's skip tensor); torchvision's block only returns the post-ReLU output."""
    for blk in layer[:-1]:
        x = blk(x)
    blk = layer[-1]
    identity = x if blk.downsample is None else blk.downsample(x)
    out = blk.bn2(blk.conv2(blk.relu(blk.bn1(blk.conv1(x)))))
    skip = out + identity
    return F.relu(skip), skip


class ExistHead(nn.Module):
    """Lane-existence branch of ERFNet-CULane-PyTorch, made input-size agnostic.

    dilated 3x3 conv (d=4) -> BN -> ReLU -> Dropout2d(0.1) -> 1x1 conv to ``num_classes`` -> softmax over
    classes -> pool to the recipe's 13x61 grid -> FC(C*13*61 -> 128) -> ReLU -> FC(128 -> 4).
    The recipe's fixed 2x2 max-pool (13x61 at the 1/8 map of a 976x208 input) is replaced by adaptive
    max-pooling to 13x61, identical at that input size and valid at any other. Returns logits (the
    recipe's trailing sigmoid is left to the loss: it applied sigmoid twice).
    """

    GRID = (13, 61)

    def __init__(self, in_channels: int, num_classes: int, width: float = 1.0, num_lanes: int = 4):
        super().__init__()
        mid, hidden = scaled(32, width), scaled(128, width)
        self.conv1 = nn.Conv2d(in_channels, mid, 3, padding=4, dilation=4, bias=False)
        self.bn1 = nn.BatchNorm2d(mid, eps=1e-3)
        self.dropout = nn.Dropout2d(0.1)
        self.conv2 = nn.Conv2d(mid, num_classes, 1)
        self.fc1 = nn.Linear(num_classes * self.GRID[0] * self.GRID[1], hidden)
        self.fc2 = nn.Linear(hidden, num_lanes)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        x = self.dropout(F.relu(self.bn1(self.conv1(feat))))
        x = F.softmax(self.conv2(x), dim=1)
        x = F.adaptive_max_pool2d(x, self.GRID).flatten(1)
        return self.fc2(F.relu(self.fc1(x)))


class TapModel(SegModel):
    """Shared tail of every model: optional existence head on the ``high`` tap and output packing."""

    def _init_exist(self, exist_head: bool, width: float) -> None:
        self.exist = ExistHead(self.tap("high").channels, self.num_classes, width) if exist_head else None

    def _pack(self, logits: torch.Tensor, feats: dict, size) -> dict:
        out = {"logits": resize(logits, size), "feats": feats}
        if self.exist is not None:
            out["exist"] = self.exist(feats[self.tap_roles["high"]])
        return out
