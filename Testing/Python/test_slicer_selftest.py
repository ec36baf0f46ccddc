"""hrpqct_slicer.selftest: the modules' self-test, run here on slicer-core with the bundled demo
model and real background processes (what "Reload and Test" runs inside Slicer)."""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core (the MRML library) is not installed")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the 'slicer' module has no vtkMRMLScene (not slicer-core)",
                allow_module_level=True)

import hrpqct_slicer as B  # noqa: E402
from hrpqct.regions import region  # noqa: E402
from hrpqct_slicer import selftest as T  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    scene = slicer.vtkMRMLScene()
    logic = B.segmentations_logic(scene)
    said = []
    result = T.run_selftest(scene, logic, workdir=tmp_path_factory.mktemp("selftest"),
                            say=said.append)
    return scene, logic, result, said


def test_selftest_runs_every_step_of_the_module_logic(run):
    scene, logic, result, said = run
    assert list(result.done) == ["segment", "correct", "refine", "radiomics"]
    assert "classify" in result.done or "classify" in result.skipped
    assert said[0].endswith("synthetic scan") and said[-1].endswith("passed")
    seg = result.nodes["segmentation"]
    ids = set(seg.GetSegmentation().GetSegmentIDs())
    assert {"TC", "TT", "FC", "FT", "SK", "MT", "AT"} <= ids
    # after refine the middle slice has myotendinous tissue again, where it was erased
    labels = B.segmentation_to_labelmap(scene, logic, seg, result.nodes["volume"]).array
    k = labels.shape[0] // 2
    assert (labels[k] == region("MT").label).sum() > 0
    df = B.table_node_to_dataframe(result.nodes["features"])
    assert list(df.columns) == ["feature", "TC"]
    assert np.isfinite(df.loc[df["feature"] == "original_firstorder_Mean", "TC"]).all()


def test_selftest_fails_loudly_naming_the_step(tmp_path):
    scene = slicer.vtkMRMLScene()
    logic = B.segmentations_logic(scene)
    ph = T.synthetic_scan(n_slices=1, size=96)
    # a scan with no myotendinous tissue in its middle slice: the "correct" step cannot run
    ph.labels7.array[ph.labels7.array == region("MT").label] = region("AT").label
    with pytest.raises(AssertionError, match="correct:"):
        T.run_selftest(scene, logic, workdir=tmp_path, steps=("correct",), phantom=ph,
                       say=lambda m: None)
    with pytest.raises(ValueError, match="unknown self-test steps"):
        T.run_selftest(scene, logic, steps=("paint",))
