"""intrakd.models: segmentation networks with declared feature taps (see :mod:`intrakd.models.base`).

Importing the package registers every network: ``build_model(name, num_classes, width, exist_head)``.
"""

from intrakd.models.base import MODEL_REGISTRY, SegModel, Tap, build_model, count_params, feats_of, register_model
from intrakd.models import deeplab, enet, erfnet, pspnet, resnet18, swiftnet  # noqa: F401  (registration side effects)

__all__ = ["MODEL_REGISTRY", "SegModel", "Tap", "build_model", "count_params", "feats_of", "register_model"]
