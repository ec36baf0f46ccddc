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
5. ``radiomics``: PyRadiomics features on one slice, as a table node: of the six regions the
   bundled demo classifier uses when ``classify`` runs too (of the cortical tibia only when not);
6. ``classify``: ``hrpqct_slicer.classify_logic.classify(scene, features_table, None)`` (the
   bundled demo classifier, the same call as HRpQCTClassify's Apply) on those features: a
   probability in [0, 1], the class at the saved threshold, a row per region model and a chart
   (the radiomics step runs first when only ``classify`` is asked for).
"""

from __future__ import annotations

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
    if "radiomics" in steps or "classify" in steps:
        from hrpqct.regions import RADIOMICS_REGIONS
        from hrpqct_slicer.radiomics_logic import radiomics_of_nodes
        from hrpqct_slicer.tables import table_node_to_dataframe

        codes = tuple(RADIOMICS_REGIONS) if "classify" in steps else ("TC",)
        say(f"HRpQCT self-test: radiomics ({', '.join(codes)}; one slice)")
        rad = radiomics_of_nodes(scene, logic, node, seg, regions=codes, slices=str(k),
                                 out_file=work / "radiomics" / "selftest.csv", timeout=timeout)
        df = table_node_to_dataframe(rad.table)
        assert list(df.columns) == ["feature", *codes], f"radiomics: columns {list(df.columns)}"
        pyrad = df[df["feature"].str.startswith("original_")]
        assert len(pyrad) > 100 and pyrad[list(codes)].notna().all().all(), \
            "radiomics: PyRadiomics features"
        out.done["radiomics"] = (f"{len(pyrad)} PyRadiomics features of {len(codes)} region(s) "
                                 f"on slice {k}")
        out.nodes["features"] = rad.table
        out.nodes["patient"] = rad.patient
    if "classify" in steps:
        from hrpqct_slicer import classify_logic

        say("HRpQCT self-test: classify (the bundled demo classifier)")
        # the same call as HRpQCTClassify's Apply: scene, feature table, model folder
        res = classify_logic.classify(scene, out.nodes["features"], None)
        p = res.prediction
        assert 0.0 <= p.probability <= 1.0, f"classify: probability {p.probability}"
        assert p.label == p.classes[int(p.probability >= p.threshold)], "classify: class"
        regions = res.frame[res.frame["model"] != classify_logic.PATIENT_ROW]
        assert len(regions) > 0 and (regions["n_slices"] == 1).all() \
            and regions["probability"].between(0, 1).all(), "classify: region models"
        assert res.chart.GetNumberOfPlotSeriesNodes() == 3, "classify: chart"
        out.done["classify"] = str(res)
        out.nodes["classification"] = res.table
        out.nodes["chart"] = res.chart
    say("HRpQCT self-test: passed")
    return out
