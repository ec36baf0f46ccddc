"""Fast CPU path: each exact transformation keeps the logits (1e-4), the ONNX Runtime backend,
its cache, and the clean fallback to PyTorch when onnxruntime is absent or fails."""

from __future__ import annotations

import builtins
import copy
import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hrpqct.errors import ModelError
from hrpqct.seg import accel_openvino as OV
from hrpqct.seg import cpu_select as CS
from hrpqct.seg import fastcpu as FC
from hrpqct.seg import inference as I
from hrpqct.seg.model import build_model
from hrpqct.seg.preprocess import InputSpec
from small_scans import small_leg as scan

TOL = dict(rtol=1e-4, atol=1e-4)
ORT = FC.onnxruntime_available()
needs_ort = pytest.mark.skipif(not ORT, reason="onnxruntime not installed (extra 'fastcpu')")
OPENVINO = ORT and OV.openvino_available()
needs_ov = pytest.mark.skipif(not OPENVINO, reason="openvino/onnxruntime not installed (extra 'fastcpu')")


@pytest.fixture(scope="module")
def tiny():
    net = build_model("tiny", seed=3)
    with torch.no_grad():  # non-trivial batch norm and margins, so folding is really tested
        bn = net.decode_head.batch_norm
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
        net.decode_head.classifier.weight.mul_(20)
    return net.eval()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private export cache (never the user's) and no sessions left from other tests."""
    monkeypatch.setenv(FC.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(FC.BACKEND_ENV, raising=False)
    FC._SESSIONS.clear()
    OV._COMPILED.clear()
    yield tmp_path / "cache" / "onnx"
    FC._SESSIONS.clear()
    OV._COMPILED.clear()


def reference(model, x):
    with torch.inference_mode():
        return model(x).logits


def with_attention(model, impl):
    m = copy.deepcopy(model)
    m.config._attn_implementation = impl
    return m


def attention_modules(model):
    return [m for m in model.modules() if hasattr(m, "q_proj") and hasattr(m, "scaling")]


@pytest.fixture(scope="module")
def sharp(tiny):
    """``tiny`` with attention that matters: at initialisation (std 0.02) its attention is nearly
    uniform and adds ~1e-3 to the logits, so any attention kernel would pass a 1e-4 check.
    Larger query/key weights make it peaked, larger value/output weights make it count."""
    net = copy.deepcopy(tiny)
    with torch.no_grad():
        for a in attention_modules(net):
            a.q_proj.weight.mul_(20)
            a.k_proj.weight.mul_(20)
            a.v_proj.weight.mul_(10)
            a.o_proj.weight.mul_(10)
    return net.eval()


# --- exact transformations, one at a time ---------------------------------------------------
def test_sdpa_attention_equals_explicit_softmax(sharp, monkeypatch):
    x = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    eager, sdpa = with_attention(sharp, "eager"), with_attention(sharp, "sdpa")
    ref = reference(eager, x)
    # the check can fail: 5 % off in the attention scale, or no attention at all, is seen
    off = copy.deepcopy(eager)
    for a in attention_modules(off):
        a.scaling *= 1.05
    assert (reference(off, x) - ref).abs().max() > 10 * TOL["atol"]
    gone = copy.deepcopy(eager)
    with torch.no_grad():
        for a in attention_modules(gone):
            a.o_proj.weight.zero_()
    assert (reference(gone, x) - ref).abs().max() > 100 * TOL["atol"]
    # sdpa really runs (once per attention block) and gives the explicit softmax's logits
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kw):
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    got = reference(sdpa, x)
    assert len(calls) == len(attention_modules(sharp)) == sum(sharp.config.depths)
    torch.testing.assert_close(got, ref, **TOL)
    # the fast path switches a model loaded with eager attention to sdpa, on its own copy only
    calls.clear()
    fast = FC.FastSegformer(eager)
    assert {a.config._attn_implementation for a in attention_modules(fast.encoder)} == {"sdpa"}
    assert {a.config._attn_implementation for a in attention_modules(eager)} == {"eager"}
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), ref, **TOL)
    assert len(calls) == sum(sharp.config.depths)


def test_folded_head_alone_equals_the_decode_head(tiny):
    x = torch.rand(2, 1, 72, 88, generator=torch.Generator().manual_seed(1))  # odd stage sizes
    with torch.inference_mode():
        feats = FC.encoder_features(tiny.segformer, x)
        ref = tiny.decode_head(feats)
        got = FC.FoldedDecodeHead(tiny.decode_head)([f.permute(0, 2, 3, 1) for f in feats])
    torch.testing.assert_close(got, ref, **TOL)


def test_channels_last_encoder_equals_the_reference(tiny):
    x = torch.rand(2, 1, 64, 80, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        ref = FC.encoder_features(tiny.segformer, x)
        enc = copy.deepcopy(tiny.segformer).to(memory_format=torch.channels_last)
        got = FC.encoder_features(enc, x, channels_last=True)
    assert [tuple(g.shape) for g in got] == [(2, r.shape[2], r.shape[3], r.shape[1]) for r in ref]
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r.permute(0, 2, 3, 1), **TOL)


def test_torch_fast_path_does_not_touch_the_model(tiny):
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    fast = FC.fast_cpu_model(tiny, backend="torch")
    assert isinstance(fast, FC.FastSegformer) and fast.backend == "torch"
    x = torch.rand(3, 1, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), reference(tiny, x), **TOL)
    after = tiny.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert next(tiny.segformer.parameters()).is_contiguous()  # not made channels-last


# --- backend choice -------------------------------------------------------------------------
def test_backend_names_and_environment(monkeypatch):
    monkeypatch.delenv(FC.BACKEND_ENV, raising=False)
    assert FC.resolve_backend() == "auto"
    assert FC.resolve_backend("ORT") == "onnxruntime" and FC.resolve_backend("ov") == "openvino"
    monkeypatch.setenv(FC.BACKEND_ENV, "torch")
    assert FC.resolve_backend() == "torch" and FC.resolve_backend("auto") == "auto"
    with pytest.raises(ModelError, match="unknown CPU backend"):
        FC.resolve_backend("tensorrt")


def test_auto_runs_small_networks_on_pytorch_and_exports_nothing(tiny, cache, monkeypatch):
    for backend in (None, "auto"):
        net = FC.fast_cpu_model(tiny, backend=backend)
        assert isinstance(net, CS.AutoSegformer) and net.backend == "auto"
        x = torch.rand(2, 1, 64, 64)
        with torch.inference_mode():
            torch.testing.assert_close(net(x), reference(tiny, x), **TOL)
        assert net.backend == "torch" and net.report["small"]  # too small to measure
    p = I.make_predictor(tiny, "cpu")
    p(torch.rand(1, 1, 64, 64))
    assert p.backend == "torch" and p.describe() == "cpu (fast CPU path, torch)"
    assert I.make_predictor(tiny, "cpu", fast_cpu=False).backend == "plain"
    assert isinstance(FC.fast_cpu_model(tiny, backend="torch"), FC.FastSegformer)
    if ORT:  # the environment variable picks ONNX Runtime for callers that pass nothing
        monkeypatch.setenv(FC.BACKEND_ENV, "onnxruntime")
        assert isinstance(FC.fast_cpu_model(tiny), FC.OrtSegformer)
    assert not cache.exists()  # nothing exported, no choice written


def hide_onnxruntime(monkeypatch):
    real = builtins.__import__

    def fake(name, *args, **kw):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise ImportError(f"No module named {name!r} (hidden by the test)")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", fake)


def test_without_onnxruntime_the_default_runs_and_asking_for_it_raises(tiny, cache, monkeypatch):
    hide_onnxruntime(monkeypatch)
    assert not FC.onnxruntime_available()
    assert CS.candidates() == ["torch"] and CS.candidates(quantize=True) == ["torch", "torch-int8"]
    assert isinstance(FC.fast_cpu_model(tiny, backend="torch"), FC.FastSegformer)
    with pytest.raises(ModelError, match="pip install"):
        FC.fast_cpu_model(tiny, backend="onnxruntime")
    monkeypatch.setenv(FC.BACKEND_ENV, "onnxruntime")
    with pytest.raises(ModelError, match="hrpqct\\[fastcpu\\]"):
        I.make_predictor(tiny, "cpu")
    monkeypatch.delenv(FC.BACKEND_ENV)
    # the whole segmentation still runs, with the same labels as the plain model
    vol = scan(3)
    a = I.segment_volume(vol, tiny, device="cpu", input_spec=SPEC)
    b = I.segment_volume(vol, tiny, device="cpu", input_spec=SPEC, fast_cpu=False)
    assert a.fast_cpu and (a.labels.array == b.labels.array).mean() > 0.999
    assert not cache.exists()


# --- ONNX Runtime ---------------------------------------------------------------------------
SPEC = InputSpec(crop_mm=8.0, input_px=64)


@needs_ort
def test_onnxruntime_logits_equal_pytorch_and_the_export_is_cached(tiny, cache, caplog):
    net = FC.fast_cpu_model(tiny, backend="onnxruntime")
    assert isinstance(net, FC.OrtSegformer)
    for shape in [(3, 1, 64, 64), (1, 1, 72, 88)]:  # batches run slice by slice; odd sizes
        x = torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape)))
        with torch.inference_mode():
            got = net(x)
        assert isinstance(got, torch.Tensor) and got.shape == (shape[0], 6, shape[2] // 4, -(-shape[3] // 4))
        torch.testing.assert_close(got, reference(tiny, x), **TOL)
    assert net.backend == "onnxruntime" and net.fallback is None
    files = sorted(p.name for p in cache.glob("*.onnx"))
    assert files == [f"segformer-{net.key}-64x64.onnx", f"segformer-{net.key}-72x88.onnx"]
    assert not list(cache.glob("*.tmp*"))  # written atomically
    # a new object (new process, say) takes the cached file: no second export
    FC._SESSIONS.clear()
    again = FC.fast_cpu_model(tiny, backend="onnxruntime")
    x = torch.rand(2, 1, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(again(x), reference(tiny, x), **TOL)
    assert again.exporter is None and again.key == net.key
    # other weights, other key
    other = copy.deepcopy(tiny)
    with torch.no_grad():
        other.decode_head.classifier.bias.add_(1.0)
    assert FC.weights_key(other) != net.key


@needs_ort
def test_segment_volume_on_onnxruntime_gives_the_same_labels(tiny, cache):
    vol = scan(5)
    ort = I.segment_volume(vol, tiny, device="cpu", input_spec=SPEC, batch_size=2,
                           cpu_backend="onnxruntime")
    plain = I.segment_volume(vol, tiny, device="cpu", input_spec=SPEC, fast_cpu=False)
    assert (ort.labels.array == plain.labels.array).mean() > 0.999
    np.testing.assert_allclose(ort.confidence.mean_max_prob, plain.confidence.mean_max_prob, rtol=1e-4)
    p = I.make_predictor(tiny, "cpu", cpu_backend="onnxruntime")
    p(torch.rand(1, 1, 64, 64))
    assert p.backend == "onnxruntime" and "onnxruntime" in p.describe()


@needs_ort
def test_failed_export_falls_back_to_pytorch(tiny, cache, monkeypatch, caplog):
    def broken(net, path, shape):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(FC, "export_onnx", broken)
    net = FC.OrtSegformer(tiny)
    x = torch.rand(2, 1, 64, 64)
    with caplog.at_level(logging.WARNING, logger="hrpqct.seg.fastcpu"):
        got = net(x)
    torch.testing.assert_close(got, reference(tiny, x), **TOL)
    assert net.fallback and "exporter exploded" in net.fallback
    assert net.backend.startswith("torch") and "PyTorch fast path" in caplog.text
    assert not list(cache.glob("*.onnx"))  # nothing half-written left behind
    with pytest.raises(ModelError, match="exporter exploded"):
        FC.OrtSegformer(tiny, strict=True)(x)


@needs_ort
def test_export_that_disagrees_is_rejected(tiny, cache, monkeypatch):
    real = FC.export_onnx

    def wrong_weights(net, path, shape):  # exports another network than the one checked
        other = copy.deepcopy(net)
        with torch.no_grad():
            other.head.cls_b.add_(0.5)
        return real(other, path, shape)

    monkeypatch.setattr(FC, "export_onnx", wrong_weights)
    net = FC.OrtSegformer(tiny)
    x = torch.rand(1, 1, 64, 64)
    torch.testing.assert_close(net(x), reference(tiny, x), **TOL)  # the PyTorch answer
    assert "differs from PyTorch" in net.fallback
    assert not list(cache.glob("*.onnx"))  # the wrong file never reached the cache


@needs_ort
def test_damaged_cache_file_is_exported_again(tiny, cache):
    net = FC.OrtSegformer(tiny)
    net(torch.rand(1, 1, 64, 64))
    path = net.paths[(64, 64)]
    path.write_bytes(b"not an onnx file")
    FC._SESSIONS.clear()
    again = FC.OrtSegformer(tiny)
    x = torch.rand(1, 1, 64, 64)
    torch.testing.assert_close(again(x), reference(tiny, x), **TOL)
    assert again.fallback is None and again.exporter is not None and path.stat().st_size > 1000


@needs_ort
def test_int8_is_opt_in_and_close(tiny, cache):
    net = FC.fast_cpu_model(tiny, backend="onnxruntime", quantize=True)
    x = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(5))
    got, ref = net(x), reference(tiny, x)
    assert net.paths[(64, 64)].name.endswith("-int8.onnx")
    assert not torch.allclose(got, ref, rtol=0, atol=1e-7)  # really quantised
    assert (got - ref).abs().max() < 0.05 * ref.abs().max()
    assert (got.argmax(1) == ref.argmax(1)).float().mean() > 0.95


@needs_ort
def test_cache_keeps_the_most_recent_files(tmp_path):
    folder = tmp_path / "onnx"
    folder.mkdir()
    import os
    import time

    for i in range(FC.CACHE_KEEP + 3):
        p = folder / f"segformer-{i:02d}-8x8.onnx"
        p.write_bytes(b"x")
        os.utime(p, (time.time() - 100 + i, time.time() - 100 + i))
    (folder / "unrelated.txt").write_text("kept", encoding="utf-8")
    FC._prune_cache(folder)
    left = sorted(p.name for p in folder.glob("segformer-*"))
    assert left == [f"segformer-{i:02d}-8x8.onnx" for i in range(3, FC.CACHE_KEEP + 3)]
    assert (folder / "unrelated.txt").exists()


def test_fast_path_shares_the_linear_weights_and_large_scans_run_one_slice_at_a_time(tiny):
    # memory of a full scan (bench_seg_memory --command): one copy of the linear weights, and
    # batch 1 on the CPU for scans over LARGE_SCAN_BYTES
    fast = FC.FastSegformer(tiny)
    own = {p.data_ptr(): p.dim() for p in tiny.segformer.parameters()}
    mine = {p.data_ptr(): p.dim() for p in fast.encoder.parameters()}
    shared = set(own) & set(mine)
    assert shared and all(own[k] != 4 for k in shared)
    assert {k for k, d in own.items() if d != 4} <= shared  # every non-convolution weight
    assert not any(own[k] == 4 for k in shared)  # conv kernels are channels-last copies
    assert I.default_batch_size("cpu") == 2
    assert I.default_batch_size("cpu", I.LARGE_SCAN_BYTES + 1) == 1
    assert I.default_batch_size("cuda", I.LARGE_SCAN_BYTES + 1) == 8


# --- OpenVINO -------------------------------------------------------------------------------
@needs_ov
def test_openvino_logits_equal_pytorch_and_reuse_the_onnx_export(tiny, cache):
    net = FC.fast_cpu_model(tiny, backend="openvino")
    assert isinstance(net, OV.OvSegformer) and net.backend == "openvino"
    for shape in [(3, 1, 64, 64), (1, 1, 72, 88)]:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape)))
        got = net(x)
        assert got.shape == (shape[0], 6, shape[2] // 4, -(-shape[3] // 4))
        torch.testing.assert_close(got, reference(tiny, x), **TOL)
    # one ONNX file per size, shared with the ONNX Runtime backend (no second export)
    assert sorted(p.name for p in cache.glob("*.onnx")) == [
        f"segformer-{net.key}-64x64.onnx", f"segformer-{net.key}-72x88.onnx"]
    ort = FC.OrtSegformer(tiny)
    ort(torch.rand(1, 1, 64, 64))
    assert ort.exporter is None
    # a new object in the same process reuses the compiled model
    again = OV.OvSegformer(tiny)
    x = torch.rand(2, 1, 64, 64)
    torch.testing.assert_close(again(x), reference(tiny, x), **TOL)
    assert again.compiled(64, 64) is net.compiled(64, 64)
    vol = scan(3)
    a = I.segment_volume(vol, tiny, device="cpu", input_spec=SPEC, cpu_backend="openvino")
    b = I.segment_volume(vol, tiny, device="cpu", input_spec=SPEC, fast_cpu=False)
    assert (a.labels.array == b.labels.array).mean() > 0.999


@needs_ov
@pytest.mark.skipif(not OV.nncf_available(), reason="nncf not installed")
def test_openvino_int8_is_quantised_close_and_cached(tiny, cache, monkeypatch):
    calls = []

    def calibration(h, w, n=OV.CALIBRATION_SLICES):  # stands in for the (slow) phantom slices
        calls.append((h, w))
        g = torch.Generator().manual_seed(11)
        return [torch.rand(1, 1, h, w, generator=g).numpy() for _ in range(n)]

    monkeypatch.setattr(OV, "phantom_calibration_inputs", calibration)
    net = FC.fast_cpu_model(tiny, backend="openvino", quantize=True)
    x = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(5))
    got, ref = net(x), reference(tiny, x)
    assert net.paths[(64, 64)].name.endswith("-ov-int8.xml") and calls == [(64, 64)]
    assert net.paths[(64, 64)].with_suffix(".bin").is_file()
    assert not torch.allclose(got, ref, rtol=0, atol=1e-6)  # really quantised
    assert (got - ref).abs().max() < 0.1 * ref.abs().max()
    OV._COMPILED.clear()
    again = OV.OvSegformer(tiny, quantize=True)
    torch.testing.assert_close(again(x), got, rtol=1e-5, atol=1e-5)  # the cached IR
    assert calls == [(64, 64)]  # not calibrated twice


def test_phantom_calibration_inputs_are_preprocessed_slices():
    xs = OV.phantom_calibration_inputs(96, 96, n=1)
    assert len(xs) == 1 and xs[0].shape == (1, 1, 96, 96) and xs[0].dtype == np.float32
    assert 0.0 <= xs[0].min() and xs[0].max() <= 1.0 and xs[0].std() > 0.01  # a limb, not blank
    with pytest.raises(ModelError, match="square"):
        OV.phantom_calibration_inputs(96, 64, n=1)


# --- automatic choice -----------------------------------------------------------------------
def fake_backends(monkeypatch, seconds, shift=None):
    """Backends that answer the PyTorch logits and take ``seconds[name]`` on a fake clock (the
    choice must not depend on the machine's load); ``shift[name]`` changes that many labels."""
    import time

    clock = [0.0]
    monkeypatch.setattr(CS, "time", SimpleNamespace(perf_counter=lambda: clock[0],
                                                    strftime=time.strftime))

    class Fake:
        def __init__(self, name, model):
            self.name, self.net = name, FC.optimise_for_cpu(model)

        def __call__(self, x):
            with torch.inference_mode():
                out = self.net(x).clone()
            clock[0] += seconds[self.name]
            if shift and self.name in shift:
                flat = out[:, 0].reshape(-1)
                flat[: shift[self.name]] += 1e3  # these pixels become background
            return out

    built = []

    def build(name, model, threads=None, cache=None):
        built.append(name)
        return Fake(name, model)

    monkeypatch.setattr(CS, "build", build)
    monkeypatch.setattr(CS, "candidates", lambda quantize=False: [
        n for n in seconds if quantize or "int8" not in n])
    monkeypatch.setattr(CS, "MIN_WORK", 0)
    return built


def test_auto_measures_once_picks_the_fastest_and_caches_the_choice(tiny, cache, monkeypatch):
    built = fake_backends(monkeypatch, {"torch": 0.03, "onnxruntime": 0.001, "openvino": 0.015})
    x = torch.rand(1, 1, 64, 64)
    net = FC.fast_cpu_model(tiny)
    torch.testing.assert_close(net(x), reference(tiny, x), **TOL)
    assert net.choice == "onnxruntime" and built == ["torch", "onnxruntime", "openvino"]
    saved = json.loads(CS.selection_file().read_text(encoding="utf-8"))
    (key, entry), = saved["choices"].items()
    assert CS.machine_id() in key and "64x64" in key and entry["backend"] == "onnxruntime"
    assert entry["figures"]["torch"]["seconds"] > entry["figures"]["onnxruntime"]["seconds"]
    # a new process: the cached choice, no measurement
    built.clear()
    again = FC.fast_cpu_model(tiny)
    again(x)
    assert again.choice == "onnxruntime" and built == ["onnxruntime"]
    # another machine (or software versions): measured again
    monkeypatch.setattr(CS, "machine_id", lambda: "another-machine")
    built.clear()
    FC.fast_cpu_model(tiny)(x)
    assert built == ["torch", "onnxruntime", "openvino"]
    assert len(json.loads(CS.selection_file().read_text(encoding="utf-8"))["choices"]) == 2


def test_auto_int8_only_when_allowed_and_labels_agree(tiny, cache, monkeypatch):
    seconds = {"torch": 0.03, "openvino": 0.02, "openvino-int8": 0.001, "onnxruntime-int8": 0.005}
    fake_backends(monkeypatch, seconds, shift={"openvino-int8": 100, "onnxruntime-int8": 2})
    x = torch.rand(1, 1, 64, 64)  # 256 output labels: 100 changed = 61 %, 2 changed = 99.2 %
    exact = FC.fast_cpu_model(tiny)
    exact(x)
    assert exact.choice == "openvino"  # int8 not considered without quantize=True
    monkeypatch.setattr(CS, "MIN_AGREEMENT", 0.99)
    q = FC.fast_cpu_model(tiny, quantize=True)
    q(x)
    figs = q.report["figures"]
    assert figs["openvino-int8"]["agreement"] < 0.7 and 0.99 < figs["onnxruntime-int8"]["agreement"] < 1
    assert q.choice == "onnxruntime-int8"  # fastest that keeps the labels, not the fastest


def test_auto_skips_a_backend_that_fails_and_a_broken_cache_file(tiny, cache, monkeypatch):
    fake_backends(monkeypatch, {"torch": 0.02, "openvino": 0.001})
    real = CS.build

    def build(name, model, threads=None, cache=None):
        if name == "openvino":
            raise ModelError("no CPU plugin here")
        return real(name, model)

    monkeypatch.setattr(CS, "build", build)
    cache.mkdir(parents=True)
    CS.selection_file().write_text("{not json", encoding="utf-8")
    net = FC.fast_cpu_model(tiny)
    net(torch.rand(1, 1, 64, 64))
    assert net.choice == "torch" and "no CPU plugin" in net.report["figures"]["openvino"]["error"]
