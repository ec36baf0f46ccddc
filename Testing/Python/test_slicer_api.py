"""Every Slicer, MRML, CTK and Qt name the module files and ``hrpqct_slicer`` use, checked against
Slicer's own source (Testing/Python/fakes/slicer_api.json, generated from Slicer 5.8.1, 5.10.0 and
5.12.3 and the CTK each pins by scripts/slicer_api_names.py; never regenerated at test time).

Checked in both supported releases (5.10.0, the minimum, and 5.12.3):

* classes named through ``slicer.``/``ctk.``/``qt.``, ``slicer.modules.<name>``, ``slicer.util``
  functions, ``slicer.app`` members and signals, the ``ScriptedLoadableModule`` base classes;
* every capitalised method called (the VTK/MRML convention), which must be declared by some
  Slicer class, or by VTK itself (the VTK of this venv is 9.6.2, the one Slicer 5.12.3 bundles),
  and not only in a form the headers mark deprecated;
* enum values read as attributes (``slicer.mrmlScene.StartCloseEvent``, ``ctkPathLineEdit.Dirs``);
* signal signatures passed to ``connect``;
* the ``.ui`` files' widget classes and properties (the ``SlicerParameterName`` dynamic
  property, ``stdset="0"``, as the name ``slicer.parameterNodeWrapper``'s ``connectGui`` reads);
* the names imported from ``slicer.parameterNodeWrapper``.

``python Testing/Python/test_slicer_api.py`` prints the table of docs/slicer-extension.md.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
API = Path(__file__).resolve().parent / "fakes" / "slicer_api.json"
SUPPORTED = ("v5.10.0", "v5.12.3")
MODULE_FILES = [ROOT / m / f"{m}.py" for m in ("HRpQCTSeg", "HRpQCTRadiomics", "HRpQCTClassify")]
CODE_FILES = MODULE_FILES + sorted((ROOT / "src" / "hrpqct_slicer").glob("*.py"))
UI_FILES = sorted(ROOT.glob("HRpQCT*/Resources/UI/*.ui"))
# Names of the MRML library that come from VTK itself (vtkObject, arrays, tables, matrices): the
# venv's VTK is the version Slicer 5.12.3 bundles (docs/slicer-extension.md)
VTK_CLASSES = ("vtkObject", "vtkTable", "vtkMatrix4x4", "vtkImageData", "vtkDoubleArray",
               "vtkStringArray", "vtkIntArray", "vtkAbstractArray", "vtkDataArray",
               "vtkUnsignedCharArray", "vtkShortArray", "vtkFloatArray", "vtkCommand",
               "vtkLongLongArray", "vtkBitArray", "vtkVariantArray", "vtkTransform",
               "vtkPointData", "vtkOrientedImageData")
NOT_API = {"SimpleNamespace"}  # Python, not Slicer


@lru_cache(maxsize=None)
def api() -> dict:
    return json.loads(API.read_text(encoding="utf-8"))


def release(tag: str) -> dict:
    return api()["releases"][tag]


def _class_names(rel: dict, name: str) -> dict:
    """Methods/properties/signals/enums of a class and its bases known in ``rel``."""
    out = {"methods": set(), "properties": set(), "signals": set(), "enums": set(),
           "deprecated": set(), "files": []}
    todo, seen = [name], set()
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        c = rel["classes"].get(n) or rel["qt"].get(n)
        if c is None:
            continue
        for k in ("methods", "properties", "signals", "enums", "deprecated"):
            out[k] |= set(c.get(k, ()))
        out["files"].append(c["file"])
        todo += c.get("bases", [])
    return out


@lru_cache(maxsize=None)
def _method_index(tag: str) -> dict:
    """method name -> [(class, deprecated)] over every Slicer/CTK class of a release."""
    idx: dict = {}
    for cname, c in release(tag)["classes"].items():
        dep = set(c["deprecated"])
        for m in c["methods"]:
            idx.setdefault(m, []).append((cname, m in dep))
    return idx


@lru_cache(maxsize=None)
def _vtk_names() -> set:
    vtk = pytest.importorskip("vtk")
    names = set()
    for cname in VTK_CLASSES:
        cls = getattr(vtk, cname, None)
        if cls is None:
            try:
                import slicer

                cls = getattr(slicer, cname)
            except (ImportError, AttributeError):
                continue
        names |= {n for n in dir(cls) if not n.startswith("_")}
    return names


# --- what the code uses ------------------------------------------------------------------------
def _dotted(node) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def used_names() -> dict:
    """What the module files and hrpqct_slicer use, by kind: name -> [file:line, ...]."""
    kinds = {k: {} for k in ("class", "module", "util", "app", "method", "enum", "signal", "base",
                             "pnw")}

    def add(kind, name, path, node):
        kinds[kind].setdefault(name, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")

    for path in CODE_FILES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = set()  # names bound by imports: calls on them are not methods of objects
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported |= {a.asname or a.name for a in node.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for b in node.bases:
                    if isinstance(b, ast.Name) and b.id.startswith("ScriptedLoadableModule"):
                        add("base", b.id, path, node)
            if isinstance(node, ast.Attribute):
                d = _dotted(node)
                if d is None:
                    continue
                parts = d.split(".")
                if parts[0] in ("slicer", "ctk", "qt") and len(parts) >= 2:
                    head = parts[1]
                    if re.match(r"^(vtk|qMRML|qSlicer|ctk|Q)[A-Z]", head):
                        add("class", f"{parts[0]}.{head}", path, node)
                        if len(parts) >= 3 and re.match(r"^[A-Z]", parts[2]):
                            add("enum", f"{head}.{parts[2]}", path, node)
                    elif head == "modules" and len(parts) >= 3:
                        add("module", parts[2], path, node)
                    elif head == "util" and len(parts) >= 3:
                        add("util", parts[2], path, node)
                    elif head == "app" and len(parts) >= 3:
                        add("app", parts[2], path, node)
                    elif head == "mrmlScene" and len(parts) >= 3 and parts[2].endswith("Event"):
                        add("enum", f"vtkMRMLScene.{parts[2]}", path, node)
                if parts[0] == "vtk" and len(parts) >= 3 and parts[1] == "vtkCommand":
                    add("enum", f"vtkCommand.{parts[2]}", path, node)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                receiver = node.func.value
                on_module = isinstance(receiver, ast.Name) and receiver.id in imported
                if re.match(r"^[A-Z][A-Za-z0-9]+$", name) and name not in NOT_API \
                        and not on_module:
                    add("method", name, path, node)
                if name == "connect" and node.args and isinstance(node.args[0], ast.Constant) \
                        and isinstance(node.args[0].value, str) and "(" in node.args[0].value:
                    add("signal", node.args[0].value, path, node)
            if isinstance(node, ast.ImportFrom) and node.module == "slicer.util":
                for a in node.names:
                    add("util", a.name, path, node)
            if isinstance(node, ast.ImportFrom) and node.module == "slicer.parameterNodeWrapper":
                for a in node.names:
                    add("pnw", a.name, path, node)
    return kinds


# --- checks ------------------------------------------------------------------------------------
def _check(tag: str) -> tuple[list[str], dict]:
    """Problems in release ``tag`` and, per checked name, the Slicer source file(s)."""
    rel = release(tag)
    used = used_names()
    problems, where = [], {}
    qt_usage = set(rel["python_usage"]["signals"])
    for q in rel["qt"].values():
        qt_usage |= set(q["signals"])
    for name, locs in used["class"].items():
        ns, cname = name.split(".")
        if ns == "qt":
            ok = cname in rel["qt"] or cname in ("QTimer", "QMessageBox", "Qt", "QSettings")
            where[name] = "Qt (Slicer's .ui files / Qt 5.15)" if ok else None
        else:
            c = rel["classes"].get(cname)
            where[name] = c["file"] if c else None
        if where[name] is None:
            problems.append(f"{name} not in {tag} ({locs[0]})")
    modules = {m.lower() for m in rel["modules"]}
    for name, locs in used["module"].items():
        ok = name.lower() in modules
        where[f"slicer.modules.{name}"] = f"Slicer {tag}: Modules/*/{name}" if ok else None
        if not ok:
            problems.append(f"slicer.modules.{name} not in {tag} ({locs[0]})")
    util = set(rel["python"]["slicer.util"]["functions"]) | set(
        rel["python"]["slicer.util"]["classes"])
    for name, locs in used["util"].items():
        ok = name in util
        where[f"slicer.util.{name}"] = f"Slicer {tag}: Base/Python/slicer/util.py" if ok else None
        if not ok:
            problems.append(f"slicer.util.{name} not in {tag} ({locs[0]})")
    app = _class_names(rel, "qSlicerApplication")
    app_names = app["methods"] | app["properties"]
    usage = rel["python_usage"]
    for name, locs in used["app"].items():
        # qSlicerApplication's own members, or QApplication's as Slicer's own code calls them
        ok = name in app_names or name in usage["methods"]
        where[f"slicer.app.{name}"] = app["files"][0] if ok else None
        if not ok:
            problems.append(f"slicer.app.{name} not in {tag} ({locs[0]})")
    slm = rel["python"]["slicer.ScriptedLoadableModule"]["classes"]
    for name, locs in used["base"].items():
        ok = name in slm
        where[name] = f"Slicer {tag}: Base/Python/slicer/ScriptedLoadableModule.py" if ok else None
        if not ok:
            problems.append(f"{name} not in {tag} ({locs[0]})")
    idx = _method_index(tag)
    vtk_names = _vtk_names()
    for name, locs in used["method"].items():
        defs = idx.get(name, [])
        current = [c for c, dep in defs if not dep]
        if current:
            files = sorted({rel["classes"][c]["file"] for c in current})
            where[f".{name}()"] = ", ".join([c for c in current][:3]) + " (" + files[0] + ")"
        elif name in vtk_names:
            where[f".{name}()"] = "VTK 9.6.2 (bundled by Slicer 5.12.3)"
        elif defs:
            where[f".{name}()"] = None
            problems.append(f".{name}() is deprecated in {tag}: {[c for c, _ in defs]} "
                            f"({locs[0]})")
        else:
            where[f".{name}()"] = None
            problems.append(f".{name}() is declared by no Slicer class in {tag} nor VTK "
                            f"({locs[0]})")
    for name, locs in used["enum"].items():
        cname, value = name.split(".")
        known = _class_names(rel, cname)
        ok = value in known["enums"] or value in known["methods"] or (
            cname == "vtkCommand" and value in vtk_names)
        where[name] = (known["files"][0] if known["files"] else "VTK 9.6.2") if ok else None
        if not ok:
            problems.append(f"{name} not in {tag} ({locs[0]})")
    for name, locs in used["signal"].items():
        owners = [c for c, v in rel["classes"].items() if name in v["signals"]]
        ok = bool(owners) or name in qt_usage
        where[f'"{name}"'] = (rel["classes"][owners[0]]["file"] if owners
                              else "Qt signal (used in Slicer's own .ui/Python)") if ok else None
        if not ok:
            problems.append(f"signal {name} not in {tag} ({locs[0]})")
    pnw = rel["parameterNodeWrapper"]
    for name, locs in used["pnw"].items():
        ok = name in pnw["exports"]
        where[f"slicer.parameterNodeWrapper.{name}"] = (
            f"Slicer {tag}: Base/Python/slicer/parameterNodeWrapper/" if ok else None)
        if not ok:
            problems.append(f"slicer.parameterNodeWrapper.{name} not in {tag} ({locs[0]})")
    for ui in UI_FILES:
        root = ET.fromstring(ui.read_text(encoding="utf-8"))
        for w in root.iter("widget"):
            cls = w.get("class")
            known = _class_names(rel, cls)
            if not known["files"]:
                problems.append(f"{ui.name}: widget class {cls} not in {tag}")
                continue
            where[f"{ui.name}: {cls}"] = known["files"][0]
            for prop in w.findall("property"):
                pname = prop.get("name")
                if prop.get("stdset") == "0" and pname == pnw["parameter_name_property"]:
                    where[f"{ui.name}: {pname} (dynamic)"] = (
                        f"Slicer {tag}: Base/Python/slicer/parameterNodeWrapper/wrapper.py")
                    continue
                if pname not in known["properties"] and pname not in rel["python_usage"][
                        "assigned"] and pname not in ("geometry", "text", "toolTip", "enabled"):
                    problems.append(f"{ui.name}: {cls}.{pname} not in {tag}")
    return problems, where


@pytest.mark.parametrize("tag", SUPPORTED)
def test_every_slicer_name_exists_in_the_supported_releases(tag):
    problems, where = _check(tag)
    assert problems == []
    assert len(where) > 40  # the check saw the code


def test_the_check_can_fail():
    rel = release("v5.12.3")
    assert "SetTerminology" in rel["classes"]["vtkSegment"]["methods"]
    assert "SetUseColumnNameAsColumnHeader" in rel["classes"]["vtkMRMLTableNode"]["deprecated"]
    assert "NoSuchMethodAnywhere" not in _method_index("v5.12.3")
    assert "currentNodeChanged(vtkMRMLNode*)" in rel["classes"]["qMRMLNodeComboBox"]["signals"]
    pnw = rel["parameterNodeWrapper"]
    assert {"parameterNodeWrapper", "Choice", "WithinRange"} <= set(pnw["exports"])
    assert "NoSuchValidator" not in pnw["exports"] and "connectGui" in pnw["wrapper_members"]
    assert pnw["parameter_name_property"] == "SlicerParameterName"
    assert "qt.QCheckBox" in pnw["connectors"]["QCheckBoxToBoolConnector"]["widgets"]
    assert "ctk.ctkPathLineEdit" not in pnw["connectors"]["QLineEditToStrConnector"]["widgets"]


def test_minimum_is_slicer_5_10():
    # the segment terminology calls and LoadRegionContextFromFile exist from 5.10 on only
    from hrpqct_slicer import deps

    assert deps.MIN_SLICER == (5, 10)
    old, new = release("v5.8.1"), release("v5.10.0")
    for cname, method in (("vtkSegment", "SetTerminology"), ("vtkSegment", "GetTerminology"),
                          ("vtkSegment", "HasTerminology"),
                          ("vtkMRMLColorNode", "SetTerminologyFromString"),
                          ("vtkSlicerTerminologiesModuleLogic", "LoadRegionContextFromFile")):
        assert method in _class_names(new, cname)["methods"], (cname, method)
        assert method not in _class_names(old, cname)["methods"], (cname, method)
    assert any("SetTerminology" in v for v in [used_names()["method"]])  # and the code uses them


def markdown_table() -> str:
    rows = {}
    for tag in SUPPORTED:
        _, where = _check(tag)
        for k, v in where.items():
            rows.setdefault(k, {})[tag] = v
    lines = ["| name | checked in (Slicer 5.12.3 source; also present in 5.10.0 unless noted) |",
             "|---|---|"]
    for k in sorted(rows, key=str.lower):
        v = rows[k].get("v5.12.3") or "**missing**"
        note = "" if rows[k].get("v5.10.0") else " (**not in 5.10.0**)"
        lines.append(f"| `{k}` | {v.replace('Slicer v5.12.3: ', '')}{note} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    print(markdown_table())
