"""Evaluation of a trained network with each benchmark's official-equivalent metric.

Single-scale inference at the loader's input size; predictions are mapped back to the genuine label space and
resolution by the dataset (``restore_prediction``) and scored by ``intrakd.metrics`` exactly as the official tool
would score a submission. Where the dataset's spec says so (``upsample_logits``: Cityscapes), the logits are
resized bilinearly to the label size before the argmax, as Cityscapes evaluations do; elsewhere the argmax is
taken at the network's size and the prediction nearest-resized (ApolloScape's submission pipeline).
ApolloScape's official multi-scale test (4 scales x 4 corner crops, the paper's numbers) is the run option
``eval_scales`` (:func:`intrakd.data.apolloscape.multiscale_test`, :func:`multiscale_logits`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from intrakd.models.common import resize

#: what a run's ``floor`` scores: the trivial predictor every number is compared with
FLOOR_PREDICTOR = ("class 0 everywhere (ApolloScape void, CULane/LLAMAS background, Cityscapes road), "
                   "every lane marked absent")


def paper_units(metric: str, value: float) -> float:
    """mIoU and F1 are reported in percent, LLAMAS mAP as a fraction (as in the paper's tables)."""
    return 100.0 * value if metric in ("miou", "f1") else value


@torch.no_grad()
def predict(model, loader: DataLoader, device: torch.device, amp: bool = False):
    """Yield (dataset index, float logits C x h x w, lane-existence logits or None) per image, on ``device``;
    each metric takes what it needs from them (an argmax, or probabilities) and moves only that to the CPU."""
    model.eval()
    for batch in loader:
        images = batch["image"].to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
            out = model(images)
        for k, idx in enumerate(batch["index"].tolist()):
            yield idx, out["logits"][k].float(), (out["exist"][k].float() if "exist" in out else None)


class BackgroundPredictor(nn.Module):
    """The trivial predictor of ``FLOOR_PREDICTOR``: logits that make class 0 the certain answer at every pixel
    (softmax 1 for class 0, 0 for the others) and lane-existence logits that say no lane is present."""

    def __init__(self, num_classes: int, num_lanes: int = 0):
        super().__init__()
        self.num_classes, self.num_lanes = int(num_classes), int(num_lanes)

    def forward(self, x: torch.Tensor) -> dict:
        b, _, h, w = x.shape
        logits = x.new_full((b, self.num_classes, h, w), -1e4, dtype=torch.float32)
        logits[:, 0] = 0.0
        out = {"logits": logits}
        if self.num_lanes:
            out["exist"] = x.new_full((b, self.num_lanes), -1e4, dtype=torch.float32)
        return out


def floor(dataset, spec, device: torch.device, *, batch_size: int = 2, max_images: int | None = None,
          num_workers: int = 0) -> dict:
    """The score of :class:`BackgroundPredictor` on ``dataset`` with ``spec.metric``: the same images and the same
    metric as :func:`evaluate`, so a run's value is read against it (a value near its floor has learned nothing)."""
    model = BackgroundPredictor(spec.num_classes, spec.num_lanes if spec.has_exist else 0)
    result = evaluate(model, dataset, spec, device, batch_size=batch_size, max_images=max_images,
                      num_workers=num_workers)
    return {"predictor": FLOOR_PREDICTOR, **result}


def per_class(result: dict) -> dict | None:
    """Per-class scores of an :func:`evaluate` result: IoU per evaluated label (mIoU), AP per lane class (LLAMAS);
    None for CULane F1, which is one count over all lanes."""
    if result["metric"] == "miou":
        return result["per_class"]
    if result["metric"] == "map":
        return result["ap"]
    return None


@torch.no_grad()
def multiscale_logits(model, dataset, idx: int, device: torch.device, test, amp: bool = False) -> torch.Tensor:
    """C x H0 x W0 logits of image ``idx`` at scale 0's size (the network input size) by the multi-scale test
    ``test`` (:class:`intrakd.data.apolloscape.MultiScaleTest`), as the official ``test_*_multi_scale.py``: at each
    used scale the image's kept rows are resized to that scale, its 4 corner crops' raw logits summed and divided by
    the per-pixel crop coverage, resized bilinearly to scale 0's size; the scales are then averaged (the script
    divides by 4: the argmax is the same)."""
    model.eval()
    w0, h0 = test.sizes[0]
    cw, ch = test.crop
    total = None
    for k in test.used:
        w, h = test.sizes[k]
        image = dataset.eval_image(idx, (w, h)).to(device)
        corners = ((0, 0), (w - cw, 0), (0, h - ch), (w - cw, h - ch))  # (x, y) of each crop
        crops = torch.stack([image[:, y:y + ch, x:x + cw] for x, y in corners])
        with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
            out = model(crops)["logits"]
        out = resize(out.float(), (ch, cw))
        acc = out.new_zeros((out.shape[1], h, w))
        count = out.new_zeros((1, h, w))
        for (x, y), logits in zip(corners, out):
            acc[:, y:y + ch, x:x + cw] += logits
            count[:, y:y + ch, x:x + cw] += 1
        avg = resize((acc / count)[None], (h0, w0))[0]
        total = avg if total is None else total + avg
    return total / len(test.used)


def label_size_logits(logits: torch.Tensor, dataset, idx: int) -> torch.Tensor:
    """C x h x w logits resized bilinearly (align_corners False) to the kept rows of image ``idx`` at full size:
    the Cityscapes practice of upsampling the logits, not the argmax (``DatasetSpec.upsample_logits``)."""
    w, h = dataset.full_size(idx)
    return resize(logits[None], (h - dataset.top_rows(h), w))[0]


def evaluate(model, dataset, spec, device: torch.device, *, batch_size: int = 2, max_images: int | None = None,
             num_workers: int = 0, amp: bool = False, multiscale=None) -> dict:
    """Score ``model`` on ``dataset`` with ``spec.metric``; returns {"metric", "value" (paper units), ...}.
    ``multiscale``: a :class:`intrakd.data.apolloscape.MultiScaleTest` (ApolloScape only), None = one scale."""
    if max_images is not None and max_images < len(dataset):
        dataset_view = Subset(dataset, range(max_images))
    else:
        dataset_view = dataset
    loader = DataLoader(dataset_view, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    if multiscale is not None and spec.name != "apolloscape":
        raise ValueError(f"{spec.name}: the multi-scale test is ApolloScape's (eval_scales 'single' elsewhere)")
    if spec.metric == "miou":
        return _evaluate_segmentation(model, dataset, spec, loader, device, amp, multiscale)
    if spec.metric == "f1":
        return _evaluate_culane(model, dataset, loader, device, amp)
    if spec.metric == "map":
        return _evaluate_llamas(model, dataset, loader, device, amp)
    raise ValueError(f"{spec.name}: unknown metric {spec.metric!r}; valid: miou, f1, map")


def _segmentation_logits(model, dataset, loader, device, amp, multiscale):
    """(index, logits) of every image of ``loader``: one scale by batches, or the multi-scale test image by image."""
    if multiscale is None:
        for idx, logits, _exist in predict(model, loader, device, amp):
            yield idx, logits
        return
    for idx in range(len(loader.dataset)):  # the loader's dataset is the first max_images of ``dataset``
        yield idx, multiscale_logits(model, dataset, idx, device, multiscale, amp)


def _evaluate_segmentation(model, dataset, spec, loader, device, amp, multiscale=None) -> dict:
    from intrakd.metrics.segmentation import SegEvaluator

    evaluator = SegEvaluator(spec.name)
    pixel_correct = pixel_total = 0
    for idx, logits in _segmentation_logits(model, dataset, loader, device, amp, multiscale):
        if spec.upsample_logits:
            logits = label_size_logits(logits, dataset, idx)
        pred = logits.argmax(0).to("cpu", torch.uint8).numpy()
        restored = dataset.restore_prediction(idx, pred)
        gt = dataset.raw_label(idx)
        evaluator.update(restored, gt, name=str(dataset.records[idx]))
        pixel_correct += int(np.count_nonzero(restored == gt))
        pixel_total += gt.size
    result = evaluator.result()
    out = {
        "metric": "miou",
        "value": paper_units("miou", result["miou"]),
        "per_class": result["per_class"],
        "pixel_accuracy": pixel_correct / max(pixel_total, 1),
        "num_images": len(loader.dataset),
    }
    if multiscale is not None:
        out["multiscale"] = {"sizes": [list(s) for s in multiscale.sizes], "crop": list(multiscale.crop),
                             "used_scales": list(multiscale.used)}
    return out


def _evaluate_culane(model, dataset, loader, device, amp) -> dict:
    """CULane F1 as the official pipeline: prob2lines on the lane probability maps and lane existence, then the
    SCNN evaluator's matching; the tree's geometry (row step, line width, canvas) comes from the loader."""
    from intrakd.metrics import culane

    tp = fp = fn = 0
    p2l, match = dataset.prob2lines_kwargs(), dataset.metric_kwargs()
    for idx, logits, exist in predict(model, loader, device, amp):
        probs = torch.softmax(logits, 0)[1:].cpu().numpy()
        exist = torch.sigmoid(exist).cpu().numpy() if exist is not None else np.ones(len(probs))
        lanes = culane.prob2lines(probs, exist, **p2l)
        a, b, c = culane.image_counts(dataset.lanes(idx), lanes, iou=0.5, **match)
        tp, fp, fn = tp + a, fp + b, fn + c
    result = culane.scores(tp, fp, fn)
    return {"metric": "f1", "value": paper_units("f1", result["f1"]), **result, "line_width": match["width"],
            "num_images": len(loader.dataset)}


def _evaluate_llamas(model, dataset, loader, device, amp) -> dict:
    """LLAMAS mAP: the per-class probability maps the official script reads, against the marker-polygon labels."""
    from intrakd.metrics.llamas import LlamasEvaluator

    evaluator = LlamasEvaluator()
    for idx, logits, _exist in predict(model, loader, device, amp):
        maps = dataset.restore_prediction(idx, torch.softmax(logits, 0).cpu().numpy())
        evaluator.update(list(maps), dataset.raw_label(idx), name=str(dataset.records[idx].image))
    result = evaluator.result()
    return {"metric": "map", "value": paper_units("map", result["map"]), **result,
            "num_images": len(loader.dataset)}
