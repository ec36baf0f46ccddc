"""The morphometry table as a vtkMRMLTableNode (hrpqct_slicer.morphometry), headless on slicer-core."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core (the MRML library) is not installed")

import hrpqct_slicer as B  # noqa: E402
from hrpqct import regions as R  # noqa: E402
from hrpqct.errors import InputError  # noqa: E402
from hrpqct.morphometry import HU_ONLY_NOTE, morphometry  # noqa: E402


@pytest.fixture(scope="module")
def result():
    """Tibia and fibula rings (HU-only scan: no densities, a note)."""
    n, h = 120, 0.1
    yy, xx = np.mgrid[0:n, 0:n]
    lab = np.zeros((3, n, n), np.uint8)
    for (cy, cx, r_out, wall), (c, t) in (((60, 40, 3.0, 0.8), ("TC", "TT")),
                                          ((60, 95, 1.5, 0.5), ("FC", "FT"))):
        r = np.hypot((yy - cy) * h, (xx - cx) * h)
        lab[:, (r <= r_out) & (r > r_out - wall)] = R.region(c).label
        lab[:, r <= r_out - wall] = R.region(t).label
    hu = np.where(np.isin(lab, (1, 3)), 2600.0, -100.0).astype(np.float32)
    return morphometry(hu, lab, (h, h, h), unit="HU")


def test_table_node_holds_the_region_summary(result):
    scene = slicer.vtkMRMLScene()
    node = B.morphometry_table_node(scene, result, name="Morphometry")
    assert node.IsA("vtkMRMLTableNode") and node.GetName() == "Morphometry"
    table = node.GetTable()
    assert [table.GetColumnName(i) for i in range(table.GetNumberOfColumns())] == [
        "parameter", "unit", "regions", "tibia", "fibula"]
    params = [table.GetColumnByName("parameter").GetValue(i) for i in range(table.GetNumberOfRows())]
    assert {"Tt.BMD", "Ct.Th", "Ct.Po", "Tb.BV/TV", "Tb.N", "Tb.Th", "Tb.Sp"} <= set(params)
    i = params.index("Ct.Th")
    assert table.GetColumnByName("unit").GetValue(i) == "mm"
    assert table.GetColumnByName("regions").GetValue(i) == "tibia: TC, fibula: FC"
    assert table.GetColumnByName("tibia").GetValue(i) == pytest.approx(
        result.value("tibia", "Ct.Th_mm"))
    assert abs(table.GetColumnByName("fibula").GetValue(i) - 0.5) <= 0.05
    j = params.index("Tt.BMD")
    assert math.isnan(table.GetColumnByName("tibia").GetValue(j))  # HU-only: no density
    assert table.GetColumnByName("regions").GetValue(j) == "tibia: TC+TT, fibula: FC+FT"
    assert node.GetAttribute(B.morphometry.NOTE_ATTRIBUTE) == HU_ONLY_NOTE
    meta = json.loads(node.GetAttribute(B.morphometry.META_ATTRIBUTE))
    assert meta["units"]["Tb.N_1_mm"] == "1/mm"
    # the bridge's generic reader gives the summary back
    back = B.table_node_to_dataframe(node)
    assert list(back["parameter"]) == params
    assert back.loc[i, "tibia"] == pytest.approx(result.value("tibia", "Ct.Th_mm"))


def test_node_from_a_written_table_and_replaced_in_place(result, tmp_path):
    from hrpqct.morphometry.tables import read_table, write_result

    paths = write_result(result, tmp_path / "m.parquet", scan_id="scan1")
    scan = read_table(paths[0])
    scene = slicer.vtkMRMLScene()
    node = B.morphometry_table_node(scene, scan, meta=json.loads(paths[2].read_text(encoding="utf-8")))
    assert node.GetAttribute(B.morphometry.NOTE_ATTRIBUTE) == HU_ONLY_NOTE
    again = B.morphometry_table_node(scene, scan.iloc[:1], node=node)
    assert again is node and node.GetTable().GetNumberOfColumns() == 4  # tibia only
    assert node.GetAttribute(B.morphometry.NOTE_ATTRIBUTE) == ""  # no metadata given this time
    with pytest.raises(InputError, match="bone"):
        B.morphometry_table_node(scene, scan.drop(columns=["bone"]))
