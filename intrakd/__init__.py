"""intrakd: reproducibility suite for Inter-Region Affinity Distillation (IntRA-KD, CVPR 2020)."""

__version__ = "0.1.0"
