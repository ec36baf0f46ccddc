"""Whole-scan inference: geometry, streaming, progress/cancel, confidence, devices, fast CPU path."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from hrpqct.errors import Cancelled, InputError
from hrpqct.progress import CancelToken
from hrpqct.seg import device as D
from hrpqct.seg import inference as I
from hrpqct.seg.fastcpu import FoldedDecodeHead, optimise_for_cpu
from hrpqct.seg.model import ModelCard, build_model, save_model
from hrpqct.seg.preprocess import InputSpec
from hrpqct.volume import Calibration, Volume
from small_scans import small_leg as scan

SPEC = InputSpec(crop_mm=8.0, input_px=64)  # 80 px crop at 0.1 mm


@pytest.fixture(scope="module")
def tiny():
    net = build_model("tiny", seed=0)
    with torch.no_grad():  # a non-trivial batch norm so the folded head is really tested
        bn = net.decode_head.batch_norm
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
        net.decode_head.classifier.weight.mul_(20)  # larger margins than a fresh head
    return net


def test_labels_on_the_native_grid_and_confidence(tiny, tmp_path):
    vol = scan()
    r = I.segment_volume(vol, tiny, device="cpu", batch_size=2, input_spec=SPEC)
    lab = r.labels
    assert lab.shape == vol.shape and lab.array.dtype == np.uint8 and lab.unit == "label"
    assert lab.spacing == vol.spacing and lab.origin == vol.origin and lab.direction == vol.direction
    assert lab.array.max() <= 5
    assert (r.crop.ny, r.crop.nx) == (80, 80)
    # outside the crop (first/last 20 rows) everything is background
    assert (lab.array[:, : r.crop.y0] == 0).all() and (lab.array[:, r.crop.y0 + 80:] == 0).all()
    c = r.confidence
    assert list(c.columns) == list(I.CONFIDENCE_COLUMNS) and len(c) == 5
    assert c["slice"].tolist() == [0, 1, 2, 3, 4]
    assert ((c.mean_max_prob > 1 / 6) & (c.mean_max_prob <= 1)).all()
    assert ((c.mean_entropy >= 0) & (c.mean_entropy <= math.log(6) + 1e-6)).all()
    assert (c.limb_pixels > 100).all()  # the limb covers most of the 20 x 20 output grid
    assert len(r.least_confident(2)) == 2 and r.least_confident(2)[0] == int(np.argmin(c.mean_max_prob))
    path = r.write_confidence_csv(tmp_path / "out" / "confidence.csv")
    back = pd.read_csv(path)
    assert list(back.columns) == list(I.CONFIDENCE_COLUMNS)
    np.testing.assert_allclose(back.mean_max_prob, c.mean_max_prob, rtol=1e-5)
    assert r.device == "cpu" and r.fallback is None and r.fast_cpu


def test_confidence_values_known_case():
    logits = torch.zeros(2, 6, 4, 4)
    logits[1, 2] = 100.0  # slice 1: certain
    limb = torch.ones(2, 4, 4)
    out = I.slice_confidence(logits, limb)
    np.testing.assert_allclose(out[0], [1 / 6, math.log(6), 16], rtol=1e-6)
    np.testing.assert_allclose(out[1], [1.0, 0.0, 16], atol=1e-6)


def test_streaming_one_forward_per_batch_and_progress(tiny, monkeypatch):
    seen = []
    real = I.make_predictor

    def counting(model, device, **kw):
        p = real(model, device, **kw)
        net = p.net

        def spy(x):
            seen.append(x.shape[0])
            return net(x)

        p.net = spy
        return p

    monkeypatch.setattr(I, "make_predictor", counting)
    calls = []
    r = I.segment_volume(scan(7), tiny, device="cpu", batch_size=3, input_spec=SPEC,
                         progress=lambda d, t: calls.append((d, t)))
    assert seen == [3, 3, 1]  # ceil(7 / 3) passes, never more than the batch
    assert calls == [(0, 7), (3, 7), (6, 7), (7, 7)]
    assert r.batch_size == 3


def test_generator_yields_batches_and_writes_in_place(tiny):
    vol = scan(5)
    out = np.full(vol.shape, 9, np.uint8)
    pred = I.make_predictor(tiny, "cpu")
    from hrpqct.seg.preprocess import plan_crop

    box, _ = plan_crop(vol.array, vol.spacing, SPEC)
    gen = I.segment_batches(vol, pred, out, box, SPEC, batch_size=2)
    first = next(gen)
    assert (first.start, first.stop) == (0, 2) and first.confidence.shape == (2, 3)
    assert out[:2].max() <= 5 and (out[2:] == 9).all()  # only the first batch written so far
    rest = list(gen)
    assert [(b.start, b.stop) for b in rest] == [(2, 4), (4, 5)]
    assert out.max() <= 5


def test_cancel_from_callback_and_token(tiny):
    def stop_after_first(done, total):
        return done < 2

    with pytest.raises(Cancelled):
        I.segment_volume(scan(6), tiny, device="cpu", batch_size=2, input_spec=SPEC,
                         progress=stop_after_first)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        I.segment_volume(scan(6), tiny, device="cpu", batch_size=2, input_spec=SPEC,
                         progress=token.callback())


def test_fast_cpu_path_gives_the_same_answer(tiny):
    x = torch.rand(3, 1, 64, 64)
    fast = optimise_for_cpu(tiny)
    with torch.inference_mode():
        ref = tiny(x).logits
        got = fast(x)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
    assert isinstance(fast.head, FoldedDecodeHead)
    odd = torch.rand(1, 1, 72, 88)  # stage maps 18x22, 9x11, 5x6, 3x3
    with torch.inference_mode():
        torch.testing.assert_close(fast(odd), tiny(odd).logits, rtol=1e-4, atol=1e-5)
    vol = scan(4)
    a = I.segment_volume(vol, tiny, device="cpu", input_spec=SPEC, fast_cpu=True)
    b = I.segment_volume(vol, tiny, device="cpu", input_spec=SPEC, fast_cpu=False)
    assert a.fast_cpu and not b.fast_cpu
    assert (a.labels.array == b.labels.array).mean() > 0.999
    np.testing.assert_allclose(a.confidence.mean_max_prob, b.confidence.mean_max_prob, rtol=1e-4)


def test_model_card_preprocessing_is_used(tmp_path, tiny, monkeypatch):
    spec = InputSpec(crop_mm=8.0, input_px=32, upsample="nearest")
    folder = save_model(tiny, tmp_path / "m", ModelCard(name="m32", variant="tiny",
                                                        preprocessing=spec.to_dict()))
    shapes = []
    real = I.Predictor.__call__
    monkeypatch.setattr(I.Predictor, "__call__", lambda self, x: shapes.append(tuple(x.shape)) or real(self, x))
    r = I.segment_volume(scan(2), folder, device="cpu", batch_size=2)
    assert shapes == [(2, 1, 32, 32)]
    assert r.input_spec == spec and r.model_name == "m32"


def test_units_and_bad_input(tiny):
    cal = Calibration(mu_water=0.2409, mu_scaling=8192.0, density_slope=1603.51904, density_intercept=-391.209015)
    hu = scan(2)
    dens = Volume(cal.hu_to_density(hu.array), spacing=hu.spacing, unit="mgHA/ccm", calibration=cal)
    a = I.segment_volume(hu, tiny, device="cpu", input_spec=SPEC)
    b = I.segment_volume(dens, tiny, device="cpu", input_spec=SPEC)
    assert (a.labels.array == b.labels.array).mean() > 0.999
    with pytest.raises(InputError, match="HU"):
        I.segment_volume(Volume(hu.array, unit="native"), tiny, device="cpu", input_spec=SPEC)
    bad = scan(3)
    bad.array[1, 5, 5] = np.nan
    with pytest.raises(InputError, match="slice 1"):
        I.segment_volume(bad, tiny, device="cpu", input_spec=SPEC)


def test_device_selection(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(D, "_mps_available", lambda: False)
    assert D.select_device("auto").type == "cpu"
    with pytest.raises(D.DeviceUnavailable, match="cuda"):
        D.select_device("cuda")
    with pytest.raises(D.DeviceUnavailable, match="MPS"):
        D.select_device("mps")
    with pytest.raises(D.DeviceUnavailable, match="unknown"):
        D.select_device("tpu")
    monkeypatch.setattr(D, "_mps_available", lambda: True)
    assert D.select_device("auto").type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert D.select_device("auto").type == "cuda"
    assert D.inference_dtype("cuda") == torch.float16 and D.inference_dtype("cpu") == torch.float32
    assert D.is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not D.is_out_of_memory(ValueError("out of range"))


class FakeGPU(I.Predictor):
    """A 'CUDA' predictor that runs on the CPU but runs out of memory above ``max_batch``."""

    def __init__(self, model, max_batch):
        super().__init__(model, "cpu", fast_cpu=False)
        self.device = torch.device("cuda")
        self.max_batch = max_batch
        self.batches = []

    def __call__(self, x):
        self.batches.append(x.shape[0])
        if x.shape[0] > self.max_batch:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        with torch.inference_mode():
            return self.net(x).logits.float()


@pytest.mark.parametrize("max_batch", [2, 0])
def test_cuda_out_of_memory_halves_batch_then_falls_back_to_cpu(tiny, monkeypatch, max_batch, caplog):
    fakes = []

    def fake_make(model, device, **kw):
        fakes.append(FakeGPU(model, max_batch))
        return fakes[-1]

    monkeypatch.setattr(I, "select_device", lambda d: torch.device("cuda"))
    monkeypatch.setattr(I, "make_predictor", fake_make)
    monkeypatch.setattr(D, "empty_cache", lambda d: None)
    vol = scan(6)
    with caplog.at_level("WARNING"):
        r = I.segment_volume(vol, tiny, device="cuda", batch_size=8, input_spec=SPEC)
    ref = I.segment_volume(vol, tiny, device="cpu", input_spec=SPEC, fast_cpu=False)
    assert (r.labels.array == ref.labels.array).mean() > 0.999
    if max_batch == 2:
        assert fakes[0].batches == [6, 4, 2, 2, 2]  # 6 slices read at batch 8
        assert r.batch_size == 2 and r.fallback is None and r.device == "cuda"
        assert len(r.notes) == 2
    else:
        assert fakes[0].batches == [6, 4, 2, 1]
        assert r.device == "cpu" and "CPU" in r.fallback
        assert r.fast_cpu  # the CPU fallback uses the fast path
        assert "continuing on the CPU" in caplog.text


def test_memory_mapped_input_is_read_batch_by_batch(tiny, tmp_path):
    vol = scan(5)
    path = tmp_path / "scan.raw"
    vol.array.astype(np.float32).tofile(path)
    mm = np.memmap(path, dtype=np.float32, mode="r", shape=vol.shape)
    mapped = Volume(mm, spacing=vol.spacing, origin=vol.origin, direction=vol.direction, unit="HU")
    assert I._file_map(mapped.array) is not None
    a = I.segment_volume(mapped, tiny, device="cpu", batch_size=2, input_spec=SPEC)
    b = I.segment_volume(vol, tiny, device="cpu", batch_size=2, input_spec=SPEC)
    np.testing.assert_array_equal(a.labels.array, b.labels.array)
    np.testing.assert_array_equal(np.asarray(mm), vol.array)  # the input is untouched
