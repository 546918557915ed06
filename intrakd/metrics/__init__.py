"""Official-equivalent evaluators and prediction writers.

``segmentation`` (ApolloScape / Cityscapes mIoU), ``culane`` (SCNN F1), ``llamas`` (segmentation mAP),
``writers`` (submission files), ``cli`` (``intrakd evaluate``).
"""

from intrakd.metrics.segmentation import SegEvaluator

__all__ = ["SegEvaluator"]
