"""The modules' self-test: the whole module logic on a small synthetic scan, in one call.

Each module's ``<Module>Test`` class (run by Slicer's "Reload and Test", the SelfTests module and
the ExtensionsIndex CI) calls :func:`run_selftest` with Slicer's scene and Segmentations logic;
the project's test suite calls the same function on ``slicer-core``
(``Testing/Python/test_slicer_selftest.py``), so the logic part is checked on every run here.

Steps (each asserts real values, not only that nothing raised):

1. a synthetic scan (:mod:`hrpqct.phantom`, fixed seed) as a scalar volume node;
2. ``segment``: the bundled demo model in a background process (``hrpqct segment``), loaded as a
   segmentation node with the project's segment ids;
3. ``correct``: a slice corrected programmatically, as an annotator would in Segment Editor
   (the myotendinous tissue of the middle slice erased);
4. ``refine``: the topology rules and soft-tissue split re-applied; the erased tissue is soft
   tissue again (background enclosed by the leg is soft tissue);
5. ``radiomics``: PyRadiomics features of one region on one slice, as a table node;
6. ``classify``: the classification logic on those features, when
   ``hrpqct_slicer.classify_logic`` exists (it is written elsewhere; skipped with a note
   until then).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

__all__ = ["SelfTestResult", "SELFTEST_STEPS", "synthetic_scan", "run_selftest"]

SELFTEST_STEPS = ("segment", "correct", "refine", "radiomics", "classify")
#: the self-test scan: small enough for a CPU in well under a minute (seed fixed)
SELFTEST_SEED = 7
SELFTEST_SIZE = 384  # pixels over the phantom's 140 mm field of view (0.365 mm)
SELFTEST_SLICES = 3


@dataclass
class SelfTestResult:
    """What each step found (step -> short text), the nodes made, and skipped steps."""

    done: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    nodes: dict = field(default_factory=dict)


def synthetic_scan(seed: int = SELFTEST_SEED, size: int = SELFTEST_SIZE,
                   n_slices: int = SELFTEST_SLICES):
    """A :class:`hrpqct.phantom.scan.Phantom` (image in HU and its 7-region truth)."""
    from hrpqct.phantom.anatomy import Anatomy
    from hrpqct.phantom.render import Grid
    from hrpqct.phantom.scan import generate

    return generate(Anatomy(seed=seed), Grid(size=size, n_slices=n_slices))


def run_selftest(scene: Any, logic: Any, *, workdir: str | os.PathLike | None = None,
                 steps: Sequence[str] = SELFTEST_STEPS, model: Optional[str] = None,
                 say: Callable[[str], object] = print, timeout: float = 900,
                 phantom: Any = None) -> SelfTestResult:
    """Run the self-test steps on ``scene`` with the Segmentations ``logic``; raises
    ``AssertionError`` naming the step that went wrong."""
    from hrpqct.regions import region
    from hrpqct_slicer.segmentations import labelmap_to_segmentation, segmentation_to_labelmap
    from hrpqct_slicer.volumes import volume_to_node

    unknown = set(steps) - set(SELFTEST_STEPS)
    if unknown:
        raise ValueError(f"unknown self-test steps {sorted(unknown)}; use {SELFTEST_STEPS}")
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="hrpqct-test-"))
    out = SelfTestResult()
    say("HRpQCT self-test: synthetic scan")
    ph = phantom if phantom is not None else synthetic_scan()
    node = volume_to_node(scene, ph.image, name="HRpQCT self-test scan")
    out.nodes["volume"] = node
    seg = None
    if "segment" in steps:
        from hrpqct_slicer.seg_logic import segment_volume_node

        say("HRpQCT self-test: segmentation (background process)")
        res = segment_volume_node(scene, logic, node, model=model, device="cpu",
                                  out_dir=work / "segment", timeout=timeout)
        seg = res.segmentation
        ids = sorted(seg.GetSegmentation().GetSegmentIDs())
        assert {"TC", "TT", "FC", "FT"} <= set(ids), f"segment: segment ids {ids}"
        assert len(res.least_confident) == ph.image.array.shape[0], "segment: confidence"
        out.done["segment"] = f"{len(ids)} segments: {', '.join(ids)}"
        out.nodes["segmentation"] = seg
    else:  # start from the truth
        seg = labelmap_to_segmentation(scene, logic, ph.labels7, reference=node)
        out.nodes["segmentation"] = seg
    mt = region("MT").label
    k = ph.image.array.shape[0] // 2
    if "correct" in steps or "refine" in steps:
        say("HRpQCT self-test: correct a slice (erase the myotendinous tissue of one slice)")
        labels = segmentation_to_labelmap(scene, logic, seg, node)
        before = int((labels.array[k] == mt).sum())
        assert before > 0, "correct: no myotendinous tissue to erase in the middle slice"
        edited = labels.array.copy()
        edited[k][edited[k] == mt] = 0
        labelmap_to_segmentation(scene, logic, labels.with_array(edited), reference=node,
                                 node=seg)
        after = segmentation_to_labelmap(scene, logic, seg, node).array
        assert int((after[k] == mt).sum()) == 0, "correct: the edit did not reach the segment"
        out.done["correct"] = f"slice {k}: {before} myotendinous voxels erased"
    if "refine" in steps:
        from hrpqct_slicer.seg_logic import refine_segmentation

        say("HRpQCT self-test: refine")
        result = refine_segmentation(scene, logic, seg, node)
        back = segmentation_to_labelmap(scene, logic, seg, node).array
        restored = int((back[k] == mt).sum())
        assert restored > 0, "refine: the erased soft tissue was not split again"
        assert result.changed_voxels > 0, "refine: nothing changed"
        out.done["refine"] = f"{restored} myotendinous voxels back in slice {k}"
    if "radiomics" in steps:
        from hrpqct_slicer.radiomics_logic import radiomics_of_nodes
        from hrpqct_slicer.tables import table_node_to_dataframe

        say("HRpQCT self-test: radiomics (one region, one slice)")
        rad = radiomics_of_nodes(scene, logic, node, seg, regions=("TC",), slices=str(k),
                                 out_file=work / "radiomics" / "selftest.csv", timeout=timeout)
        df = table_node_to_dataframe(rad.table)
        assert list(df.columns) == ["feature", "TC"], f"radiomics: columns {list(df.columns)}"
        pyrad = df[df["feature"].str.startswith("original_")]
        assert len(pyrad) > 100 and pyrad["TC"].notna().all(), "radiomics: PyRadiomics features"
        out.done["radiomics"] = f"{len(pyrad)} PyRadiomics features of TC on slice {k}"
        out.nodes["features"] = rad.table
        out.nodes["patient"] = rad.patient
    if "classify" in steps:
        if importlib.util.find_spec("hrpqct_slicer.classify_logic") is None:
            out.skipped["classify"] = "hrpqct_slicer.classify_logic is not installed yet"
            say("HRpQCT self-test: classify skipped (no classification logic yet)")
        else:
            from hrpqct_slicer import classify_logic

            say("HRpQCT self-test: classify")
            run = getattr(classify_logic, "selftest", None)
            if run is None:
                out.skipped["classify"] = "classify_logic has no selftest(scene, result)"
            else:
                out.done["classify"] = str(run(scene, out))
    say("HRpQCT self-test: passed")
    return out
