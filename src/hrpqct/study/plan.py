"""What a study run has to do, and why: per stage and scan, *missing*, *stale* or *done*.

Every output records what it was made from, and a run trusts an output only while that record
still holds (:mod:`hrpqct.io.provenance` fingerprints: path, size, modification time, SHA-256):

* segmentation ``segmentations/<scan_id>.seg.nrrd`` (and the other files of ``hrpqct segment``):
  ``segmentations/<scan_id>.study.json`` records the scan, the model (name and digest of its
  weights and cards) and the fingerprint of the ``.seg.nrrd`` as written. It is written
  ``"running"`` before the work and ``"done"`` after it, so a run killed in between redoes the
  scan. A ``.seg.nrrd`` that differs from its recorded fingerprint was edited since (an
  annotator's correction) and one without any record was not made by the study: both are kept
  and never segmented again, as are the rows marked ``corrected`` and the rows whose
  segmentation the manifest gives;
* radiomics ``cohort/scans/<scan_id>.parquet``: the Parquet metadata record of ``hrpqct cohort``
  (scan, segmentation, preset digest, regions; :func:`hrpqct.radiomics.cohort.stale_reason`);
* morphometry ``cohort/morphometry/<scan_id>.parquet``: ``<scan_id>.inputs.json`` next to it
  (scan, segmentation, digest of the morphometry parameters), written after the table;
* classification ``classification/``: ``inputs.json`` (model digest or training settings, and
  the SHA-256 of every radiomics table it used), written last.

So a changed model makes exactly the segmentations stale (and through their fingerprints the
radiomics and morphometry of the scans whose labels changed, and the classification); a changed
preset the radiomics tables and the classification; a changed classifier the classification.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Decision", "Layout", "STAGES", "model_digest", "morphometry_digest",
           "plan_segment", "plan_radiomics", "plan_morphometry", "plan_classify", "read_json"]

STAGES = ("segment", "radiomics", "morphometry", "classify")


@dataclass
class Decision:
    """One scan (or the cohort, for ``classify``) in one stage."""

    stage: str
    scan_id: str
    state: str  # missing | stale | done | given | corrected | blocked
    why: str

    @property
    def run(self) -> bool:
        return self.state in ("missing", "stale")


class Layout:
    """The paths of a study folder."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.seg = self.out / "segmentations"
        self.cohort = self.out / "cohort"
        self.scans = self.cohort / "scans"
        self.morph = self.cohort / "morphometry"
        self.classify = self.out / "classification"
        self.failures = self.out / "failures"
        self.logs = self.out / "logs"

    def seg_file(self, scan_id: str) -> Path:
        return self.seg / f"{scan_id}.seg.nrrd"

    def seg_record(self, scan_id: str) -> Path:
        return self.seg / f"{scan_id}.study.json"

    def segmentation_of(self, row) -> Path:
        """The segmentation the later stages read: the manifest's, else the study's own."""
        return Path(row["segmentation"]) if row["segmentation"] else self.seg_file(row["scan_id"])

    def radiomics_file(self, scan_id: str) -> Path:
        return self.scans / f"{scan_id}.parquet"

    def morph_file(self, scan_id: str) -> Path:
        return self.morph / f"{scan_id}.parquet"

    def morph_record(self, scan_id: str) -> Path:
        return self.morph / f"{scan_id}.inputs.json"

    def classify_record(self) -> Path:
        return self.classify / "inputs.json"

    def failure_file(self, stage: str, scan_id: str) -> Path:
        return self.failures / stage / f"{scan_id}.json"


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def model_digest(folder: str | Path) -> str:
    """SHA-256 over a segmentation model folder's weights and JSON cards (names and contents;
    a README does not count)."""
    from ..io.provenance import sha256

    folder = Path(folder)
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()
                    and p.suffix in (".safetensors", ".json", ".onnx", ".pt", ".bin")):
        h.update(str(f.relative_to(folder)).encode("utf-8") + b"\0" + sha256(f).encode("ascii"))
    return h.hexdigest()


def morphometry_digest() -> str:
    """SHA-256 of the morphometry parameters (:data:`hrpqct.method.MORPHOMETRY`)."""
    from dataclasses import asdict

    from ..method import MORPHOMETRY

    text = json.dumps(asdict(MORPHOMETRY), sort_keys=True, default=list)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- segmentation -----------------------------------------------------------------------------
def _unchanged(recorded: dict | None, path: Path) -> bool:
    """``path`` holds what was written (same size and modification time, or same SHA-256),
    wherever the study folder is now."""
    from ..io.provenance import sha256

    if not recorded:
        return False
    st = path.stat()
    if st.st_size != recorded.get("size"):
        return False
    return st.st_mtime_ns == recorded.get("mtime_ns") or sha256(path) == recorded.get("sha256")


def plan_segment(layout: Layout, row, model: dict) -> Decision:
    """``model``: ``{"name", "digest"}`` of the segmentation model of this run."""
    from ..io.provenance import compare

    sid = row["scan_id"]
    d = lambda state, why: Decision("segment", sid, state, why)  # noqa: E731
    if row["segmentation"]:
        return d("given", f"the manifest gives {row['segmentation']}")
    seg = layout.seg_file(sid)
    rec = read_json(layout.seg_record(sid))
    if row["corrected"]:
        if seg.is_file():
            return d("corrected", "marked corrected in the manifest: never segmented again")
        return d("missing", "marked corrected, but there is no segmentation yet")
    if not seg.is_file():
        return d("missing", "no segmentation yet")
    if rec is None:
        return d("corrected", f"{seg.name} was not made by this study (no record): kept as an "
                              "annotator's")
    if rec.get("status") != "done":
        return d("stale", "an earlier run stopped while segmenting it")
    if not _unchanged(rec.get("output"), seg):
        return d("corrected", f"{seg.name} was edited since it was made: kept as an annotator's "
                              "correction")
    why = compare(rec.get("scan"), row["scan"])
    if why is not None:
        return d("stale", f"the scan: {why}")
    if rec.get("model_digest") != model["digest"]:
        return d("stale", f"made with another model ({rec.get('model')!r}, "
                          f"{str(rec.get('model_digest'))[:12]}), now {model['name']!r} "
                          f"({model['digest'][:12]})")
    return d("done", f"segmented with {rec.get('model')!r}")


def _seg_ready(layout: Layout, row, seg_decision: Decision | None, failed: set) -> str | None:
    """None if the scan's segmentation can be read now, else why the scan waits."""
    sid = row["scan_id"]
    if seg_decision is not None and seg_decision.run:
        return "its segmentation is made first"
    if sid in failed:
        return "its segmentation failed (failures.csv)"
    if not layout.segmentation_of(row).exists():
        return f"its segmentation {layout.segmentation_of(row)} does not exist"
    return None


# --- radiomics --------------------------------------------------------------------------------
def plan_radiomics(layout: Layout, row, preset, regions: list[str],
                   seg_decision: Decision | None = None, failed: set = frozenset()) -> Decision:
    from ..radiomics.cohort import stale_reason

    sid = row["scan_id"]
    out = layout.radiomics_file(sid)
    wait = _seg_ready(layout, row, seg_decision, failed)
    if wait is not None:
        if seg_decision is not None and seg_decision.run:
            return Decision("radiomics", sid, "stale" if out.exists() else "missing", wait)
        return Decision("radiomics", sid, "blocked", wait)
    if not out.exists():
        return Decision("radiomics", sid, "missing", "no radiomics table yet")
    r = {"scan": row["scan"], "segmentation": str(layout.segmentation_of(row))}
    why = stale_reason(out, r, preset, regions)
    if why is not None:
        return Decision("radiomics", sid, "stale", why)
    return Decision("radiomics", sid, "done", f"preset {preset.name!r}, inputs unchanged")


# --- morphometry ------------------------------------------------------------------------------
def plan_morphometry(layout: Layout, row, digest: str, seg_decision: Decision | None = None,
                     failed: set = frozenset()) -> Decision:
    from ..io.provenance import compare

    sid = row["scan_id"]
    out = layout.morph_file(sid)
    wait = _seg_ready(layout, row, seg_decision, failed)
    if wait is not None:
        if seg_decision is not None and seg_decision.run:
            return Decision("morphometry", sid, "stale" if out.exists() else "missing", wait)
        return Decision("morphometry", sid, "blocked", wait)
    if not out.exists():
        return Decision("morphometry", sid, "missing", "no morphometry table yet")
    rec = read_json(layout.morph_record(sid))
    if rec is None:
        return Decision("morphometry", sid, "stale", "its table has no record of its inputs "
                                                       "(a run stopped after writing it?)")
    if rec.get("method_digest") != digest:
        return Decision("morphometry", sid, "stale", "made with other morphometry parameters")
    for key, path in (("scan", row["scan"]), ("segmentation", layout.segmentation_of(row))):
        why = compare(rec.get(key), path)
        if why is not None:
            return Decision("morphometry", sid, "stale", f"the {key}: {why}")
    return Decision("morphometry", sid, "done", "inputs unchanged")


# --- classification ---------------------------------------------------------------------------
def classify_inputs(layout: Layout, manifest, what: dict) -> dict:
    """The record the classification is made from: ``what`` (model digest or training settings)
    and the SHA-256 of every radiomics table present."""
    from ..io.provenance import sha256

    tables = {}
    for sid in manifest["scan_id"]:
        f = layout.radiomics_file(sid)
        if f.exists():
            tables[sid] = sha256(f)
    return {**what, "tables": tables}


def plan_classify(layout: Layout, manifest, what: dict | None, upstream_runs: bool = False) -> Decision | None:
    """None when no classification is asked for."""
    if what is None:
        return None
    rec = read_json(layout.classify_record())
    if rec is None:
        if upstream_runs:
            return Decision("classify", "*", "missing", "after the radiomics")
        return Decision("classify", "*", "missing", "no classification yet")
    if upstream_runs:
        return Decision("classify", "*", "stale", "radiomics tables are (re)made first")
    if {k: v for k, v in rec.items() if k != "tables"} != what:
        return Decision("classify", "*", "stale", "another classifier or other settings")
    now = classify_inputs(layout, manifest, what)
    if rec.get("tables") != now["tables"]:
        changed = sorted(set(rec.get("tables", {}).items()) ^ set(now["tables"].items()))
        ids = sorted({k for k, _ in changed})
        return Decision("classify", "*", "stale", f"radiomics tables changed: {ids[:5]}")
    return Decision("classify", "*", "done", f"{len(now['tables'])} scans, inputs unchanged")
