"""SegFormer (B0-B5) with one input channel and 6 outputs; model folders, model cards, catalogue.

* :func:`segformer_config` / :func:`build_model`: the MiT-B0...B5 encoders of the SegFormer paper
  (Xie et al. 2021, Table 6: depths, widths, heads, reduction ratios; decoder width 256 for
  B0/B1 and 768 for B2-B5), written out here so nothing is fetched from a model hub, plus a
  ``"tiny"`` configuration for tests.
* :func:`init_from_pretrained`: a local RGB-pretrained SegFormer folder (Cityscapes or ImageNet)
  -> a 1-channel, 6-class model: the first patch-embedding kernel averaged over R, G, B, every
  other encoder weight copied, the decode head copied if there is one (except the classifier,
  which is new).
* :func:`save_model` / :func:`load_model`: folders written by ``save_pretrained`` (safetensors
  only: folders with only ``.bin``/pickle weights are refused, nothing is ever unpickled) plus
  ``model_card.json`` (classes, preprocessing, training data, metrics, intended use) and a
  ``README.md`` rendered from it. The card's preprocessing block is what inference uses, so a
  model trained at another input size is applied as it was trained.
* :func:`catalog` / :func:`resolve_model`: ``Resources/models/catalog.json`` lists the models the
  extension knows (the bundled demo model and how to get the others); never downloads.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..method import MODEL
from ..regions import BACKGROUND, MODEL_CLASSES
from .preprocess import InputSpec

log = logging.getLogger(__name__)

__all__ = [
    "VARIANTS",
    "segformer_config",
    "build_model",
    "variant_of",
    "init_from_pretrained",
    "ModelCard",
    "write_card",
    "LoadedModel",
    "save_model",
    "load_model",
    "check_model_folder",
    "render_readme",
    "CatalogEntry",
    "catalog",
    "resolve_model",
    "CARD_FILE",
]

CARD_FILE = "model_card.json"
CARD_FORMAT = "hrpqct-model-card"
CARD_VERSION = 1

_MIT_WIDE = (64, 128, 320, 512)
_COMMON = dict(num_attention_heads=(1, 2, 5, 8), sr_ratios=(8, 4, 2, 1), mlp_ratios=(4, 4, 4, 4),
               patch_sizes=(7, 3, 3, 3), strides=(4, 2, 2, 2))

#: MiT encoders of the SegFormer paper (Table 6) and their all-MLP decoder widths.
VARIANTS: dict[str, dict[str, Any]] = {
    "b0": dict(depths=(2, 2, 2, 2), hidden_sizes=(32, 64, 160, 256), decoder_hidden_size=256, **_COMMON),
    "b1": dict(depths=(2, 2, 2, 2), hidden_sizes=_MIT_WIDE, decoder_hidden_size=256, **_COMMON),
    "b2": dict(depths=(3, 4, 6, 3), hidden_sizes=_MIT_WIDE, decoder_hidden_size=768, **_COMMON),
    "b3": dict(depths=(3, 4, 18, 3), hidden_sizes=_MIT_WIDE, decoder_hidden_size=768, **_COMMON),
    "b4": dict(depths=(3, 8, 27, 3), hidden_sizes=_MIT_WIDE, decoder_hidden_size=768, **_COMMON),
    "b5": dict(depths=(3, 6, 40, 3), hidden_sizes=_MIT_WIDE, decoder_hidden_size=768, **_COMMON),
    # for tests and quick experiments: a few thousand parameters, same topology
    "tiny": dict(depths=(1, 1, 1, 1), hidden_sizes=(8, 16, 24, 32), decoder_hidden_size=32,
                 num_attention_heads=(1, 1, 2, 2), sr_ratios=(8, 4, 2, 1), mlp_ratios=(2, 2, 2, 2),
                 patch_sizes=(7, 3, 3, 3), strides=(4, 2, 2, 2)),
}

_ARCH_KEYS = ("depths", "hidden_sizes", "decoder_hidden_size", "num_attention_heads", "sr_ratios",
              "mlp_ratios", "patch_sizes", "strides")


def _labels() -> tuple[dict[int, str], dict[str, int]]:
    id2label = {BACKGROUND: "Background", **{r.label: r.name for r in MODEL_CLASSES}}
    return id2label, {v: k for k, v in id2label.items()}


def segformer_config(variant: str = MODEL.variant, *, num_labels: int = MODEL.num_labels,
                     num_channels: int = MODEL.num_channels, **overrides: Any):
    """A ``SegformerConfig`` for ``"b0"``..``"b5"`` or ``"tiny"``; ``overrides`` change any field."""
    from transformers import SegformerConfig

    key = str(variant).lower()
    if key not in VARIANTS:
        raise ModelError(f"unknown SegFormer variant {variant!r}; known: {sorted(VARIANTS)}")
    kw = {k: list(v) if isinstance(v, tuple) else v for k, v in VARIANTS[key].items()}
    id2label, label2id = _labels()
    if num_labels != len(id2label):
        id2label = {i: f"class_{i}" for i in range(num_labels)}
        label2id = {v: k for k, v in id2label.items()}
    kw.update(num_labels=num_labels, num_channels=num_channels, id2label=id2label, label2id=label2id,
              semantic_loss_ignore_index=255)
    kw.update({k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()})
    return SegformerConfig(**kw)


def build_model(variant: str = MODEL.variant, *, seed: int | None = None, **overrides: Any):
    """A randomly initialised ``SegformerForSemanticSegmentation`` (1 channel, 6 classes), eval mode."""
    import torch
    from transformers import SegformerForSemanticSegmentation

    if seed is not None:
        torch.manual_seed(seed)
    return SegformerForSemanticSegmentation(segformer_config(variant, **overrides)).eval()


def variant_of(config) -> str:
    """``"b0"``..``"b5"``/``"tiny"`` if ``config``'s encoder matches one, else ``"custom"``."""
    for name, spec in VARIANTS.items():
        if all(list(getattr(config, k)) == list(v) if isinstance(v, tuple) else getattr(config, k) == v
               for k, v in spec.items()):
            return name
    return "custom"


# --- safety checks on folders ----------------------------------------------------------------
_UNSAFE = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def check_model_folder(folder: str | os.PathLike, need_card: bool = True) -> Path:
    """Raise :class:`ModelError` unless ``folder`` holds ``config.json`` and safetensors weights.

    Folders whose only weights are ``.bin``/pickle files are refused (they would be unpickled);
    convert them with transformers elsewhere and save with ``save_pretrained`` first.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: model folder not found")
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder}: not a model folder (no config.json)")
    safe = list(folder.glob("*.safetensors")) + list(folder.glob("*.safetensors.index.json"))
    if not safe:
        unsafe = sorted(p.name for p in folder.iterdir() if p.suffix in _UNSAFE)
        what = f"only pickle weights ({', '.join(unsafe)})" if unsafe else "no weights"
        raise ModelError(
            f"{folder}: {what}; only safetensors weights are loaded (pickle files can run code). "
            "Re-save the model with save_pretrained (safetensors) on a trusted machine."
        )
    if need_card and not (folder / CARD_FILE).is_file():
        raise ModelError(f"{folder}: no {CARD_FILE} (classes and preprocessing of the model)")
    return folder


def _from_pretrained(cls, folder: Path, **kw):
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress bars only; loading a local file is quick
    try:
        return cls.from_pretrained(str(folder), local_files_only=True, use_safetensors=True, **kw)
    except ModelError:
        raise
    except Exception as exc:  # transformers raises OSError/ValueError/RuntimeError variants
        raise ModelError(f"{folder}: cannot load the model: {exc}") from exc


# --- conversion from an RGB-pretrained SegFormer ---------------------------------------------
def _first_conv(module):
    import torch.nn as nn

    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ModelError("no convolution found in the SegFormer encoder")


def init_from_pretrained(folder: str | os.PathLike, *, num_labels: int = MODEL.num_labels,
                         num_channels: int = MODEL.num_channels, seed: int | None = 0):
    """A 1-channel, ``num_labels``-class SegFormer initialised from a local RGB-pretrained folder.

    ``folder``: ``save_pretrained`` output (safetensors) of a ``SegformerForSemanticSegmentation``
    (e.g. Cityscapes), ``SegformerForImageClassification`` or ``SegformerModel`` (ImageNet MiT).
    The first patch-embedding kernel ``[C, 3, k, k]`` becomes its mean over the RGB axis
    ``[C, 1, k, k]`` (bias unchanged); every other encoder tensor is copied unchanged; a decode
    head, if present, is copied except its classifier, which is newly initialised.
    """
    import torch
    from transformers import (SegformerConfig, SegformerForImageClassification,
                              SegformerForSemanticSegmentation, SegformerModel)

    folder = check_model_folder(folder, need_card=False)
    try:
        src_cfg = SegformerConfig.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise ModelError(f"{folder}: config.json is not a SegFormer configuration: {exc}") from exc
    archs = list(getattr(src_cfg, "architectures", None) or [])
    cls = {"SegformerForImageClassification": SegformerForImageClassification,
           "SegformerModel": SegformerModel}.get(archs[0] if archs else "", SegformerForSemanticSegmentation)
    src = _from_pretrained(cls, folder)
    src_enc = src if isinstance(src, SegformerModel) else src.segformer
    src_head = getattr(src, "decode_head", None)

    overrides = {k: getattr(src_cfg, k) for k in _ARCH_KEYS}
    for k in ("hidden_act", "layer_norm_eps", "drop_path_rate", "reshape_last_stage"):
        overrides[k] = getattr(src_cfg, k)
    if seed is not None:
        torch.manual_seed(seed)
    dst = SegformerForSemanticSegmentation(
        segformer_config("b0", num_labels=num_labels, num_channels=num_channels, **overrides))

    first = _first_conv(src_enc)
    first_name = next(n for n, m in src_enc.named_modules() if m is first) + ".weight"
    src_sd = src_enc.state_dict()
    dst_sd = dst.segformer.state_dict()
    if set(src_sd) != set(dst_sd):
        raise ModelError(f"{folder}: encoder tensors do not match a SegFormer encoder "
                         f"(missing {sorted(set(dst_sd) - set(src_sd))[:3]})")
    new_sd = {}
    with torch.no_grad():
        for k, v in src_sd.items():
            if k == first_name:
                if v.shape[1] == num_channels:
                    new_sd[k] = v.clone()
                elif num_channels == 1:
                    new_sd[k] = v.mean(dim=1, keepdim=True)
                else:
                    raise ModelError(f"{folder}: cannot map {v.shape[1]} input channels to {num_channels}")
            else:
                new_sd[k] = v.clone()
        dst.segformer.load_state_dict(new_sd, strict=True)
        if src_head is not None:
            head_sd = {k: v for k, v in src_head.state_dict().items() if not k.startswith("classifier.")}
            missing = dst.decode_head.load_state_dict(head_sd, strict=False)
            if missing.unexpected_keys:
                raise ModelError(f"{folder}: unexpected decode-head tensors {missing.unexpected_keys[:3]}")
    log.info("initialised a %s SegFormer from %s (first patch embedding averaged over RGB)",
             variant_of(dst.config), folder)
    return dst.eval()


# --- model card ------------------------------------------------------------------------------
def _default_classes() -> list[dict[str, Any]]:
    return [{"label": BACKGROUND, "code": "BG", "name": "Background", "color": [0, 0, 0]}] + [
        {"label": r.label, "code": r.code, "name": r.name, "color": list(r.color)} for r in MODEL_CLASSES]


@dataclass
class ModelCard:
    """What a model is, how to feed it, what it was trained on and how well it did (JSON)."""

    name: str
    variant: str = MODEL.variant
    description: str = ""
    classes: list[dict[str, Any]] = field(default_factory=_default_classes)
    preprocessing: dict[str, Any] = field(default_factory=lambda: InputSpec().to_dict())
    training_data: str = "unspecified"
    training: dict[str, Any] = field(default_factory=dict)  # hyper-parameters, epochs, seed...
    metrics: dict[str, Any] = field(default_factory=dict)  # e.g. Table I figures on a test set
    intended_use: str = "Research use only. Not a medical device; not for clinical decisions."
    limitations: str = ""
    initialised_from: str = ""
    license: str = "Apache-2.0"
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    hrpqct_version: str = field(default_factory=lambda: __import__("hrpqct").__version__)
    format: str = CARD_FORMAT
    format_version: int = CARD_VERSION

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec.from_dict(self.preprocessing)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "model card") -> "ModelCard":
        if d.get("format", CARD_FORMAT) != CARD_FORMAT:
            raise ModelError(f"{where}: not an HRpQCT model card (format {d.get('format')!r})")
        if int(d.get("format_version", 1)) > CARD_VERSION:
            raise ModelError(f"{where}: card format {d['format_version']} is newer than this "
                             f"version of hrpqct understands ({CARD_VERSION}); update hrpqct")
        names = {f.name for f in fields(cls)}
        if "name" not in d:
            raise ModelError(f"{where}: card has no 'name'")
        card = cls(**{k: v for k, v in d.items() if k in names})
        try:
            card.input_spec  # validate now, with the file name in the message
        except Exception as exc:
            raise ModelError(f"{where}: bad preprocessing block: {exc}") from exc
        return card

    @classmethod
    def read(cls, path: str | os.PathLike) -> "ModelCard":
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: cannot read the model card: {exc}") from exc
        return cls.from_dict(d, str(path))


def render_readme(card: ModelCard) -> str:
    """A human-readable README.md for a model folder, generated from its card."""
    spec = card.input_spec
    lines = [
        f"# {card.name}", "",
        card.description or "SegFormer segmentation of HR-pQCT distal tibia slices.", "",
        f"- Architecture: SegFormer-{card.variant.upper()} (transformers "
        "`SegformerForSemanticSegmentation`), 1 input channel, "
        f"{len(card.classes)} outputs",
        f"- Intended use: {card.intended_use}",
        f"- Training data: {card.training_data}",
    ]
    if card.initialised_from:
        lines.append(f"- Initialised from: {card.initialised_from}")
    if card.limitations:
        lines.append(f"- Limitations: {card.limitations}")
    lines += [f"- Licence: {card.license}; created {card.created} with hrpqct {card.hrpqct_version}", "",
              "## Classes", "", "| label | code | name |", "|---|---|---|"]
    lines += [f"| {c['label']} | {c['code']} | {c['name']} |" for c in card.classes]
    lines += ["", "## Preprocessing (per slice)", "",
              f"1. Crop a {spec.crop_mm:.2f} mm square around the limb (pad with {spec.pad_hu:g} HU).",
              f"2. Clip to [{spec.clip_hu[0]:g}, {spec.clip_hu[1]:g}] HU; min-max normalise to [0, 1].",
              f"3. Resample (bicubic{', antialiased' if spec.antialias else ''}) to "
              f"{spec.input_px} x {spec.input_px} px ({spec.input_mm * 1000:.1f} um per pixel).",
              f"4. Output at 1/4 of the input side, upsampled to the scan ({spec.upsample}).", ""]
    if card.training:
        lines += ["## Training", "", "```json", json.dumps(card.training, indent=2), "```", ""]
    lines += ["## Metrics", ""]
    if card.metrics:
        lines += ["```json", json.dumps(card.metrics, indent=2), "```", ""]
    else:
        lines += ["None recorded.", ""]
    lines += ["_Generated from model_card.json; edit the card, not this file._", ""]
    return "\n".join(lines)


# --- save / load -----------------------------------------------------------------------------
def write_card(folder: str | os.PathLike, card: ModelCard) -> None:
    """Write ``card`` as the folder's model card and its README (each atomically)."""
    from ..io.atomic import atomic_write_text

    atomic_write_text(Path(folder) / CARD_FILE, json.dumps(card.to_dict(), indent=2) + "\n")
    atomic_write_text(Path(folder) / "README.md", render_readme(card))


def save_model(model, folder: str | os.PathLike, card: ModelCard) -> Path:
    """Write ``model`` (safetensors), ``model_card.json`` and ``README.md`` to ``folder``.

    Atomic (:func:`hrpqct.io.atomic.atomic_folder`): everything is written to a temporary folder
    beside ``folder`` and moved into place; an existing folder is replaced only once the new one
    is complete, and stays if anything fails.
    """
    from ..io.atomic import atomic_folder

    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        model.save_pretrained(str(tmp))
        if not list(tmp.glob("*.safetensors")):
            raise ModelError(f"{folder}: save_pretrained wrote no safetensors file")
        (tmp / CARD_FILE).write_text(json.dumps(card.to_dict(), indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(render_readme(card), encoding="utf-8")
    return folder


@dataclass
class LoadedModel:
    """A SegFormer ready for inference (eval mode) with its card and where it came from."""

    model: Any
    card: ModelCard
    folder: Path | None = None

    @property
    def input_spec(self) -> InputSpec:
        return self.card.input_spec


def load_model(folder: str | os.PathLike, device: str | None = None) -> LoadedModel:
    """Load a model folder written by :func:`save_model` (safetensors + card); eval mode."""
    from transformers import SegformerForSemanticSegmentation

    folder = check_model_folder(resolve_model(folder) if not Path(folder).is_dir() else folder)
    card = ModelCard.read(folder / CARD_FILE)
    model = _from_pretrained(SegformerForSemanticSegmentation, folder)
    if model.config.num_channels != MODEL.num_channels or model.config.num_labels != len(card.classes):
        raise ModelError(
            f"{folder}: model has {model.config.num_channels} input channel(s) and "
            f"{model.config.num_labels} outputs; expected {MODEL.num_channels} and "
            f"{len(card.classes)} (the card's classes)")
    if device is not None:
        model = model.to(device)
    return LoadedModel(model.eval(), card, folder)


# --- catalogue -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CatalogEntry:
    """One model the extension knows about (``Resources/models/catalog.json``)."""

    id: str
    title: str
    variant: str
    description: str
    folder: str | None = None  # relative to Resources/models, when the model is bundled
    bundled: bool = False
    clinical_use: bool = False
    training_data: str = ""
    how_to_get: str = ""
    default: bool = False

    def path(self) -> Path | None:
        return _models_dir() / self.folder if self.folder else None


def _models_dir() -> Path:
    env = os.environ.get("HRPQCT_MODELS_DIR")
    if env:
        return Path(env)
    from importlib.resources import files

    return Path(str(files("hrpqct.resources"))) / "models"


def catalog(path: str | os.PathLike | None = None) -> list[CatalogEntry]:
    """The model catalogue (default ``Resources/models/catalog.json``; ``HRPQCT_MODELS_DIR`` overrides)."""
    path = Path(path) if path else _models_dir() / "catalog.json"
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read the model catalogue: {exc}") from exc
    names = {f.name for f in fields(CatalogEntry)}
    default = d.get("default")
    return [CatalogEntry(**{k: v for k, v in m.items() if k in names}, **(
        {"default": m.get("id") == default} if "default" not in m else {})) for m in d.get("models", [])]


def resolve_model(name_or_path: str | os.PathLike | None = None) -> Path:
    """A model folder from a path, a catalogue id, or ``None`` (the catalogue's default model).

    Raises :class:`ModelError` with what to do when the folder does not exist; never downloads.
    """
    if name_or_path is not None and Path(name_or_path).is_dir():
        return Path(name_or_path)
    if isinstance(name_or_path, os.PathLike) or (
            isinstance(name_or_path, str) and ("/" in name_or_path or os.sep in name_or_path)):
        raise ModelError(f"{name_or_path}: model folder not found")
    entries = catalog()
    if name_or_path is None:
        entry = next((e for e in entries if e.default), None)
        if entry is None:
            raise ModelError("the model catalogue names no default model; pass --model DIR")
    else:
        entry = next((e for e in entries if e.id == str(name_or_path)), None)
        if entry is None:
            raise ModelError(f"{name_or_path}: neither a model folder nor a catalogue id "
                             f"(known ids: {', '.join(e.id for e in entries)})")
    path = entry.path()
    if path is None or not path.is_dir():
        where = path if path is not None else entry.id
        hint = entry.how_to_get or "train one with `hrpqct train-seg` and pass --model DIR"
        raise ModelError(f"{where}: model {entry.id!r} is not installed ({hint}); nothing is downloaded")
    return path
