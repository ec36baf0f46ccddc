"""Shared fixtures of the test suite.

* ``fake_slicer``: the Slicer application faked around the real MRML library (slicer-core):
  Qt/CTK/qMRML stand-ins whose every name is checked against Slicer's sources
  (:mod:`fakes.qt`), ``slicer.mrmlScene`` a real scene (:func:`fakes.slicer_env.install`);
* ``case`` (module-scoped): a 4-slice phantom and a catalogue with a tiny SegFormer built in
  the test plus an absent model; ``catalogue``: that catalogue as ``HRPQCT_MODELS_DIR``.
"""

from __future__ import annotations

import json
import types

import pytest

N_SLICES = 4


@pytest.fixture()
def fake_slicer(monkeypatch):
    """qt, ctk and slicer.ScriptedLoadableModule stand-ins; the real slicer-core MRML library
    with a scene as ``slicer.mrmlScene``."""
    slicer = pytest.importorskip("slicer", reason="slicer-core (the MRML library) is not installed")
    if not hasattr(slicer, "vtkMRMLScene"):
        pytest.skip("the 'slicer' module has no vtkMRMLScene (not slicer-core)")
    from fakes.slicer_env import install

    return install(monkeypatch, slicer)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    from hrpqct.phantom.anatomy import Anatomy
    from hrpqct.phantom.render import Grid
    from hrpqct.phantom.scan import generate
    from hrpqct.seg.model import ModelCard, build_model, save_model
    from hrpqct.seg.preprocess import InputSpec

    root = tmp_path_factory.mktemp("modules")
    models = root / "models"
    save_model(build_model("tiny", seed=0), models / "tiny-test",
               ModelCard(name="tiny-test", variant="tiny",
                         preprocessing=InputSpec(input_px=128).to_dict()))
    (models / "catalog.json").write_text(json.dumps({"format_version": 1, "default": "tiny-test",
        "models": [{"id": "tiny-test", "title": "Tiny test model", "variant": "tiny",
                    "description": "", "folder": "tiny-test", "bundled": True},
                   {"id": "absent", "title": "Absent model", "variant": "b3",
                    "description": "", "folder": "absent"}]}), encoding="utf-8")
    ph = generate(Anatomy(seed=5), Grid(size=160, n_slices=N_SLICES))
    return types.SimpleNamespace(root=root, models=models, phantom=ph)


@pytest.fixture()
def catalogue(case, monkeypatch):
    monkeypatch.setenv("HRPQCT_MODELS_DIR", str(case.models))
    return case


