"""What every HRpQCT module widget and logic share, so a module file only builds its controls.

:class:`ModuleLogicMixin` (with ``ScriptedLoadableModuleLogic``): the scene and Segmentations
logic (Slicer's, or ones passed in for console use and tests), the parameter node wrapped by
``slicer.parameterNodeWrapper`` for the module's parameter dataclass
(:mod:`hrpqct_slicer.params`), and the first-use dependency check (:mod:`hrpqct_slicer.deps`).

:class:`ModuleWidgetMixin` (with ``ScriptedLoadableModuleWidget`` and ``VTKObservationMixin``):
the panel loaded from the module's ``Resources/UI/<Module>.ui``; the wrapped parameter node
bound to it with ``connectGui`` (widgets whose ``SlicerParameterName`` names a parameter), plus
:meth:`~ModuleWidgetMixin.bind` for what the wrapper has no connector for (combo boxes whose
items carry data, path edits of ``str`` parameters, groups of check boxes); the background task
polled by a 250 ms ``QTimer`` with its progress bar and status label, Cancel, the result or
error dialog at the end; the input warnings of a result shown in the panel
(:meth:`~ModuleWidgetMixin.showWarnings`); the scene-close handling. Qt, VTK and Slicer are
imported when used, so this module also imports where they are absent (the worker process,
the dependency check).
"""

from __future__ import annotations

import html
import logging
from typing import Any, Callable, Optional

__all__ = ["ModuleLogicMixin", "ModuleWidgetMixin", "first_scan", "select_data", "current_data",
           "slicer_version_problem", "warnings_html", "WARNING_COLOUR", "run_module_selftest",
           "describe_module", "ACKNOWLEDGEMENT"]

log = logging.getLogger("hrpqct_slicer")
WARNING_COLOUR = "#b35900"  # dark orange: readable on Slicer's light and dark themes

TIMER_MS = 250  # how often a running task is polled


def first_scan(scene: Any) -> Any:
    """The first scalar volume that is not a label map (label maps are scalar volumes too)."""
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
        if not node.IsA("vtkMRMLLabelMapVolumeNode"):
            return node
    return None


def select_data(combo: Any, value: Any) -> None:
    """Select the item of a combo box whose data is ``value`` (no change if there is none)."""
    index = combo.findData(value)
    if index >= 0:
        combo.currentIndex = index


def current_data(combo: Any) -> Any:
    index = combo.currentIndex
    return combo.itemData(index) if index >= 0 else None


def warnings_html(warnings) -> str:
    """The warnings as the rich text of the panel's warnings label: one coloured line each."""
    return "<br>".join(f'<span style="color:{WARNING_COLOUR}">&#9888; {html.escape(str(w))}'
                       "</span>" for w in warnings)


def slicer_version_problem() -> str:
    """A sentence when this Slicer is older than :data:`hrpqct_slicer.deps.MIN_SLICER` (its
    terminology calls first appear in 5.10), else ""."""
    import slicer

    from hrpqct_slicer.deps import MIN_SLICER

    try:
        version = (int(slicer.app.majorVersion), int(slicer.app.minorVersion))
    except (AttributeError, TypeError, ValueError):
        return ""
    if version >= MIN_SLICER:
        return ""
    return (f"HRpQCT needs Slicer {MIN_SLICER[0]}.{MIN_SLICER[1]} or newer; this is Slicer "
            f"{version[0]}.{version[1]}. Segmentation and terminology calls will fail here.")


ACKNOWLEDGEMENT = (
    "The method follows published work on SegFormer segmentation and radiomics of HR-pQCT scans "
    "of the distal tibia for osteoporosis assessment. Region terminology uses DICOM PS3.16 / "
    "SNOMED CT codes, with sources in Resources/README.md of the extension.")


def describe_module(parent: Any, title: str, helpText: str, dependencies: list,
                    acknowledgement: str = ACKNOWLEDGEMENT) -> None:
    """What every HRpQCT module tells Slicer about itself (category "HRpQCT")."""
    parent.title = title
    parent.categories = ["HRpQCT"]
    parent.dependencies = list(dependencies)
    parent.contributors = ["HRpQCT developers"]
    parent.helpText = helpText
    parent.acknowledgementText = acknowledgement


def run_module_selftest(test: Any, logic: Any, groups: tuple, steps: tuple) -> Any:
    """The body of a module's ``<Module>Test``: the packages of ``groups`` (asked for, as on
    first use), then :func:`hrpqct_slicer.selftest.run_selftest` of ``steps`` on Slicer's scene,
    each step's outcome shown with ``test.delayDisplay``; returns its result."""
    import slicer

    from hrpqct_slicer.selftest import run_selftest

    if groups:
        logic.ensureDependencies(groups)
    result = run_selftest(slicer.mrmlScene, slicer.modules.segmentations.logic(), steps=steps,
                          say=test.delayDisplay)
    for step, text in result.done.items():
        test.delayDisplay(f"{step}: {text}")
    for step, why in result.skipped.items():
        test.delayDisplay(f"{step} skipped: {why}")
    return result


class ModuleLogicMixin:
    """Scene, Segmentations logic, parameters and dependencies of a module's logic.

    Subclasses set ``PARAMETERS`` (a dataclass of :mod:`hrpqct_slicer.params`) and
    ``DEPENDENCY_GROUPS`` and call :meth:`initLogic` from ``__init__``.
    """

    PARAMETERS: type = object
    DEPENDENCY_GROUPS: tuple = ("core",)

    def initLogic(self, scene: Any = None, segmentationsLogic: Any = None) -> None:
        self._scene = scene
        self._segmentationsLogic = segmentationsLogic
        self.lastResults = None

    @property
    def scene(self) -> Any:
        import slicer

        return self._scene if self._scene is not None else slicer.mrmlScene

    @property
    def segmentationsLogic(self) -> Any:
        if self._segmentationsLogic is None:
            import slicer

            modules = getattr(slicer, "modules", None)
            if modules is not None and hasattr(modules, "segmentations"):
                self._segmentationsLogic = modules.segmentations.logic()
            else:
                from hrpqct_slicer.segmentations import segmentations_logic

                self._segmentationsLogic = segmentations_logic(self.scene)
        return self._segmentationsLogic

    def getParameterNode(self) -> Any:
        """The module's parameter node in :attr:`scene`, wrapped by ``parameterNodeWrapper``
        (:func:`hrpqct_slicer.params.parameter_node_class`), as Slicer's module template does."""
        from hrpqct_slicer import params

        wrapper = params.parameter_node_class(self.PARAMETERS)
        return wrapper(params.parameter_node(self.scene, self.moduleName))

    def getParameters(self) -> Any:
        """The module's choices as its ``PARAMETERS`` dataclass."""
        from hrpqct_slicer import params

        return params.to_dataclass(self.PARAMETERS, self.getParameterNode())

    def setParameters(self, parameters: Any) -> None:
        from hrpqct_slicer import params

        params.from_dataclass(parameters, self.getParameterNode())

    def ensureDependencies(self, groups: Optional[tuple] = None,
                           confirm: Optional[Callable[[str], bool]] = None,
                           install: Optional[Callable[[list], object]] = None) -> list:
        """Install missing packages after asking (:func:`hrpqct_slicer.deps.ensure_packages`)."""
        import slicer

        from hrpqct_slicer.deps import ensure_packages

        confirm = confirm or (lambda text: slicer.util.confirmOkCancelDisplay(
            text, windowTitle="HRpQCT: install Python packages"))
        install = install or slicer.util.pip_install
        return ensure_packages(groups or self.DEPENDENCY_GROUPS, confirm=confirm,
                               install=install)


class ModuleWidgetMixin:
    """Panel, parameter node, background task, warnings and scene handling of a module's widget.

    The module's widget calls :meth:`setupUI` in ``setup()`` (its ``.ui`` file has the widgets
    ``progressBar``, ``statusLabel``, ``warningsCollapsibleButton`` and ``warningsLabel``, and
    names each bound control's parameter in ``SlicerParameterName``), sets ``self.logic``, adds
    :meth:`bind` bindings and calls :meth:`setupPlumbing`; it implements ``updateButtons(p)``
    and, for a background task, ``onTaskSucceeded(task)``; ``showParameters(p)`` is optional
    (e.g. enabling a control); ``TASK_TITLE`` names the work in messages ("Segmentation").
    """

    TASK_TITLE = "The task"

    def initWidget(self) -> None:
        self.logic = None
        self._parameterNode = None
        self._guiTag = None
        self._bindings: list = []
        self._updatingGUI = False
        self._task = None
        self._timer = None
        self._cancelRequested = False

    def setupUI(self) -> Any:
        """Load ``Resources/UI/<Module>.ui`` into the panel; its named widgets become
        attributes of ``self.ui`` and of the widget."""
        import slicer

        uiWidget = slicer.util.loadUI(self.resourcePath(f"UI/{self.moduleName}.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        for name, child in vars(self.ui).items():
            setattr(self, name, child)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        if hasattr(self.ui, "progressBar"):  # a module whose work runs in the background
            self.progressBar.visible = False
        self.showWarnings(())
        return uiWidget

    def setupPlumbing(self) -> None:
        import qt
        import slicer

        self._timer = qt.QTimer()
        self._timer.setInterval(TIMER_MS)
        self._timer.connect("timeout()", self.onTimer)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()
        problem = slicer_version_problem()
        if problem:
            self.statusLabel.text = problem

    # --- bindings the wrapper's connectGui has no connector for --------------------------------
    def bind(self, name: str, widget: Any, signal: str, read: Callable[[], Any],
             write: Callable[[Any], None]) -> None:
        """Bind parameter ``name`` to a control: ``signal`` -> ``read()`` into the parameter
        node; a change of the node -> ``write(value)``."""
        self._bindings.append((name, write))
        widget.connect(signal, lambda *args: self._fromControl(name, read))

    def bindComboData(self, name: str, combo: Any, items, default: Any = None) -> None:
        """A combo box whose items are ``(title, value)``; the parameter is the value."""
        for title, value in items:
            combo.addItem(title, value)
        self.bind(name, combo, "currentIndexChanged(int)",
                  lambda: current_data(combo) if current_data(combo) is not None else "",
                  lambda value: select_data(combo, default if default is not None and not value
                                            else value))

    def bindPath(self, name: str, edit: Any) -> None:
        """A ``ctkPathLineEdit`` for a ``str`` parameter ("" = not chosen)."""
        self.bind(name, edit, "currentPathChanged(QString)",
                  lambda: str(edit.currentPath or ""),
                  lambda value: setattr(edit, "currentPath", value))

    def bindCheckGroup(self, name: str, boxes: dict) -> None:
        """Check boxes ``{value: box}`` for a list parameter: the values of the checked ones."""
        def write(values):
            for value, box in boxes.items():
                box.checked = any(value == v for v in values)

        for box in boxes.values():
            self.bind(name, box, "toggled(bool)",
                      lambda: [v for v, b in boxes.items() if b.checked], write)

    def _fromControl(self, name: str, read: Callable[[], Any]) -> None:
        if self._parameterNode is not None and not self._updatingGUI:
            setattr(self._parameterNode, name, read())

    # --- life cycle ------------------------------------------------------------------------------
    def cleanup(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._timer is not None:
            self._timer.stop()
        self.setParameterNode(None)
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode is not None:
            self._parameterNode.disconnectGui(self._guiTag)
            self._guiTag = None
            self.removeObservers(self.updateGUIFromParameterNode)

    def onSceneStartClose(self, caller, event) -> None:
        if self._task is not None:
            self._task.cancel()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    # --- parameter node -------------------------------------------------------------------------
    def defaultInputs(self, p: Any) -> bool:
        """Fill empty inputs from the scene (first scan, ...); True if ``p`` changed."""
        return False

    def initializeParameterNode(self) -> None:
        p = self.logic.getParameters()
        if self.defaultInputs(p):
            self.logic.setParameters(p)
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, node: Any) -> None:
        """Bind the wrapped parameter node ``node`` to the panel (``connectGui`` plus the
        :meth:`bind` bindings), as Slicer's module template does."""
        import vtk

        if self._parameterNode is not None:
            if self._guiTag is not None:
                self._parameterNode.disconnectGui(self._guiTag)
                self._guiTag = None
            self.removeObservers(self.updateGUIFromParameterNode)
        self._parameterNode = node
        if node is not None:
            self._guiTag = node.connectGui(self.ui)
            self.addObserver(node, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
        self.updateGUIFromParameterNode()

    def updateGUIFromParameterNode(self, caller=None, event=None) -> None:
        if self._parameterNode is None or self._updatingGUI:
            return
        self._updatingGUI = True
        try:
            for name, write in self._bindings:
                write(getattr(self._parameterNode, name))
            p = self.logic.getParameters()
            self.showParameters(p)
            self.updateButtons(p)
        finally:
            self._updatingGUI = False

    def showParameters(self, p: Any) -> None:
        """What else follows the parameters (enabling a control...); nothing by default."""

    # --- input warnings ---------------------------------------------------------------------------
    def showWarnings(self, warnings, what: str = "") -> None:
        """Show a result's input warnings (:mod:`hrpqct.checks`) in the panel's warnings box,
        one coloured line each, and log them; hide the box when there are none."""
        warnings = [str(w) for w in (warnings or ())]
        self.warningsLabel.text = warnings_html(warnings)
        self.warningsCollapsibleButton.text = (f"Warnings ({len(warnings)})" if warnings
                                               else "Warnings")
        self.warningsCollapsibleButton.collapsed = False
        self.warningsCollapsibleButton.visible = bool(warnings)
        for w in warnings:
            log.warning("%s%s", f"{what}: " if what else "", w)

    # --- the background task ----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None

    def startTask(self, start: Callable[[], Any], groups: Optional[tuple] = None) -> None:
        """Check the packages, start the task ``start()`` returns, and poll it."""
        import slicer

        with slicer.util.tryWithErrorDisplay(f"Could not start: {self.TASK_TITLE.lower()}.",
                                             waitCursor=True):
            self.showWarnings(())
            self.logic.ensureDependencies(groups)
            self._task = start()
            self.showStatus(self._task.status)
            self.progressBar.visible = True
            self._timer.start()
        self.updateButtons(self.logic.getParameters())

    def onCancelButton(self, checked=False) -> None:
        self._cancelRequested = True  # read by inProcessProgress (work in Slicer's process)
        if self._task is not None:
            self.statusLabel.text = "Cancelling..."
            self.showStatus(self._task.cancel())
            self.finishTask()

    def onTimer(self) -> None:
        if self._task is None:
            self._timer.stop()
            return
        status = self._task.poll()
        self.showStatus(status)
        if status.finished:
            self.finishTask()

    def showStatus(self, status: Any) -> None:
        self.progressBar.value = int(round(1000 * status.fraction))
        self.progressBar.setFormat(status.text())
        self.statusLabel.text = status.text()

    def finishTask(self) -> None:
        import slicer

        self._timer.stop()
        task, self._task = self._task, None
        status = task.status
        try:
            if status.state == "succeeded":
                with slicer.util.tryWithErrorDisplay("Could not load the results."):
                    self.onTaskSucceeded(task)
            elif status.state == "failed":
                slicer.util.errorDisplay(f"{self.TASK_TITLE} failed: {status.message}",
                                         detailedText=task.job.log_text)
        finally:
            self.progressBar.visible = False
            self.updateButtons(self.logic.getParameters())

    def runInProcess(self, title: str, work: Callable[[Callable], Any],
                     cancelled: str = "Cancelled.") -> Any:
        """Run ``work(progress)`` in Slicer's process (short work, e.g. refine) with the progress
        bar and Cancel; an error goes to an error dialog titled ``title``. Returns the result,
        or None if it failed or was cancelled (then the status says ``cancelled``)."""
        import slicer

        from hrpqct.errors import Cancelled

        self._cancelRequested = False
        self.progressBar.visible = True
        self.cancelButton.enabled = True
        try:
            with slicer.util.tryWithErrorDisplay(title, waitCursor=True):
                self.showWarnings(())
                self.logic.ensureDependencies(("core",))
                try:
                    return work(self.inProcessProgress)
                except Cancelled:
                    self.statusLabel.text = cancelled
            return None
        finally:
            self.progressBar.visible = False
            self.updateButtons(self.logic.getParameters())

    def inProcessProgress(self, done: int, total: int) -> bool:
        """A progress callback for work done in Slicer's process (refine): moves the bar,
        keeps the GUI alive, and returns False once Cancel was pressed."""
        import slicer

        self.progressBar.value = int(1000 * done / max(1, total))
        self.progressBar.setFormat(f"{done} / {total}")
        slicer.app.processEvents()
        return not getattr(self, "_cancelRequested", False)
