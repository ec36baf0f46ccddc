"""pandas DataFrames (per-region summaries, features) <-> ``vtkMRMLTableNode``.

Each column becomes a VTK array of the matching type (float64 -> vtkDoubleArray, int32 ->
vtkIntArray, ..., bool -> vtkUnsignedCharArray, text -> vtkStringArray). A non-default index is
stored as leading columns. The pandas dtypes and index names are kept in node attributes, so a
DataFrame comes back equal (``pandas.testing.assert_frame_equal``); a table made or edited in Slicer
without them comes back with dtypes inferred from the VTK arrays.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import vtk
from vtk.util import numpy_support

from hrpqct.errors import InputError

__all__ = [
    "dataframe_to_table_node",
    "table_node_to_dataframe",
    "DTYPES_ATTRIBUTE",
    "INDEX_ATTRIBUTE",
]

DTYPES_ATTRIBUTE = "HRpQCT.dtypes"
INDEX_ATTRIBUTE = "HRpQCT.index"


def _column_array(name: str, values: pd.Series) -> vtk.vtkAbstractArray:
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        array = numpy_support.numpy_to_vtk(values.to_numpy(dtype=np.uint8), deep=True)
    elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        if isinstance(dtype, pd.api.extensions.ExtensionDtype):
            if values.isna().any():
                raise InputError(
                    f"column {name!r}: missing values in a nullable {dtype} column; use float"
                )
            values = values.astype(dtype.numpy_dtype)
        array = numpy_support.numpy_to_vtk(np.ascontiguousarray(values.to_numpy()), deep=True)
    elif pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype) or isinstance(
        dtype, pd.CategoricalDtype
    ):
        if values.isna().any():
            raise InputError(f"column {name!r}: missing values in a text column cannot be stored")
        array = vtk.vtkStringArray()
        array.SetNumberOfValues(len(values))
        for i, v in enumerate(values.astype(str)):
            array.SetValue(i, v)
    else:
        raise InputError(f"column {name!r}: dtype {dtype} cannot be stored in a table node")
    array.SetName(name)
    return array


def dataframe_to_table_node(
    scene: Any, df: pd.DataFrame, name: str | None = None, node: Any = None
) -> Any:
    """Put ``df`` into a ``vtkMRMLTableNode`` (new, or ``node`` replaced in place) and return it."""
    index_names: list[str] = []
    original_names: list[str | None] = []
    if not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
            and df.index.name is None):
        index_names = [n if n is not None else ("index" if df.index.nlevels == 1 else f"level_{i}")
                       for i, n in enumerate(df.index.names)]
        original_names = list(df.index.names)
        df = df.reset_index()
        df.columns = [*index_names, *df.columns[len(index_names):]]
    columns = [str(c) for c in df.columns]
    if len(set(columns)) != len(columns):
        raise InputError(f"table {name!r}: duplicate column names {columns}")
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLTableNode", name or "HRpQCT table")
    elif name:
        node.SetName(name)
    table = vtk.vtkTable()
    for col, key in zip(columns, df.columns):
        table.AddColumn(_column_array(col, df[key]))
    node.SetAndObserveTable(table)
    node.SetUseColumnTitleAsColumnHeader(True)  # the ...ColumnName... form is deprecated (5.10+)
    dtypes = {c: str(df[k].dtype) for c, k in zip(columns, df.columns)}
    node.SetAttribute(DTYPES_ATTRIBUTE, json.dumps(dtypes))
    index = {"columns": index_names, "names": original_names}
    node.SetAttribute(INDEX_ATTRIBUTE, json.dumps(index))
    return node


def table_node_to_dataframe(node: Any) -> pd.DataFrame:
    """A ``vtkMRMLTableNode`` as a DataFrame (dtypes and index restored if the node has them)."""
    table = node.GetTable()
    data: dict[str, Any] = {}
    for i in range(table.GetNumberOfColumns()):
        array = table.GetColumn(i)
        name = array.GetName() or f"column {i}"
        if isinstance(array, vtk.vtkStringArray):
            data[name] = [array.GetValue(j) for j in range(array.GetNumberOfValues())]
        elif isinstance(array, vtk.vtkDataArray):
            if array.GetNumberOfComponents() != 1:
                raise InputError(
                    f"table {node.GetName()!r}: column {name!r} has several components"
                )
            data[name] = numpy_support.vtk_to_numpy(array).copy()
        else:
            raise InputError(f"table {node.GetName()!r}: column {name!r} has unsupported type "
                             f"{array.GetClassName()}")
    df = pd.DataFrame(data)
    dtypes = json.loads(node.GetAttribute(DTYPES_ATTRIBUTE) or "{}")
    for col, dtype in dtypes.items():
        if col in df.columns:
            df[col] = df[col].astype(dtype)
    index = json.loads(node.GetAttribute(INDEX_ATTRIBUTE) or "{}")
    if index.get("columns"):
        df = df.set_index(index["columns"])
        df.index.names = index["names"]
    return df
