"""Segmentation: SegFormer model, inference, post-processing, soft-tissue split, training.

Where things live (import from the submodule; this package imports nothing heavy):

* :mod:`.pipeline`: segment a scan and refine an edited segmentation end to end (used by the
  CLI, the demo, the bench and the Slicer logic), the output file names, the progress stages.
* :mod:`.model`: SegFormer B0-B5 with one input channel, model folders, cards and catalogue.
* :mod:`.preprocess`: per-slice crop/resample for the network and its exact inverse.
* :mod:`.inference`: whole-scan streaming inference on CUDA / MPS / CPU, per-slice confidence.
* :mod:`.device`: device choice and out-of-memory handling.
* :mod:`.fastcpu`: the exact fast CPU form of the network (PyTorch or ONNX Runtime);
  :mod:`.onnxcache`: its exported-file cache.
* :mod:`.postprocess`: the topology rules on the model's 5-class map.
* :mod:`.softtissue`: soft tissue -> skin, myotendinous and adipose tissue (7 regions).
* :mod:`.morphology`: the 2D binary morphology both use (bit-packed dilation and closing,
  disks, convex hulls rasterised, hole filling, bounding-box windows).
* :mod:`.refine`: the rules re-applied to an annotator's edited segmentation.
* :mod:`.summary`: per-region areas, volumes, HU (and density), fat fraction.
* :mod:`.evaluate`: the paper's Table I (precision, recall, F1, IoU per class).
* :mod:`.dataset`, :mod:`.losses`, :mod:`.train`, :mod:`.checkpoint`: training data, losses,
  the resumable training run and its checkpoints.
* :mod:`.commands_segment`, :mod:`.commands_refine`, :mod:`.commands_train`: the CLI commands
  (argument parsing and printing only).
"""
