"""Segmentation: SegFormer model, inference, post-processing, soft-tissue split, training."""
