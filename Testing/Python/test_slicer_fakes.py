"""The stand-ins of Testing/Python/fakes refuse names real Slicer does not have."""

from __future__ import annotations

import pytest

from fakes import qt as F


def test_a_misspelt_or_invented_name_is_refused():
    with pytest.raises(F.UnknownSlicerName, match="qMRMLNodeComboBox has no property"):
        class qMRMLNodeComboBox(F._Obj):  # noqa: F811, N801
            _props = {"noneEnabld": False}
    with pytest.raises(F.UnknownSlicerName, match="signal 'currentNodeChanged\\(int\\)'"):
        class qMRMLNodeComboBox(F._Obj):  # noqa: F811, N801
            _signals = ("currentNodeChanged(int)",)
    with pytest.raises(F.UnknownSlicerName, match="ctkPathLineEdit has no enum 'Folders'"):
        class ctkPathLineEdit(F._Obj):  # noqa: N801
            _enums = ("Folders",)
    with pytest.raises(F.UnknownSlicerName, match="QComboBox has no method 'addItemz'"):
        class QComboBox(F._Obj):
            def addItemz(self, text):
                pass
    with pytest.raises(F.UnknownSlicerName, match="not a class of Slicer"):
        class QFancyWidget(F._Obj):
            pass


def test_real_names_pass_and_come_from_slicers_sources():
    class qMRMLNodeComboBox(F._Obj):  # noqa: N801
        _props = {"noneEnabled": False, "nodeTypes": []}
        _signals = ("currentNodeChanged(vtkMRMLNode*)",)

        def setMRMLScene(self, scene):
            pass

    k = F.known_names("qMRMLNodeComboBox", "v5.12.3")
    assert "noneDisplay" in k["properties"] and "setMRMLScene" in k["methods"]
    assert "currentPathChanged(QString)" in F.known_names("ctkPathLineEdit", "v5.10.0")["signals"]
    # every stand-in the module tests use was checked when fakes.qt was imported
    from fakes.slicer_env import Parent

    assert F.QComboBox._slicer_class == "QComboBox" and Parent._slicer_class == "QWidget"
