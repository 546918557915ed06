"""KD (Hinton et al. 2015): pixel-wise KL between temperature-softened class maps (Table 4: probability map).

L_kd = T^2 * mean over pixels of KL(softmax(z_t/T) || softmax(z_s/T)). Teacher logits are bilinearly
resized to the student's logit size when they differ. Differences to torchdistill ``KDLoss`` (pinned in
tests): it uses ``batchmean`` (sum over pixels / B) and has no T^2 on the soft term when alpha = 0.
"""

from __future__ import annotations

from ._ops import pixel_kl, valid_mask
from .base import Distiller, register_method


@register_method
class KD(Distiller):
    name = "kd"
    needs_teacher = True
    student_taps = ("logits",)
    teacher_taps = ("logits",)
    default_weights = {"kd": 1.0}
    default_options = {"temperature": 1.0, "valid_only": False}
    knowledge_form = "probability map"
    description = "Pixel-wise KD: T^2 KL(teacher || student) of softened class maps, mean over pixels (Hinton)."

    def __init__(self, student, teacher, num_classes, weights=None, **options):
        super().__init__(student, teacher, num_classes, weights, **options)
        if not float(self.options["temperature"]) > 0:
            raise ValueError(f"method 'kd' option temperature={self.options['temperature']!r}: a number > 0")

    def forward(self, s_out, t_out, batch, step=0, epoch=0):
        mask = valid_mask(batch["label"], self.num_classes) if self.options["valid_only"] else None
        loss = pixel_kl(s_out["logits"], t_out["logits"].detach(), self.options["temperature"], mask)
        return {"kd": self.weights["kd"] * loss}

    def matched_size(self, s_out, t_out):
        return int(s_out["logits"][0].numel())
