"""Training losses and the validation Dice (docs/method.md "Training").

* :func:`soft_dice_loss`: 1 - Dice of the softmax probabilities against one-hot labels, computed
  per image and per class and averaged over both, with a small epsilon in numerator and
  denominator (a class absent from an image and not predicted there scores Dice 1).
* :func:`ce_dice_loss`: cross-entropy + soft Dice, equally weighted by default
  (``TRAINING.ce_weight``, ``TRAINING.dice_weight``).
* :func:`hard_dice`: Dice of predicted labels per image and class (for validation); classes
  absent from both prediction and truth on an image are NaN (left out of means).

Logits ``[b, C, h, w]`` may be smaller than the labels ``[b, H, W]`` (SegFormer predicts at 1/4
of its input): they are upsampled bilinearly to the label size first, which is how the model's
output is used at inference (``MODEL.upsample = "bilinear"``), so boundaries are learnt at the
input's resolution.
"""

from __future__ import annotations

import numpy as np

from ..method import TRAINING

__all__ = ["match_size", "soft_dice_loss", "ce_dice_loss", "hard_dice"]


def match_size(logits, size: tuple[int, int]):
    """Bilinear upsampling of ``[b, C, h, w]`` logits to ``size`` (edges aligned as at inference)."""
    import torch.nn.functional as F

    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


def soft_dice_loss(logits, target, eps: float = TRAINING.dice_eps):
    """``1 - mean Dice`` over images and classes; logits ``[b, C, H, W]``, target ``[b, H, W]`` int."""
    import torch
    import torch.nn.functional as F

    n_classes = logits.shape[1]
    prob = torch.softmax(logits.float(), dim=1)
    onehot = F.one_hot(target.long(), n_classes).permute(0, 3, 1, 2).to(prob.dtype)
    inter = (prob * onehot).sum(dim=(2, 3))
    denom = prob.sum(dim=(2, 3)) + onehot.sum(dim=(2, 3))
    dice = (2.0 * inter + eps) / (denom + eps)  # [b, C]
    return 1.0 - dice.mean()


def ce_dice_loss(logits, target, *, ce_weight: float = TRAINING.ce_weight,
                 dice_weight: float = TRAINING.dice_weight, eps: float = TRAINING.dice_eps):
    """``(total, ce, dice_loss)`` for logits ``[b, C, h, w]`` and labels ``[b, H, W]``.

    Logits are upsampled to the labels' size (bilinear) before both terms.
    """
    import torch.nn.functional as F

    logits = match_size(logits, target.shape[-2:])
    ce = F.cross_entropy(logits.float(), target.long())
    dl = soft_dice_loss(logits, target, eps)
    return ce_weight * ce + dice_weight * dl, ce, dl


def hard_dice(pred: np.ndarray, truth: np.ndarray, labels) -> np.ndarray:
    """Dice ``2|P & T| / (|P| + |T|)`` per image and class: ``[b, len(labels)]`` float64.

    ``pred``/``truth``: label maps ``[b, y, x]`` (or one ``[y, x]``). NaN where the class is in
    neither map of that image.
    """
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    if pred.ndim == 2:
        pred, truth = pred[None], truth[None]
    out = np.full((pred.shape[0], len(labels)), np.nan)
    for j, c in enumerate(labels):
        p = (pred == c).reshape(pred.shape[0], -1)
        t = (truth == c).reshape(truth.shape[0], -1)
        inter = np.count_nonzero(p & t, axis=1)
        denom = np.count_nonzero(p, axis=1) + np.count_nonzero(t, axis=1)
        ok = denom > 0
        out[ok, j] = 2.0 * inter[ok] / denom[ok]
    return out
