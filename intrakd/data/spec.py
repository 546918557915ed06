"""Per-dataset constants: classes, their names and colours, loss weights, metric and the paper's input geometry (one
place for all four datasets, registered by name in :data:`DATASETS`).

Sources (``/work/shared/reference``): ``intrakd_method.md`` §2.3 (ApolloScape recipe), §2.4 (CULane,
ERFNet-CULane-PyTorch), §2.5 (LLAMAS, ENet-SAD-Simple) and ``datasets_metrics.md`` §0/§1.4/§2.5/§3.3/§4.1.
Sizes are (W, H). ``mean``/``std`` are in 0..255 pixel units and listed in ``channel_order`` (the order the
network sees); normalised input = (pixel - mean) / std.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from intrakd.labels import (
    APOLLO_LABELS, APOLLO_MERGED_TRAIN_ID, APOLLO_NUM_CLASSES, CITYSCAPES_LABELS, CITYSCAPES_NUM_CLASSES, IGNORE_INDEX,
    LLAMAS_CLASSES, LLAMAS_LANE_COLOURS, Label, palette,
)
from intrakd.registry import Registry

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    num_classes: int
    ignore_index: int
    class_weights: tuple
    has_exist: bool  # lane-existence head / flags
    metric: str  # 'miou' | 'f1' | 'map' (the tables' and the verdict's unit for this dataset)
    class_names: tuple[str, ...]  # training classes 0..num_classes-1 (the affinity graphs' nodes)
    # 256 RGB colours of the values of the genuine label space (what ``raw_label`` returns and Fig. 2 paints)
    palette: tuple[RGB, ...]
    paper_input_size: tuple  # (W, H) network input after the row crop, at genuine resolution
    paper_train_crop: tuple | None  # (W, H) random training crop of the resized input, None = no crop
    mean: tuple  # pixel units, in channel_order
    std: tuple
    channel_order: str  # 'BGR' | 'RGB'
    genuine_size: tuple  # (W, H) of the genuine images
    crop_top: int  # rows dropped at the genuine size before resizing
    train_scale: tuple  # (lo, hi) random rescale of the resized input during training; (1, 1) = none
    rotate_deg: float  # training rotation range +- degrees (applied with probability 0.5)
    hflip: bool  # random horizontal flip during training
    num_lanes: int = 0  # lane slots (classes 1..num_lanes) for lane datasets
    # Evaluation: True = the logits are resized bilinearly to the label size before the argmax (Cityscapes' official
    # practice); False = argmax at the network's size, the prediction nearest-resized (the ApolloScape submission
    # pipeline: argmax at 1692x505, nearest resize to 3384x1010).
    upsample_logits: bool = False
    # {genuine label value: class name} of the values :attr:`palette` paints (Fig. 2's colour key); empty: the
    # values are the training classes (``class_names``)
    value_names: Mapping[int, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if len(self.class_weights) != self.num_classes or len(self.class_names) != self.num_classes:
            raise ValueError(f"{self.name}: {len(self.class_weights)} class weights and {len(self.class_names)} class "
                             f"names for {self.num_classes} classes")
        if len(self.palette) != 256:
            raise ValueError(f"{self.name}: {len(self.palette)} palette colours, expected 256 (one per label value)")
        names = dict(self.value_names) or dict(enumerate(self.class_names))
        object.__setattr__(self, "value_names", MappingProxyType(names))
        if self.metric not in ("miou", "f1", "map") or self.channel_order not in ("BGR", "RGB"):
            raise ValueError(f"{self.name}: bad metric {self.metric!r} or channel order {self.channel_order!r}")


_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # intrakd_method.md §2.2/§2.3: BGR mean, std 1
#: CULane has no official colour table: fixed colours for background and lane slots 1-4 (RGB).
CULANE_COLOURS = ((0, 0, 0), (255, 64, 64), (64, 200, 64), (64, 128, 255), (255, 200, 0))


def _table_palette(labels: tuple[Label, ...]) -> tuple[RGB, ...]:
    """Each label ID's official table colour, black for values no label has."""
    flat = palette(labels)
    return tuple(tuple(flat[3 * v:3 * v + 3]) for v in range(256))


def _lane_palette(colours) -> tuple[RGB, ...]:
    """``colours`` (RGB) for the label values 0..len-1 (background, then the lane slots), black for the others."""
    return tuple(colours) + ((0, 0, 0),) * (256 - len(colours))


def _train_names(labels: tuple[Label, ...], n: int) -> tuple[str, ...]:
    """The names of training classes 0..n-1 from an official label table."""
    return tuple(next(lab.name for lab in labels if lab.train_id == t) for t in range(n))


def _id_names(labels: tuple[Label, ...]) -> dict[int, str]:
    """{label ID: name} of an official label table (IDs 0..255)."""
    return {lab.id: lab.name for lab in labels if 0 <= lab.id < 256}


#: {name: spec}; :func:`get_spec` reads it.
DATASETS: Registry[DatasetSpec] = Registry("dataset")
for _spec in (
    # intrakd_method.md §2.3 + datasets_metrics.md §3.3: rows 1700.. kept, x0.5 -> 1692x505, random 1488x496
    # crop, +-10 deg rotation (p=0.5), no flip, no scale jitter; 37 classes, weight 0.05 for void (0) and 36.
    DatasetSpec(
        name="apolloscape", num_classes=APOLLO_NUM_CLASSES, ignore_index=IGNORE_INDEX,
        class_weights=(0.05,) + (1.0,) * 35 + (0.05,), has_exist=False, metric="miou",
        # train id 36: noise (249) and ignored (255) merged
        class_names=_train_names(APOLLO_LABELS, APOLLO_MERGED_TRAIN_ID) + ("noise+ignored",),
        palette=_table_palette(APOLLO_LABELS), value_names=_id_names(APOLLO_LABELS),
        paper_input_size=(1692, 505), paper_train_crop=(1488, 496), mean=_CAFFE_BGR_MEAN, std=(1.0, 1.0, 1.0),
        channel_order="BGR", genuine_size=(3384, 2710), crop_top=1700, train_scale=(1.0, 1.0), rotate_deg=10.0,
        hflip=False,
    ),
    # intrakd_method.md §2.4 / datasets_metrics.md §1.4 (ERFNet-CULane-PyTorch): drop top 240 rows
    # (1640x350), resize to 976x208; train: random scale 0.595-0.621 of the cropped image (= x1.0-1.0437 of
    # the 976x208 input), random crop 976x208, rotation +-1 deg; BGR mean, std 1; bg weight 0.4; 4 lane slots.
    DatasetSpec(
        name="culane", num_classes=5, ignore_index=IGNORE_INDEX, class_weights=(0.4, 1.0, 1.0, 1.0, 1.0),
        has_exist=True, metric="f1", class_names=("background", "lane 1", "lane 2", "lane 3", "lane 4"),
        palette=_lane_palette(CULANE_COLOURS), paper_input_size=(976, 208), paper_train_crop=(976, 208),
        mean=_CAFFE_BGR_MEAN, std=(1.0, 1.0, 1.0), channel_order="BGR", genuine_size=(1640, 590), crop_top=240,
        train_scale=(1.0, 0.621 / 0.595), rotate_deg=1.0, hflip=False, num_lanes=4,
    ),
    # intrakd_method.md §2.5 / datasets_metrics.md §2.5 (ENet-SAD-Simple): bottom 384 rows (top 333 dropped),
    # resize 960x288; train: random resize width 920-1002 (x0.958-1.044), rotation 2 deg, random crop 960x288;
    # RGB mean (0.3598, 0.3653, 0.3662) std (0.2573, 0.2663, 0.2756) of [0,1] pixels; bg weight 0.4.
    DatasetSpec(
        name="llamas", num_classes=5, ignore_index=IGNORE_INDEX, class_weights=(0.4, 1.0, 1.0, 1.0, 1.0),
        has_exist=True, metric="map", class_names=LLAMAS_CLASSES,
        # the official lane colours are BGR
        palette=_lane_palette([(0, 0, 0)] + [LLAMAS_LANE_COLOURS[lane][::-1] for lane in LLAMAS_CLASSES[1:]]),
        paper_input_size=(960, 288), paper_train_crop=(960, 288),
        mean=(0.3598 * 255, 0.3653 * 255, 0.3662 * 255), std=(0.2573 * 255, 0.2663 * 255, 0.2756 * 255),
        channel_order="RGB", genuine_size=(1276, 717), crop_top=333, train_scale=(920 / 960, 1002 / 960),
        rotate_deg=2.0, hflip=False, num_lanes=4,
    ),
    # datasets_metrics.md §4 / paper_supplement §6: 19 trainIds, mIoU; 2048x1024 genuine, 1024x512 input.
    # No Cityscapes recipe is in the reference: normalisation = ImageNet RGB mean/std (the SwiftNet/DeepLabv3+
    # convention), training = scale jitter 0.5-2 + hflip, no crop, no rotation [not from the paper].
    DatasetSpec(
        name="cityscapes", num_classes=CITYSCAPES_NUM_CLASSES, ignore_index=IGNORE_INDEX,
        class_weights=(1.0,) * CITYSCAPES_NUM_CLASSES, has_exist=False, metric="miou",
        class_names=_train_names(CITYSCAPES_LABELS, CITYSCAPES_NUM_CLASSES), palette=_table_palette(CITYSCAPES_LABELS),
        value_names=_id_names(CITYSCAPES_LABELS),
        paper_input_size=(1024, 512), paper_train_crop=None, mean=(123.675, 116.28, 103.53),
        std=(58.395, 57.12, 57.375), channel_order="RGB", genuine_size=(2048, 1024), crop_top=0,
        train_scale=(0.5, 2.0), rotate_deg=0.0, hflip=True, upsample_logits=True,
    ),
):
    DATASETS.register(_spec.name, _spec)


def get_spec(name: str) -> DatasetSpec:
    """The spec of ``name``; :class:`intrakd.registry.UnknownNameError` (a ValueError) listing the valid names
    otherwise."""
    return DATASETS[name]
