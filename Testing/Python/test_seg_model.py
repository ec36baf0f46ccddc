"""SegFormer variants, conversion from RGB-pretrained folders, safetensors-only folders, cards."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import (SegformerConfig, SegformerForImageClassification,
                          SegformerForSemanticSegmentation)

from hrpqct.errors import ModelError
from hrpqct.regions import MODEL_CLASSES
from hrpqct.seg import model as M
from hrpqct.seg.preprocess import InputSpec


def test_variants_follow_the_segformer_paper():
    b3 = M.segformer_config("b3")
    assert list(b3.depths) == [3, 4, 18, 3]
    assert list(b3.hidden_sizes) == [64, 128, 320, 512]
    assert b3.decoder_hidden_size == 768
    assert b3.num_channels == 1 and b3.num_labels == 6
    assert b3.id2label[1] == "Tibia cortical" and b3.id2label[0] == "Background"
    assert list(M.segformer_config("b0").hidden_sizes) == [32, 64, 160, 256]
    assert M.segformer_config("b1").decoder_hidden_size == 256
    assert [list(M.segformer_config(v).depths) for v in ("b2", "b4", "b5")] == [
        [3, 4, 6, 3], [3, 8, 27, 3], [3, 6, 40, 3]]
    with pytest.raises(ModelError):
        M.segformer_config("b9")


def test_b0_parameter_count_and_tiny_forward_shape():
    b0 = M.build_model("b0", seed=0)
    n = sum(p.numel() for p in b0.parameters())
    assert 3.6e6 < n < 3.8e6  # SegFormer paper: B0 3.7 M (with its 150-class head; ours has 6)
    tiny = M.build_model("tiny", seed=0)
    with torch.inference_mode():
        out = tiny(torch.rand(2, 1, 64, 64)).logits
    assert tuple(out.shape) == (2, 6, 16, 16)
    assert M.variant_of(tiny.config) == "tiny" and M.variant_of(b0.config) == "b0"


def _rgb_model(cls, tmp_path, name, **kw):
    cfg = M.segformer_config("tiny", num_channels=3, num_labels=19, **kw)
    torch.manual_seed(3)
    src = cls(cfg).eval()
    folder = tmp_path / name
    src.save_pretrained(folder)
    return src, folder


def test_init_from_cityscapes_like_folder_averages_rgb_exactly(tmp_path):
    src, folder = _rgb_model(SegformerForSemanticSegmentation, tmp_path, "cityscapes")
    with torch.no_grad():  # make the decode head's batch norm non-trivial
        src.decode_head.batch_norm.running_mean.uniform_(-1, 1)
    src.save_pretrained(folder)
    dst = M.init_from_pretrained(folder)
    assert dst.config.num_channels == 1 and dst.config.num_labels == 6
    s_sd, d_sd = src.segformer.state_dict(), dst.segformer.state_dict()
    first = "stages.0.patch_embeddings.proj.weight"
    assert first in s_sd and s_sd[first].shape[1] == 3 and d_sd[first].shape[1] == 1
    assert torch.equal(d_sd[first], s_sd[first].mean(dim=1, keepdim=True))
    others = [k for k in s_sd if k != first]
    assert len(others) > 20
    for k in others:
        assert torch.equal(d_sd[k], s_sd[k]), k
    # decode head copied except the classifier, which is new with 6 outputs
    for k, v in src.decode_head.state_dict().items():
        if k.startswith("classifier."):
            assert dst.decode_head.state_dict()[k].shape[0] == 6
        else:
            assert torch.equal(dst.decode_head.state_dict()[k], v), k


def test_init_from_imagenet_classification_folder(tmp_path):
    src, folder = _rgb_model(SegformerForImageClassification, tmp_path, "imagenet")
    dst = M.init_from_pretrained(folder)
    first = "stages.0.patch_embeddings.proj.weight"
    assert torch.equal(dst.segformer.state_dict()[first],
                       src.segformer.state_dict()[first].mean(dim=1, keepdim=True))
    with torch.inference_mode():
        assert tuple(dst(torch.rand(1, 1, 32, 32)).logits.shape) == (1, 6, 8, 8)


def test_pickle_only_folders_are_refused(tmp_path, monkeypatch):
    folder = tmp_path / "old-model"
    folder.mkdir()
    SegformerConfig(num_channels=3).to_json_file(folder / "config.json")
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load must never be called"))
    with pytest.raises(ModelError, match="old-model.*pickle"):
        M.init_from_pretrained(folder)
    with pytest.raises(ModelError, match="old-model"):
        M.load_model(folder)
    with pytest.raises(ModelError, match="not found"):
        M.load_model(tmp_path / "missing")


def test_save_and_load_with_card(tmp_path, monkeypatch):
    net = M.build_model("tiny", seed=1)
    spec = InputSpec(crop_mm=50.0, input_px=256, upsample="nearest")
    card = M.ModelCard(name="unit-test", variant="tiny", preprocessing=spec.to_dict(),
                       training_data="nothing (random weights)", metrics={"mean_f1": 0.5})
    folder = M.save_model(net, tmp_path / "m", card)
    names = sorted(p.name for p in folder.iterdir())
    assert "model.safetensors" in names and "config.json" in names
    assert "model_card.json" in names and "README.md" in names
    assert not any(n.endswith((".bin", ".pt", ".pth")) for n in names)
    d = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    assert [c["code"] for c in d["classes"]] == ["BG"] + [r.code for r in MODEL_CLASSES]
    assert d["preprocessing"]["input_px"] == 256
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "Tibia cortical" in readme and "256 x 256" in readme and "unit-test" in readme
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load must never be called"))
    loaded = M.load_model(folder)
    assert loaded.input_spec == spec and loaded.card.metrics == {"mean_f1": 0.5}
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v), k
    # saving again replaces the folder atomically (no leftovers beside it)
    M.save_model(net, folder, card)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    (folder / "model_card.json").unlink()
    with pytest.raises(ModelError, match="model_card.json"):
        M.load_model(folder)


def test_catalogue_and_default_model(tmp_path, monkeypatch):
    entries = M.catalog()
    ids = [e.id for e in entries]
    assert "paper-b3" in ids and sum(e.default for e in entries) == 1
    assert all(not e.clinical_use for e in entries)
    # a catalogue whose default model folder is missing: clear ModelError, nothing downloaded
    cat = {"default": "demo", "models": [{"id": "demo", "title": "d", "variant": "tiny",
                                          "description": "", "folder": "demo", "bundled": True}]}
    (tmp_path / "catalog.json").write_text(json.dumps(cat), encoding="utf-8")
    monkeypatch.setenv("HRPQCT_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="not installed"):
        M.resolve_model(None)
    with pytest.raises(ModelError, match="catalogue id"):
        M.resolve_model("nope")
    M.save_model(M.build_model("tiny", seed=0), tmp_path / "demo", M.ModelCard(name="demo", variant="tiny"))
    assert M.resolve_model(None) == tmp_path / "demo"
    assert M.load_model("demo").card.name == "demo"
