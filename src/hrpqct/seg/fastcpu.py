"""The fast CPU path: the same SegFormer, rewritten to do less arithmetic on the CPU.

What it does (each step measured by ``bench/bench_seg_cpu.py``):

* **Folded decode head** (exact algebra, no approximation). SegFormer's all-MLP head projects
  each encoder stage to D channels (a linear map), upsamples bilinearly to 1/4 of the input,
  concatenates the four maps (4D channels), and fuses them with a 1x1 convolution to D channels
  followed by batch normalisation. Linear maps commute with bilinear interpolation (its weights
  sum to one, so biases pass through), so ``BN(W_fuse [up(P_i x_i)]_i)`` equals
  ``sum_i up(W'_i x_i) + b'`` with ``W'_i = s * W_fuse,i @ P_i`` (``s`` the BN scale) and one
  folded bias. The fusion then runs on each stage at its own resolution with its own width
  (64...512 input channels) instead of a 3072 -> 768 convolution at 200 x 200: for B3 at
  800 x 800 that removes ~94 of the ~200 GMAC of a forward pass. Logits differ from the
  reference only by float rounding (~1e-6).
* Inference mode and batching (the caller's loop), and optionally int8 dynamic quantisation of
  the encoder's linear layers (``quantize=True``; off by default, see the bench for why).

Use :func:`optimise_for_cpu` on a model in eval mode; the result is an ``nn.Module`` taking
``pixel_values [b, 1, S, S]`` and returning logits ``[b, C, S/4, S/4]``.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

__all__ = ["FoldedDecodeHead", "FastSegformer", "optimise_for_cpu", "encoder_features"]


def encoder_features(encoder: nn.Module, pixel_values: torch.Tensor) -> list[torch.Tensor]:
    """The four stage outputs ``[b, C_i, h_i, w_i]`` of a ``SegformerModel``."""
    stages = getattr(encoder, "stages", None)
    if stages is not None and getattr(encoder.config, "reshape_last_stage", True):
        feats, h = [], pixel_values
        for stage in stages:  # transformers >= 5: plain loop, no output-recording hooks
            h = stage(h)
            feats.append(h)
        return feats
    return list(encoder(pixel_values, output_hidden_states=True).hidden_states)


class FoldedDecodeHead(nn.Module):
    """``SegformerDecodeHead`` (eval mode) with projections, fusion and batch norm folded.

    Output equals the original head's logits up to float rounding.
    """

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        cfg = head.config
        if getattr(cfg, "reshape_last_stage", True) is False:
            raise ValueError("folding needs reshape_last_stage=True (the default)")
        n = len(head.linear_projections)
        d = cfg.decoder_hidden_size
        bn = head.batch_norm
        with torch.no_grad():
            w_fuse = head.linear_fuse.weight[:, :, 0, 0].double()  # [D, n*D]
            scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
            bias = bn.bias.double() - bn.running_mean.double() * scale
            weights = []
            for i, proj in enumerate(head.linear_projections):
                j = n - 1 - i  # the head concatenates the stages in reverse order
                wf = w_fuse[:, j * d:(j + 1) * d]
                w = scale[:, None] * (wf @ proj.proj.weight.double())  # [D, C_i]
                bias = bias + scale * (wf @ proj.proj.bias.double())
                weights.append(w.float()[:, :, None, None].contiguous())
        for i, w in enumerate(weights):
            self.register_buffer(f"w{i}", w)
        self.register_buffer("bias", bias.float().reshape(1, -1, 1, 1).contiguous())
        self.n = n
        self.classifier = head.classifier  # 1x1 conv D -> num_labels, unchanged

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        size = feats[0].shape[-2:]
        acc = None
        for i, x in enumerate(feats):
            y = F.conv2d(x, getattr(self, f"w{i}"))
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            acc = y if acc is None else acc.add_(y)
        acc.add_(self.bias).relu_()
        return self.classifier(acc)


class FastSegformer(nn.Module):
    """SegFormer encoder + :class:`FoldedDecodeHead`: ``pixel_values -> logits`` (a tensor)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.encoder = model.segformer
        self.head = FoldedDecodeHead(model.decode_head)
        self.config = model.config

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.head(encoder_features(self.encoder, pixel_values))


def optimise_for_cpu(model: nn.Module, *, quantize: bool = False) -> nn.Module:
    """The project's fastest robust CPU form of a ``SegformerForSemanticSegmentation``.

    The model is not modified (the folded head copies what it needs; with ``quantize`` the
    encoder is deep-copied before int8 dynamic quantisation of its ``nn.Linear`` layers).
    """
    import copy

    model = model.eval()
    fast = FastSegformer(model)
    if quantize:
        enc = copy.deepcopy(model.segformer).eval()
        fast.encoder = torch.ao.quantization.quantize_dynamic(enc, {nn.Linear}, dtype=torch.qint8)
    return fast.eval()
