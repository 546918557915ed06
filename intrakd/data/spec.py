"""Per-dataset constants: classes, loss weights, metric and the paper's input geometry (one place for all four).

Sources (``/work/shared/reference``): ``intrakd_method.md`` §2.3 (ApolloScape recipe), §2.4 (CULane,
ERFNet-CULane-PyTorch), §2.5 (LLAMAS, ENet-SAD-Simple) and ``datasets_metrics.md`` §0/§1.4/§2.5/§3.3/§4.1.
Sizes are (W, H). ``mean``/``std`` are in 0..255 pixel units and listed in ``channel_order`` (the order the
network sees); normalised input = (pixel - mean) / std.
"""

from __future__ import annotations

from dataclasses import dataclass

from intrakd.labels import APOLLO_NUM_CLASSES, CITYSCAPES_NUM_CLASSES, IGNORE_INDEX


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    num_classes: int
    ignore_index: int
    class_weights: tuple
    has_exist: bool  # lane-existence head / flags
    metric: str  # 'miou' | 'f1' | 'map'
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

    def __post_init__(self) -> None:
        if len(self.class_weights) != self.num_classes:
            raise ValueError(f"{self.name}: {len(self.class_weights)} class weights for {self.num_classes} classes")
        if self.metric not in ("miou", "f1", "map") or self.channel_order not in ("BGR", "RGB"):
            raise ValueError(f"{self.name}: bad metric {self.metric!r} or channel order {self.channel_order!r}")


_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # intrakd_method.md §2.2/§2.3: BGR mean, std 1

DATASETS: dict[str, DatasetSpec] = {
    # intrakd_method.md §2.3 + datasets_metrics.md §3.3: rows 1700.. kept, x0.5 -> 1692x505, random 1488x496
    # crop, +-10 deg rotation (p=0.5), no flip, no scale jitter; 37 classes, weight 0.05 for void (0) and 36.
    "apolloscape": DatasetSpec(
        name="apolloscape", num_classes=APOLLO_NUM_CLASSES, ignore_index=IGNORE_INDEX,
        class_weights=(0.05,) + (1.0,) * 35 + (0.05,), has_exist=False, metric="miou",
        paper_input_size=(1692, 505), paper_train_crop=(1488, 496), mean=_CAFFE_BGR_MEAN, std=(1.0, 1.0, 1.0),
        channel_order="BGR", genuine_size=(3384, 2710), crop_top=1700, train_scale=(1.0, 1.0), rotate_deg=10.0,
        hflip=False,
    ),
    # intrakd_method.md §2.4 / datasets_metrics.md §1.4 (ERFNet-CULane-PyTorch): drop top 240 rows
    # (1640x350), resize to 976x208; train: random scale 0.595-0.621 of the cropped image (= x1.0-1.0437 of
    # the 976x208 input), random crop 976x208, rotation +-1 deg; BGR mean, std 1; bg weight 0.4; 4 lane slots.
    "culane": DatasetSpec(
        name="culane", num_classes=5, ignore_index=IGNORE_INDEX, class_weights=(0.4, 1.0, 1.0, 1.0, 1.0),
        has_exist=True, metric="f1", paper_input_size=(976, 208), paper_train_crop=(976, 208),
        mean=_CAFFE_BGR_MEAN, std=(1.0, 1.0, 1.0), channel_order="BGR", genuine_size=(1640, 590), crop_top=240,
        train_scale=(1.0, 0.621 / 0.595), rotate_deg=1.0, hflip=False, num_lanes=4,
    ),
    # intrakd_method.md §2.5 / datasets_metrics.md §2.5 (ENet-SAD-Simple): bottom 384 rows (top 333 dropped),
    # resize 960x288; train: random resize width 920-1002 (x0.958-1.044), rotation 2 deg, random crop 960x288;
    # RGB mean (0.3598, 0.3653, 0.3662) std (0.2573, 0.2663, 0.2756) of [0,1] pixels; bg weight 0.4.
    "llamas": DatasetSpec(
        name="llamas", num_classes=5, ignore_index=IGNORE_INDEX, class_weights=(0.4, 1.0, 1.0, 1.0, 1.0),
        has_exist=True, metric="map", paper_input_size=(960, 288), paper_train_crop=(960, 288),
        mean=(0.3598 * 255, 0.3653 * 255, 0.3662 * 255), std=(0.2573 * 255, 0.2663 * 255, 0.2756 * 255),
        channel_order="RGB", genuine_size=(1276, 717), crop_top=333, train_scale=(920 / 960, 1002 / 960),
        rotate_deg=2.0, hflip=False, num_lanes=4,
    ),
    # datasets_metrics.md §4 / paper_supplement §6: 19 trainIds, mIoU; 2048x1024 genuine, 1024x512 input.
    # No Cityscapes recipe is in the reference: normalisation = ImageNet RGB mean/std (the SwiftNet/DeepLabv3+
    # convention), training = scale jitter 0.5-2 + hflip, no crop, no rotation [not from the paper].
    "cityscapes": DatasetSpec(
        name="cityscapes", num_classes=CITYSCAPES_NUM_CLASSES, ignore_index=IGNORE_INDEX,
        class_weights=(1.0,) * CITYSCAPES_NUM_CLASSES, has_exist=False, metric="miou",
        paper_input_size=(1024, 512), paper_train_crop=None, mean=(123.675, 116.28, 103.53),
        std=(58.395, 57.12, 57.375), channel_order="RGB", genuine_size=(2048, 1024), crop_top=0,
        train_scale=(0.5, 2.0), rotate_deg=0.0, hflip=True, upsample_logits=True,
    ),
}


def get_spec(name: str) -> DatasetSpec:
    """The spec of ``name``; ValueError listing the valid names otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]
