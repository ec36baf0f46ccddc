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
* Channels-last convolution kernels and token-major (NHWC) stage outputs: the depthwise and
  reduction convolutions then run on the activations as they are, without NCHW round trips
  (same values).
* Inference mode and batching (the caller's loop), and optionally int8 dynamic quantisation of
  the encoder's linear layers (``quantize=True``). It is off by default: it changes the logits
  (99.996 % of labels unchanged on the bench) for ~15 % more speed, and it relies on
  ``torch.ao.quantization``, which torch has deprecated.

Measured by ``bench/bench_seg_cpu.py`` (B3, 800 x 800, 2 shared cores under load 3-6): the
default path ran 2.1-3.5x the naive loop in wall time and 2.4-2.5x in CPU time, with 100 % of
labels unchanged; with int8, 2.8-3.7x wall and 2.9-3.0x CPU time.

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


def _stage_parts(encoder: nn.Module):
    """The stages' (patch_embeddings, blocks, layer_norm) if this transformers version has them."""
    stages = getattr(encoder, "stages", None)
    if stages is None:
        return None
    try:
        return [(st.patch_embeddings, st.blocks, st.layer_norm) for st in stages]
    except AttributeError:
        return None


def encoder_features(encoder: nn.Module, pixel_values: torch.Tensor, channels_last: bool = False):
    """The four stage outputs of a ``SegformerModel``.

    ``channels_last=False``: ``[b, C_i, h_i, w_i]`` tensors as transformers returns them.
    ``channels_last=True``: ``[b, h_i, w_i, C_i]`` contiguous tensors, computed without the
    NCHW copies between stages (each stage's tokens are viewed as a channels-last image for the
    next patch embedding); needs the transformers >= 5 module layout, else falls back.
    """
    parts = _stage_parts(encoder) if channels_last else None
    if parts is None:
        feats = list(encoder(pixel_values, output_hidden_states=True).hidden_states)
        return [f.permute(0, 2, 3, 1).contiguous() for f in feats] if channels_last else feats
    feats, h = [], pixel_values
    b = pixel_values.shape[0]
    for embed, blocks, norm in parts:
        tokens, height, width = embed(h)
        for block in blocks:
            tokens = block(tokens, height, width)
        tokens = norm(tokens)
        nhwc = tokens.reshape(b, height, width, -1)
        feats.append(nhwc)
        h = nhwc.permute(0, 3, 1, 2)  # a channels-last view, no copy
    return feats


class FoldedDecodeHead(nn.Module):
    """``SegformerDecodeHead`` (eval mode) with projections, fusion and batch norm folded.

    Takes the stage outputs as ``[b, h_i, w_i, C_i]`` (channels last) and returns logits
    ``[b, num_labels, h_1, w_1]``, equal to the original head's up to float rounding.
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
                weights.append(w.t().float().contiguous())  # [C_i, D] for tokens @ w
            cls_w = head.classifier.weight.detach()[:, :, 0, 0].t().float().contiguous()  # [D, K]
            cls_b = head.classifier.bias.detach().float().clone()
        for i, w in enumerate(weights):
            self.register_buffer(f"w{i}", w)
        self.register_buffer("bias", bias.float().contiguous())
        self.register_buffer("cls_w", cls_w)
        self.register_buffer("cls_b", cls_b)
        self.n = n

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        size = feats[0].shape[1:3]
        acc = None
        for i, x in enumerate(feats):  # x: [b, h, w, C_i]
            y = torch.matmul(x, getattr(self, f"w{i}"))  # [b, h, w, D]
            if y.shape[1:3] != size:  # bilinear on a channels-last view: fast path in torch
                y = F.interpolate(y.permute(0, 3, 1, 2), size=size, mode="bilinear",
                                  align_corners=False).permute(0, 2, 3, 1)
            acc = y if acc is None else acc.add_(y)
        acc.add_(self.bias).relu_()
        logits = torch.addmm(self.cls_b, acc.reshape(-1, acc.shape[-1]), self.cls_w)
        return logits.reshape(*acc.shape[:3], -1).permute(0, 3, 1, 2).contiguous()


class FastSegformer(nn.Module):
    """SegFormer encoder + :class:`FoldedDecodeHead`: ``pixel_values -> logits`` (a tensor)."""

    def __init__(self, model: nn.Module, channels_last: bool = True) -> None:
        import copy

        super().__init__()
        enc = model.segformer
        if channels_last:
            # convolution kernels in channels-last layout: oneDNN then keeps the token-major
            # activations as they are instead of converting them to NCHW and back (same values)
            enc = copy.deepcopy(enc).to(memory_format=torch.channels_last)
        self.encoder = enc
        self.channels_last = channels_last
        self.head = FoldedDecodeHead(model.decode_head)
        self.config = model.config

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        feats = encoder_features(self.encoder, pixel_values, channels_last=True)
        return self.head(feats)


def optimise_for_cpu(model: nn.Module, *, quantize: bool = False) -> nn.Module:
    """The project's fastest robust CPU form of a ``SegformerForSemanticSegmentation``.

    The model is not modified (the folded head copies what it needs; with ``quantize`` the
    encoder is deep-copied before int8 dynamic quantisation of its ``nn.Linear`` layers).
    """
    model = model.eval()
    fast = FastSegformer(model)
    if quantize:
        fast.encoder = torch.ao.quantization.quantize_dynamic(fast.encoder, {nn.Linear}, dtype=torch.qint8)
    return fast.eval()
