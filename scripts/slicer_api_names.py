"""Generate Testing/Python/fakes/slicer_api.json: the API names real Slicer has, from its source.

    python scripts/slicer_api_names.py SLICER_GIT_DIR CTK_GIT_DIR [OUT]
    python scripts/slicer_api_names.py --parameter-node-wrapper SLICER_GIT_DIR [OUT]

SLICER_GIT_DIR / CTK_GIT_DIR are git directories (bare mirrors are fine) of
github.com/Slicer/Slicer and github.com/commontk/CTK; the files are read with ``git show`` at
the Slicer release tags below and at the CTK commit each release pins
(``SuperBuild/External_CTK.cmake``). Run by hand when the tags change; the test suite reads the
committed JSON and never runs this script (no network, no Slicer source at test time).

What is extracted, per Slicer release:

* C++ classes of MRML, the Segmentations core, the loadable modules' logic/MRML/widgets, the
  qMRML widgets and Slicer's application classes, and CTK's widgets: methods (declarations,
  ``Q_INVOKABLE``, slots, and the accessors VTK's ``vtkGet*Macro``/``vtkSet*Macro``/
  ``vtkBooleanMacro`` declare), ``Q_PROPERTY`` names, signals (normalised as Qt does:
  ``currentPathChanged(QString)``), enum values, base classes, and the methods whose comment
  says they are deprecated;
* Qt classes as Slicer's own designer files use them (Qt's source is not part of Slicer):
  per class, the properties set in ``.ui`` files and the signals of ``<connection>``s;
* Slicer's Python: the functions of ``slicer.util`` and ``slicer.packaging``, the classes and
  methods of ``slicer.ScriptedLoadableModule``, what ``slicer.parameterNodeWrapper`` exports,
  and, from every Python file of Slicer (scripted modules, templates, ``slicer`` package), the
  Qt-style method names called, attribute names assigned and signal strings connected, and from
  every C++ file the ``SIGNAL(...)`` signatures and ``->method(`` calls (these say "Slicer's own
  code uses this name on some Qt object", the evidence for Qt names no designer file shows; a
  property counts as used when it is assigned or its ``setX`` setter is called).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

SLICER_TAGS = ("v5.8.1", "v5.10.0", "v5.12.3")
HEADER_DIRS = ("Libs/MRML/Core", "Libs/MRML/Logic", "Libs/MRML/Widgets", "Libs/vtkSegmentationCore",
               "Base/QTCore", "Base/QTGUI", "Base/Logic")
MODULE_SUBDIRS = ("Logic", "MRML", "Widgets", "")
CTK_DIRS = ("Libs/Widgets", "Libs/Core", "Libs/Visualization/VTK/Widgets")
PY_FILES = ("Base/Python/slicer/util.py", "Base/Python/slicer/packaging.py",
            "Base/Python/slicer/ScriptedLoadableModule.py",
            "Base/Python/slicer/parameterNodeWrapper/__init__.py")
# Qt's class hierarchy for the widgets the modules use (Qt 5.15 documentation); Qt's source is
# not in Slicer, so a Qt class's known names are those of its own and its bases' usages.
QT_BASES = {
    "QObject": [], "QWidget": ["QObject"], "QFrame": ["QWidget"],
    "QAbstractButton": ["QWidget"], "QPushButton": ["QAbstractButton"],
    "QCheckBox": ["QAbstractButton"], "QRadioButton": ["QAbstractButton"],
    "QToolButton": ["QAbstractButton"], "QComboBox": ["QWidget"],
    "QAbstractSpinBox": ["QWidget"], "QSpinBox": ["QAbstractSpinBox"],
    "QDoubleSpinBox": ["QAbstractSpinBox"], "QLineEdit": ["QWidget"], "QLabel": ["QFrame"],
    "QProgressBar": ["QWidget"], "QAbstractScrollArea": ["QFrame"],
    "QAbstractItemView": ["QAbstractScrollArea"], "QListView": ["QAbstractItemView"],
    "QListWidget": ["QListView"], "QTableView": ["QAbstractItemView"],
    "QTableWidget": ["QTableView"], "QPlainTextEdit": ["QAbstractScrollArea"],
    "QTextEdit": ["QAbstractScrollArea"], "QTextBrowser": ["QTextEdit"],
    "QGroupBox": ["QWidget"], "QTimer": ["QObject"], "QLayout": ["QObject"],
    "QBoxLayout": ["QLayout"], "QVBoxLayout": ["QBoxLayout"], "QHBoxLayout": ["QBoxLayout"],
    "QFormLayout": ["QLayout"], "QGridLayout": ["QLayout"], "QSlider": ["QWidget"],
    "QTabWidget": ["QWidget"], "QStackedWidget": ["QFrame"], "QSplitter": ["QFrame"],
}

_ACCESS = re.compile(r"^\s*(public|protected|private)\s*(slots|Q_SLOTS)?\s*:|^\s*(signals|Q_SIGNALS)\s*:")
_CLASS = re.compile(r"^\s*(?:class|struct)\s+(?:\w+_EXPORT\s+)?(\w+)\s*(?:final\s*)?(?::\s*([^{;]+))?\{?\s*$")
_DECL = re.compile(r"(?:^|[\s\*&~])(\w+)\s*\(")
_VTK_MACRO = re.compile(r"vtk(Get|Set)(\w*)Macro\s*\(\s*(\w+)")
_VTK_BOOL = re.compile(r"vtkBooleanMacro\s*\(\s*(\w+)")
_PROPERTY = re.compile(r"Q_PROPERTY\s*\(\s*[\w:<>, ]+?[\s\*&]+(\w+)\s+(?:READ|MEMBER|WRITE)")
_NOT_METHODS = {"if", "for", "while", "switch", "return", "sizeof", "Q_DECLARE_PRIVATE",
                "Q_DISABLE_COPY", "Q_OBJECT", "Q_PROPERTY", "Q_ENUM", "Q_ENUMS", "Q_FLAGS",
                "Q_FLAG", "Q_DECLARE_FLAGS", "Q_PRIVATE_SLOT", "QT_VERSION_CHECK", "defined",
                "vtkTypeMacro", "vtkMRMLCopyContentMacro", "VTK_LEGACY", "Q_D", "Q_Q",
                "vtkMRMLNodeNewMacro", "Q_INVOKABLE", "Q_SLOTS", "Q_SIGNALS", "operator"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), *args], capture_output=True,
                          text=True, check=True, errors="replace").stdout


def read_many(repo: Path, rev: str, paths: list[str]) -> dict[str, str]:
    """Many files of one revision at once (``git cat-file --batch``)."""
    proc = subprocess.run(["git", "--git-dir", str(repo), "cat-file", "--batch"],
                          input="".join(f"{rev}:{p}\n" for p in paths).encode(),
                          capture_output=True, check=True)
    data, out, pos = proc.stdout, {}, 0
    for p in paths:
        end = data.index(b"\n", pos)
        header = data[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[1] == b"missing":
            continue
        size = int(header[2])
        out[p] = data[pos:pos + size].decode("utf-8", errors="replace")
        pos += size + 1
    return out


def parse_cxx_usage(text: str, out: dict) -> None:
    """Qt-style names Slicer's C++ uses: SIGNAL(...) signatures and ->method( calls."""
    out["signals"].update(re.sub(r"\bconst\s+|&|\s", "", s) for s in re.findall(
        r"SIGNAL\(\s*(\w+\([^)]*\))\s*\)", text))
    out["methods"].update(re.findall(r"(?:->|\.)([a-z]\w*)\(", text))


def list_files(repo: Path, rev: str, *dirs: str) -> list[str]:
    out = git(repo, "ls-tree", "-r", "--name-only", rev, "--", *dirs)
    return out.split()


def _strip_comments_keep_flags(text: str) -> list[tuple[str, bool]]:
    """Lines with // and /* */ comments removed, each with "a comment says it is deprecated":
    on the line, on the comment lines just above it, or at the top of its Doxygen member group
    (``///@{ ... ///@}``)."""
    out = []
    pending = False  # a comment since the last code line said deprecated
    in_group = group_dep = False
    in_block = False
    for raw in text.splitlines():
        line = raw
        flag_here = "deprecated" in raw.lower()
        if "@{" in raw:
            in_group, group_dep = True, False
        if "@}" in raw:
            in_group = group_dep = False
        if in_block:
            end = line.find("*/")
            if end < 0:
                pending = pending or flag_here
                continue
            line, in_block = line[end + 2:], False
        while "/*" in line:
            a = line.find("/*")
            b = line.find("*/", a + 2)
            if b < 0:
                line, in_block = line[:a], True
                break
            line = line[:a] + line[b + 2:]
        code = line.split("//", 1)[0]
        if not code.strip():
            if flag_here:
                pending = True
                group_dep = group_dep or in_group
            continue
        out.append((code, flag_here or pending or group_dep))
        pending = False
    return out


def _normalise_signature(name: str, params: str) -> str:
    types = []
    for p in [p.strip() for p in params.split(",") if p.strip() and p.strip() != "void"]:
        p = p.split("=", 1)[0].strip()
        p = re.sub(r"\bconst\b", "", p)
        star = "*" if "*" in p else ""
        p = p.replace("*", " ").replace("&", " ")
        words = p.split()
        typ = words[0] if len(words) == 1 else " ".join(words[:-1])
        types.append(typ.strip() + star)
    return f"{name}({','.join(types)})"


def parse_header(text: str) -> dict:
    """Classes of a C++ header: methods, properties, signals, enums, bases, deprecated."""
    classes: dict = {}
    stack: list = []  # [class dict, depth of its body, section]
    depth = 0
    enum_buf = None
    buf = ""
    for code, deprecated in _strip_comments_keep_flags(text):
        m = _CLASS.match(code)
        opened = False
        if m and not code.rstrip().endswith(";"):
            name = m.group(1)
            bases = [b.strip().split()[-1] for b in (m.group(2) or "").split(",") if b.strip()]
            cls = classes.setdefault(name, {"bases": [b for b in bases if re.match(r"^\w+$", b)],
                                            "methods": [], "properties": [], "signals": [],
                                            "enums": [], "deprecated": []})
            stack.append([cls, depth + 1, "private", False])
            opened = True
            buf = ""
        top = stack[-1] if stack else None
        if top is not None and not opened:
            cls, body_depth, section, _ = top
            if enum_buf is not None:
                enum_buf += " " + code
                if "}" in enum_buf:
                    body = enum_buf[enum_buf.find("{") + 1:enum_buf.find("}")]
                    cls["enums"] += [v.split("=")[0].strip() for v in body.split(",")
                                     if re.match(r"^\s*[A-Za-z_]\w*\s*(=|$)", v)]
                    enum_buf = None
            elif depth == body_depth:
                a = _ACCESS.match(code)
                if a:
                    top[2] = "signals" if a.group(3) else a.group(1)
                    buf = ""
                elif re.match(r"^\s*enum\b", code):
                    enum_buf = code
                    if "}" in code:
                        body = code[code.find("{") + 1:code.find("}")]
                        cls["enums"] += [v.split("=")[0].strip() for v in body.split(",")
                                         if re.match(r"^\s*[A-Za-z_]\w*\s*(=|$)", v)]
                        enum_buf = None
                elif not code.lstrip().startswith("#"):
                    for pm in _PROPERTY.finditer(code):
                        cls["properties"].append(pm.group(1))
                    for mm in _VTK_MACRO.finditer(code):
                        cls["methods"].append(mm.group(1) + mm.group(3))
                        if deprecated:
                            cls["deprecated"].append(mm.group(1) + mm.group(3))
                        else:
                            cls.setdefault("_current", []).append(mm.group(1) + mm.group(3))
                    for mm in _VTK_BOOL.finditer(code):
                        cls["methods"] += [mm.group(1) + "On", mm.group(1) + "Off"]
                    if section in ("public", "signals") or "Q_INVOKABLE" in code:
                        buf = buf + " " + code if buf else code
                        if ";" in buf or "{" in buf or buf.rstrip().endswith(")"):
                            decl = buf.split("{")[0]
                            for d in _DECL.finditer(decl):
                                name = d.group(1)
                                if (name in _NOT_METHODS or name.isupper()
                                        or name.startswith(("vtk", "Q_"))):
                                    continue
                                if section == "signals":
                                    args = decl[d.end():]
                                    cls["signals"].append(
                                        _normalise_signature(name, args[:args.find(")")]))
                                else:
                                    cls["methods"].append(name)
                                if deprecated:
                                    cls["deprecated"].append(name)
                                else:
                                    cls.setdefault("_current", []).append(name)
                                break
                            buf = ""
        depth += code.count("{") - code.count("}")
        if stack and depth >= stack[-1][1]:
            stack[-1][3] = True  # the class body is open
        while stack and stack[-1][3] and depth < stack[-1][1]:
            stack.pop()
    for c in classes.values():
        # a name is deprecated only when every declaration of it is (not a deprecated overload)
        c["deprecated"] = set(c["deprecated"]) - set(c.pop("_current", ()))
        for k in ("methods", "properties", "signals", "enums", "deprecated"):
            c[k] = sorted(set(c[k]))
    return classes


def parse_ui(text: str, props: dict, signals: dict) -> None:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(text)
    names = {}
    for w in root.iter("widget"):
        cls = w.get("class")
        names[w.get("name")] = cls
        for p in w.findall("property"):
            props.setdefault(cls, set()).add(p.get("name"))
    for layout in root.iter("layout"):
        names[layout.get("name")] = layout.get("class")
    for c in root.iter("connection"):
        sender, sig = c.findtext("sender"), c.findtext("signal")
        if sender in names and sig:
            signals.setdefault(names[sender], set()).add(sig.replace(" ", ""))


def parse_python(text: str, out: dict) -> None:
    out["methods"].update(re.findall(r"\.([a-z]\w*)\(", text))
    out["assigned"].update(re.findall(r"\.([a-z]\w*)\s*=(?!=)", text))
    out["signals"].update(s.replace(" ", "") for s in re.findall(
        r"""connect\(\s*["'](\w+\([^"')]*\))["']""", text))


def python_api(text: str) -> dict:
    import ast

    tree = ast.parse(text)
    out = {"functions": [], "classes": {}}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            out["functions"].append(node.name)
        elif isinstance(node, ast.ClassDef):
            out["classes"][node.name] = sorted(
                f.name for f in node.body if isinstance(f, ast.FunctionDef))
        elif isinstance(node, (ast.ImportFrom,)):
            out["functions"] += [a.asname or a.name for a in node.names if a.name != "*"]
    out["functions"] = sorted(set(out["functions"]))
    return out


PNW_DIR = "Base/Python/slicer/parameterNodeWrapper"


def _attr_names(node) -> list[str]:
    """``qt.X`` / ``ctk.X`` / ``slicer.X`` / ``pathlib.X`` / ``validators.X`` under ``node``."""
    import ast

    return sorted({f"{n.value.id}.{n.attr}" for n in ast.walk(node)
                   if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                   and n.value.id in ("qt", "ctk", "slicer", "pathlib", "validators", "enum")})


def parameter_node_wrapper_api(slicer: Path, tag: str) -> dict:
    """What ``slicer.parameterNodeWrapper`` has in release ``tag``, read from its package:

    * ``exports``: every name ``from slicer.parameterNodeWrapper import ...`` gives (the
      ``__all__`` of each submodule star-imported by ``__init__.py``, plus its named imports);
    * ``classes``: per exported class, its methods and the parameters of ``__init__``;
    * ``wrapper_members``: what ``@parameterNodeWrapper`` adds to a class (``checkedSetAttr``
      names in ``wrapper.py``, plus ``__init__(parameterNode, prefix)``);
    * ``connectors``: per ``@parameterNodeGuiConnector`` class, the widget classes and data
      types its ``canRepresent`` names, the signal its ``_connect`` uses, and the annotations
      (``validators.X``, ``Decimals``...) its constructor reads.
    """
    import ast

    files = [f for f in list_files(slicer, tag, PNW_DIR) if f.endswith(".py")]
    trees = {Path(f).stem: ast.parse(git(slicer, "show", f"{tag}:{f}")) for f in files}
    exports: set = set()
    for node in trees["__init__"].body:
        if isinstance(node, ast.ImportFrom):
            sub = (node.module or "").lstrip(".")
            for a in node.names:
                if a.name != "*":
                    exports.add(a.asname or a.name)
                elif sub in trees:
                    for n in trees[sub].body:
                        if isinstance(n, ast.Assign) and any(
                                isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets):
                            exports |= {e.value for e in n.value.elts}
    classes, connectors = {}, {}
    for stem, tree in trees.items():
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            methods = {f.name: f for f in node.body if isinstance(f, ast.FunctionDef)}
            if node.name in exports:
                init = methods.get("__init__")
                classes[node.name] = {
                    "file": f"Slicer {tag}: {PNW_DIR}/{stem}.py",
                    "methods": sorted(m for m in methods if not m.startswith("_")),
                    "init": [a.arg for a in init.args.args[1:]] if init else []}
            decorators = {getattr(d, "id", None) for d in node.decorator_list}
            if "parameterNodeGuiConnector" in decorators:
                can = methods.get("canRepresent")
                connect = methods.get("_connect")
                signal = sorted({n.value.attr for n in ast.walk(connect)
                                 if isinstance(n, ast.Attribute) and n.attr == "connect"
                                 and isinstance(n.value, ast.Attribute)}) if connect else []
                names = _attr_names(can) if can else []
                types_ = sorted({n.id for st in can.body for n in ast.walk(st)
                                 if isinstance(n, ast.Name)
                                 and n.id in ("bool", "int", "float", "str", "FloatRange",
                                              "isNodeOrUnionOfNodes")}) if can else []
                init = methods.get("__init__")
                annotations = sorted(
                    {a for a in (_attr_names(init) if init else []) if a.startswith("validators.")}
                    | ({n.id for n in ast.walk(init) if isinstance(n, ast.Name)
                        and n.id in ("Decimals", "SingleStep", "Default")} if init else set()))
                connectors[node.name] = {
                    "widgets": [n for n in names if n.split(".")[0] in ("qt", "ctk", "slicer")],
                    "types": types_ + [n for n in names if n.split(".")[0] in ("pathlib", "enum")],
                    "signals": signal, "annotations": annotations}
    wrapper = ast.unparse(trees["wrapper"])
    members = sorted(set(re.findall(r"checkedSetAttr\(classtype, '(\w+)'", wrapper)))
    return {"exports": sorted(exports), "classes": classes, "wrapper_members": members,
            "connectors": connectors,
            "parameter_name_property": re.search(r"SlicerParameterNamePropertyName = '(\w+)'",
                                                 wrapper).group(1)}


def ctk_commit(slicer: Path, tag: str) -> str:
    text = git(slicer, "show", f"{tag}:SuperBuild/External_CTK.cmake")
    return re.search(r'GIT_TAG\s*\n\s*"([0-9a-f]{40})"', text).group(1)


def release(slicer: Path, ctk: Path, tag: str) -> dict:
    commit = git(slicer, "rev-parse", f"{tag}^{{commit}}").strip()
    ctk_rev = ctk_commit(slicer, tag)
    classes: dict = {}
    files = list_files(slicer, tag, *HEADER_DIRS)
    modules = {f.split("/")[2] for f in list_files(slicer, tag, "Modules/Loadable")
               if f.count("/") >= 3}
    for m in sorted(modules):
        for sub in MODULE_SUBDIRS:
            d = f"Modules/Loadable/{m}/{sub}".rstrip("/")
            files += [f for f in list_files(slicer, tag, d)
                      if f.count("/") == d.count("/") + 1]
    for f in sorted(set(files)):
        if f.endswith(".h"):
            for name, c in parse_header(git(slicer, "show", f"{tag}:{f}")).items():
                c["file"] = f"Slicer {tag}: {f}"
                classes.setdefault(name, c)
    for f in list_files(ctk, ctk_rev, *CTK_DIRS):
        if f.endswith(".h") and "/Testing/" not in f:
            for name, c in parse_header(git(ctk, "show", f"{ctk_rev}:{f}")).items():
                c["file"] = f"CTK {ctk_rev[:10]}: {f}"
                classes.setdefault(name, c)
    ui_props: dict = {}
    ui_signals: dict = {}
    py_usage = {"methods": set(), "assigned": set(), "signals": set()}
    every = list_files(slicer, tag, ".")
    wanted = [f for f in every if f.endswith((".ui", ".py", ".cxx"))
              and not f.startswith(("Utilities/Scripts", "Docs/"))]
    for f, text in read_many(slicer, tag, wanted).items():
        if f.endswith(".ui"):
            try:
                parse_ui(text, ui_props, ui_signals)
            except Exception:  # noqa: BLE001  a malformed designer file is skipped
                pass
        elif f.endswith(".py"):
            parse_python(text, py_usage)
        else:
            parse_cxx_usage(text, py_usage)
    python = {}
    for f in PY_FILES:
        try:
            text = git(slicer, "show", f"{tag}:{f}")
        except subprocess.CalledProcessError:
            continue
        python[f.removeprefix("Base/Python/").removesuffix(".py").replace("/", ".")
               .removesuffix(".__init__")] = python_api(text)
    qt = {}
    for name in QT_BASES:
        qt[name] = {"bases": QT_BASES[name], "properties": sorted(ui_props.get(name, ())),
                    "signals": sorted(ui_signals.get(name, ())), "file": f"Slicer {tag}: *.ui"}
    module_names = sorted({f.split("/")[2] for f in list_files(slicer, tag, "Modules/Loadable",
                                                                  "Modules/Scripted")
                           if f.count("/") >= 3})
    return {"commit": commit, "ctk_commit": ctk_rev, "classes": classes, "qt": qt,
            "modules": module_names,
            "python": python,
            "parameterNodeWrapper": parameter_node_wrapper_api(slicer, tag),
            "python_usage": {k: sorted(v) for k, v in py_usage.items()}}


def main(slicer_dir: str, ctk_dir: str, out: str = "Testing/Python/fakes/slicer_api.json") -> None:
    slicer, ctk = Path(slicer_dir), Path(ctk_dir)
    data = {"generated_by": "scripts/slicer_api_names.py",
            "sources": {"slicer": "https://github.com/Slicer/Slicer",
                        "ctk": "https://github.com/commontk/CTK"},
            "releases": {tag: release(slicer, ctk, tag) for tag in SLICER_TAGS}}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(data, indent=None, sort_keys=True, separators=(",", ":")) + "\n",
                         encoding="utf-8")
    for tag, r in data["releases"].items():
        print(tag, r["commit"][:10], len(r["classes"]), "classes")


def update_parameter_node_wrapper(slicer_dir: str,
                                  out: str = "Testing/Python/fakes/slicer_api.json") -> None:
    """Refresh only the ``parameterNodeWrapper`` section of an existing JSON (no CTK needed)."""
    data = json.loads(Path(out).read_text(encoding="utf-8"))
    for tag, r in data["releases"].items():
        r["parameterNodeWrapper"] = parameter_node_wrapper_api(Path(slicer_dir), tag)
        print(tag, len(r["parameterNodeWrapper"]["exports"]), "parameterNodeWrapper names")
    Path(out).write_text(json.dumps(data, indent=None, sort_keys=True, separators=(",", ":")) + "\n",
                         encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--parameter-node-wrapper"]:  # SLICER_GIT_DIR [OUT]
        update_parameter_node_wrapper(*sys.argv[2:4])
    else:
        main(*sys.argv[1:4])
