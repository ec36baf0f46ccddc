"""HRpQCT Segmentation: 3D Slicer module of the HRpQCT extension.

Segments an HR-pQCT scan of the distal tibia into seven regions (tibia and fibula cortical and
trabecular bone, skin, myotendinous and adipose tissue) with a SegFormer model, in a background
process with progress and cancel; loads the segmentation (names, colours, terminology), the
region summary and the per-slice confidence; lists the least confident slices and jumps the
slice views there; re-applies the topology rules and the soft-tissue split to an annotator's
corrections ("Refine"); and exports corrected masks as a training case ("Export for training").

The widget is thin: it maps controls to :class:`hrpqct_slicer.params.SegmentationParameters`
(mirrored to the module's parameter node) and calls :class:`HRpQCTSegLogic`, which calls the
``hrpqct_slicer`` bridge (tested headless on the MRML library); see docs/slicer-extension.md
for what has and has not been run inside a real Slicer.

Python console::

    import HRpQCTSeg
    logic = HRpQCTSeg.HRpQCTSegLogic()
    seg = logic.segment(volumeNode, model="demo-synthetic", device="cpu")
    logic.refine(seg, volumeNode)                     # after correcting in Segment Editor
    logic.exportForTraining(seg, volumeNode, "/data/hrpqct-train", "case01")
"""

import logging

import ctk
import qt
import vtk

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from hrpqct_slicer import params as P

GUI_STATUS = "built; tested against a stub of Slicer's Qt API, not yet run in a real Slicer"

_REFINE_CHOICES = (("", "Both: topology rules and soft-tissue split"),
                   ("split", "Soft-tissue split only"),
                   ("topology", "Topology rules only"))


#
# HRpQCTSeg
#
class HRpQCTSeg(ScriptedLoadableModule):
    """Module description; loads the HRpQCT terminology once Slicer has started."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "HRpQCT Segmentation"
        self.parent.categories = ["HRpQCT"]
        self.parent.dependencies = ["Segmentations", "Terminologies"]
        self.parent.contributors = ["HRpQCT developers"]
        self.parent.helpText = (
            "<p>Segments an HR-pQCT scan of the distal tibia into seven regions: tibia and fibula"
            " cortical and trabecular bone, skin, myotendinous and adipose tissue (SegFormer, "
            "topology rules, soft-tissue split).</p><p>Choose the scan and a model, press "
            "<b>Apply</b>. The segmentation runs in a background process (Cancel stops it); the"
            " result is loaded with the region summary and the confidence per slice. Review the "
            "least confident slices first, correct the regions in Segment Editor, press "
            "<b>Refine</b> to re-apply the topology rules and the soft-tissue split to your "
            "edits, and <b>Export for training</b> to add the corrected case to a training set "
            "for <code>hrpqct train-seg</code>.</p><p>Missing Python packages (PyTorch, "
            "transformers, ...) are installed on first use after you confirm.</p><p>Research "
            "use only. See the <a href='https://github.com/hrpqct/SlicerHRpQCT'>project "
            "page</a>.</p>"
        )
        self.parent.acknowledgementText = (
            "The method follows published work on SegFormer segmentation and radiomics of HR-pQCT"
            " scans of the distal tibia for osteoporosis assessment. Region terminology uses "
            "DICOM PS3.16 / SNOMED CT codes, with sources in Resources/README.md of the "
            "extension."
        )
        slicer.app.connect("startupCompleted()", self.loadTerminologies)

    def loadTerminologies(self):
        """Make the HRpQCT region terminology available in Segment Editor."""
        from hrpqct_slicer.seg_logic import load_terminologies

        try:
            load_terminologies(slicer.modules.terminologies.logic())
        except Exception as exc:  # noqa: BLE001  never break Slicer's start-up
            logging.warning(f"HRpQCT: terminology not loaded: {exc}")


#
# HRpQCTSegWidget
#
class HRpQCTSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Controls <-> parameter node; buttons call :class:`HRpQCTSegLogic`."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._updatingGUI = False
        self._task = None
        self._results = None
        self._cancelRequested = False
        self._timer = None

    # --- building -------------------------------------------------------------------------------
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.logic = HRpQCTSegLogic()

        # Segmentation
        box = ctk.ctkCollapsibleButton()
        box.text = "Segmentation"
        self.layout.addWidget(box)
        form = qt.QFormLayout(box)

        self.inputVolumeSelector = slicer.qMRMLNodeComboBox()
        self.inputVolumeSelector.nodeTypes = ["vtkMRMLScalarVolumeNode"]
        self.inputVolumeSelector.selectNodeUponCreation = True
        self.inputVolumeSelector.addEnabled = False
        self.inputVolumeSelector.removeEnabled = False
        self.inputVolumeSelector.noneEnabled = False
        self.inputVolumeSelector.showHidden = False
        self.inputVolumeSelector.showChildNodeTypes = False
        self.inputVolumeSelector.setMRMLScene(slicer.mrmlScene)
        self.inputVolumeSelector.setToolTip("The HR-pQCT scan (values in HU).")
        form.addRow("Input volume:", self.inputVolumeSelector)

        self.modelComboBox = qt.QComboBox()
        for entry in self.logic.models():
            title = entry.title + ("" if entry.installed else " (not installed)")
            self.modelComboBox.addItem(title, entry.id)
        self.modelComboBox.setToolTip("Model from the catalogue (Resources/models/catalog.json)."
                                      " Models are never downloaded.")
        form.addRow("Model:", self.modelComboBox)

        self.deviceComboBox = qt.QComboBox()
        for device in P.DEVICES:
            self.deviceComboBox.addItem(device, device)
        self.deviceComboBox.setToolTip("auto: CUDA, then Apple MPS, then the CPU.")
        form.addRow("Device:", self.deviceComboBox)

        self.fastCpuCheckBox = qt.QCheckBox("Fast CPU path (same labels)")
        form.addRow(self.fastCpuCheckBox)

        self.batchSizeSpinBox = qt.QSpinBox()
        self.batchSizeSpinBox.minimum = 0
        self.batchSizeSpinBox.maximum = 64
        self.batchSizeSpinBox.specialValueText = "automatic"
        form.addRow("Slices per batch:", self.batchSizeSpinBox)

        self.outputSegmentationSelector = slicer.qMRMLNodeComboBox()
        self.outputSegmentationSelector.nodeTypes = ["vtkMRMLSegmentationNode"]
        self.outputSegmentationSelector.selectNodeUponCreation = True
        self.outputSegmentationSelector.addEnabled = True
        self.outputSegmentationSelector.removeEnabled = True
        self.outputSegmentationSelector.renameEnabled = True
        self.outputSegmentationSelector.noneEnabled = True
        self.outputSegmentationSelector.noneDisplay = "Create new segmentation"
        self.outputSegmentationSelector.showHidden = False
        self.outputSegmentationSelector.setMRMLScene(slicer.mrmlScene)
        form.addRow("Output segmentation:", self.outputSegmentationSelector)

        self.outputFolderEdit = ctk.ctkPathLineEdit()
        self.outputFolderEdit.filters = ctk.ctkPathLineEdit.Dirs
        self.outputFolderEdit.settingKey = "HRpQCTSeg/OutputFolder"
        self.outputFolderEdit.setToolTip("Where the files go (.seg.nrrd, label map, confidence, "
                                         "summary, pictures). Empty: a new temporary folder.")
        form.addRow("Output folder:", self.outputFolderEdit)

        buttons = qt.QHBoxLayout()
        self.applyButton = qt.QPushButton("Apply")
        self.applyButton.toolTip = "Segment the input volume in a background process."
        self.cancelButton = qt.QPushButton("Cancel")
        self.cancelButton.enabled = False
        buttons.addWidget(self.applyButton)
        buttons.addWidget(self.cancelButton)
        form.addRow(buttons)

        self.progressBar = qt.QProgressBar()
        self.progressBar.setRange(0, 1000)
        self.progressBar.value = 0
        self.progressBar.visible = False
        form.addRow(self.progressBar)
        self.statusLabel = qt.QLabel("")
        self.statusLabel.wordWrap = True
        form.addRow(self.statusLabel)

        # Review
        box = ctk.ctkCollapsibleButton()
        box.text = "Review"
        self.layout.addWidget(box)
        form = qt.QFormLayout(box)
        self.reviewSlicesSpinBox = qt.QSpinBox()
        self.reviewSlicesSpinBox.minimum = 1
        self.reviewSlicesSpinBox.maximum = 200
        form.addRow("Slices to list:", self.reviewSlicesSpinBox)
        self.leastConfidentList = qt.QListWidget()
        self.leastConfidentList.setToolTip("Least confident slices first; click one to show it.")
        form.addRow("Least confident:", self.leastConfidentList)
        self.editButton = qt.QPushButton("Correct in Segment Editor")
        self.editButton.enabled = False
        form.addRow(self.editButton)

        # Refine
        box = ctk.ctkCollapsibleButton()
        box.text = "Refine"
        box.collapsed = True
        self.layout.addWidget(box)
        form = qt.QFormLayout(box)
        self.refineOnlyComboBox = qt.QComboBox()
        for key, title in _REFINE_CHOICES:
            self.refineOnlyComboBox.addItem(title, key)
        form.addRow("Re-apply:", self.refineOnlyComboBox)
        self.keepEditsCheckBox = qt.QCheckBox("Keep hand-painted myotendinous / adipose tissue")
        form.addRow(self.keepEditsCheckBox)
        self.refineButton = qt.QPushButton("Refine")
        self.refineButton.toolTip = ("Re-apply the topology rules and/or the soft-tissue split "
                                     "to the edited output segmentation.")
        form.addRow(self.refineButton)

        # Export for training
        box = ctk.ctkCollapsibleButton()
        box.text = "Export for training"
        box.collapsed = True
        self.layout.addWidget(box)
        form = qt.QFormLayout(box)
        self.exportFolderEdit = ctk.ctkPathLineEdit()
        self.exportFolderEdit.filters = ctk.ctkPathLineEdit.Dirs
        self.exportFolderEdit.settingKey = "HRpQCTSeg/ExportFolder"
        form.addRow("Training folder:", self.exportFolderEdit)
        self.caseIdEdit = qt.QLineEdit()
        self.caseIdEdit.placeholderText = "e.g. case001 (exporting it again replaces it)"
        form.addRow("Case id:", self.caseIdEdit)
        self.subjectIdEdit = qt.QLineEdit()
        self.subjectIdEdit.placeholderText = "patient id (default: the case id)"
        form.addRow("Subject id:", self.subjectIdEdit)
        self.annotatorEdit = qt.QLineEdit()
        self.annotatorEdit.placeholderText = "your name (default: the system user)"
        form.addRow("Annotator:", self.annotatorEdit)
        self.exportButton = qt.QPushButton("Export for training")
        form.addRow(self.exportButton)

        self.layout.addStretch(1)

        # connections: controls -> parameter node
        for selector in (self.inputVolumeSelector, self.outputSegmentationSelector):
            selector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateParameterNodeFromGUI)
        for combo in (self.modelComboBox, self.deviceComboBox, self.refineOnlyComboBox):
            combo.connect("currentIndexChanged(int)", self.updateParameterNodeFromGUI)
        for check in (self.fastCpuCheckBox, self.keepEditsCheckBox):
            check.connect("toggled(bool)", self.updateParameterNodeFromGUI)
        for spin in (self.batchSizeSpinBox, self.reviewSlicesSpinBox):
            spin.connect("valueChanged(int)", self.updateParameterNodeFromGUI)
        for path in (self.outputFolderEdit, self.exportFolderEdit):
            path.connect("currentPathChanged(QString)", self.updateParameterNodeFromGUI)
        for edit in (self.caseIdEdit, self.subjectIdEdit, self.annotatorEdit):
            edit.connect("textChanged(QString)", self.updateParameterNodeFromGUI)
        # actions
        self.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.leastConfidentList.connect("currentRowChanged(int)", self.onReviewSliceSelected)
        self.editButton.connect("clicked(bool)", self.onEditButton)
        self.refineButton.connect("clicked(bool)", self.onRefineButton)
        self.exportButton.connect("clicked(bool)", self.onExportButton)

        self._timer = qt.QTimer()
        self._timer.setInterval(250)
        self._timer.connect("timeout()", self.onTimer)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()

    def cleanup(self):
        if self._task is not None:
            self._task.cancel()
        if self._timer is not None:
            self._timer.stop()
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        if self._parameterNode is not None:
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent,
                                self.updateGUIFromParameterNode)

    def onSceneStartClose(self, caller, event):
        if self._task is not None:
            self._task.cancel()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    # --- parameter node -------------------------------------------------------------------------
    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        p = self.logic.getParameters()
        if p.input_volume is None:
            first = _firstScan(slicer.mrmlScene)
            if first is not None:
                p.input_volume = first
                self.logic.setParameters(p)

    def setParameterNode(self, node):
        if self._parameterNode is not None:
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent,
                                self.updateGUIFromParameterNode)
        self._parameterNode = node
        if node is not None:
            self.addObserver(node, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
        self.updateGUIFromParameterNode()

    def updateGUIFromParameterNode(self, caller=None, event=None):
        if self._parameterNode is None or self._updatingGUI:
            return
        self._updatingGUI = True
        try:
            p = P.read_parameters(P.SegmentationParameters, self._parameterNode)
            self.inputVolumeSelector.setCurrentNode(p.input_volume)
            self.outputSegmentationSelector.setCurrentNode(p.output_segmentation)
            _selectData(self.modelComboBox, p.model or self.logic.defaultModel())
            _selectData(self.deviceComboBox, p.device)
            self.fastCpuCheckBox.checked = p.fast_cpu
            self.batchSizeSpinBox.value = p.batch_size
            self.outputFolderEdit.currentPath = p.output_folder
            self.reviewSlicesSpinBox.value = p.review_slices
            _selectData(self.refineOnlyComboBox, p.refine_only)
            self.keepEditsCheckBox.checked = p.keep_edits
            self.exportFolderEdit.currentPath = p.export_folder
            self.caseIdEdit.text = p.case_id
            self.subjectIdEdit.text = p.subject_id
            self.annotatorEdit.text = p.annotator
            self._updateButtons(p)
        finally:
            self._updatingGUI = False

    def updateParameterNodeFromGUI(self, *args):
        if self._parameterNode is None or self._updatingGUI:
            return
        p = P.SegmentationParameters(
            input_volume=self.inputVolumeSelector.currentNode(),
            output_segmentation=self.outputSegmentationSelector.currentNode(),
            model=_currentData(self.modelComboBox) or "",
            device=_currentData(self.deviceComboBox) or "auto",
            fast_cpu=bool(self.fastCpuCheckBox.checked),
            batch_size=int(self.batchSizeSpinBox.value),
            output_folder=str(self.outputFolderEdit.currentPath or ""),
            review_slices=int(self.reviewSlicesSpinBox.value),
            refine_only=_currentData(self.refineOnlyComboBox) or "",
            keep_edits=bool(self.keepEditsCheckBox.checked),
            export_folder=str(self.exportFolderEdit.currentPath or ""),
            case_id=str(self.caseIdEdit.text or ""),
            subject_id=str(self.subjectIdEdit.text or ""),
            annotator=str(self.annotatorEdit.text or ""),
        )
        p.assume_unit = self.logic.getParameters().assume_unit
        self.logic.setParameters(p)

    def _updateButtons(self, p=None):
        p = p or self.logic.getParameters()
        running = self._task is not None
        haveSeg = p.output_segmentation is not None and p.input_volume is not None
        self.applyButton.enabled = (not running) and p.input_volume is not None
        self.applyButton.toolTip = ("Segment the input volume in a background process."
                                    if p.input_volume is not None else "Choose an input volume.")
        self.cancelButton.enabled = running
        self.refineButton.enabled = (not running) and haveSeg
        self.editButton.enabled = haveSeg
        self.exportButton.enabled = (not running) and haveSeg and bool(p.export_folder) and bool(
            p.case_id)

    # --- segmentation ---------------------------------------------------------------------------
    def onApplyButton(self, checked=False):
        with slicer.util.tryWithErrorDisplay("Could not start the segmentation.", waitCursor=True):
            self.logic.ensureDependencies(("core", "seg"))
            self._task = self.logic.startSegmentation(self.logic.getParameters())
            self._showStatus(self._task.status)
            self.progressBar.visible = True
            self._timer.start()
        self._updateButtons()

    def onCancelButton(self, checked=False):
        self._cancelRequested = True
        if self._task is not None:
            self.statusLabel.text = "Cancelling..."
            self._showStatus(self._task.cancel())
            self._finishRun()

    def onTimer(self):
        if self._task is None:
            self._timer.stop()
            return
        status = self._task.poll()
        self._showStatus(status)
        if status.finished:
            self._finishRun()

    def _showStatus(self, status):
        self.progressBar.value = int(round(1000 * status.fraction))
        self.progressBar.setFormat(status.text())
        self.statusLabel.text = status.text()

    def _finishRun(self):
        self._timer.stop()
        task, self._task = self._task, None
        status = task.status
        try:
            if status.state == "succeeded":
                with slicer.util.tryWithErrorDisplay("Could not load the results."):
                    self._results = self.logic.finishSegmentation(task)
                    self._showResults(self._results)
            elif status.state == "failed":
                slicer.util.errorDisplay(f"Segmentation failed: {status.message}",
                                         detailedText=task.job.log_text)
        finally:
            self.progressBar.visible = False
            self._updateButtons()

    def _showResults(self, results):
        p = self.logic.getParameters()
        slicer.util.setSliceViewerLayers(background=p.input_volume, fit=True)
        self.leastConfidentList.clear()
        for k in results.least_confident:
            self.leastConfidentList.addItem(f"slice {k}")
        self.statusLabel.text = (f"Done: {results.segmentation.GetName()!r}; files in "
                                 f"{results.folder}")
        layoutManager = slicer.app.layoutManager()
        if layoutManager is not None:
            slicer.modules.plots.logic().ShowChartInLayout(results.confidence.chart)

    def onReviewSliceSelected(self, row):
        if self._results is None or not 0 <= row < len(self._results.least_confident):
            return
        p = self.logic.getParameters()
        if p.input_volume is not None:
            self.logic.jumpToSlice(p.input_volume, self._results.least_confident[row])

    def onEditButton(self, checked=False):
        p = self.logic.getParameters()
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
        editor.setSegmentationNode(p.output_segmentation)
        editor.setSourceVolumeNode(p.input_volume)

    # --- refine and export ----------------------------------------------------------------------
    def _inProcessProgress(self, done, total):
        self.progressBar.value = int(1000 * done / max(1, total))
        self.progressBar.setFormat(f"{done} / {total}")
        slicer.app.processEvents()
        return not self._cancelRequested

    def onRefineButton(self, checked=False):
        p = self.logic.getParameters()
        self._cancelRequested = False
        self.progressBar.visible = True
        self.cancelButton.enabled = True
        from hrpqct.errors import Cancelled

        try:
            with slicer.util.tryWithErrorDisplay("Refine failed.", waitCursor=True):
                self.logic.ensureDependencies(("core",))
                try:
                    result = self.logic.refine(p.output_segmentation, p.input_volume,
                                               only=p.refine_only or None,
                                               keepEdits=p.keep_edits,
                                               progress=self._inProcessProgress)
                except Cancelled:
                    self.statusLabel.text = "Refine cancelled; the segmentation is unchanged."
                    return
                self.statusLabel.text = (f"Refined: {result.changed_class_voxels} voxels changed "
                                         "between bone, soft tissue and background"
                                         + (f", {result.changed_voxels} changed label"
                                            if result.changed_voxels >= 0 else ""))
        finally:
            self.progressBar.visible = False
            self._updateButtons()

    def onExportButton(self, checked=False):
        p = self.logic.getParameters()
        with slicer.util.tryWithErrorDisplay("Export failed.", waitCursor=True):
            self.logic.ensureDependencies(("core",))
            case = self.logic.exportForTraining(
                p.output_segmentation, p.input_volume, p.export_folder, p.case_id,
                subjectId=p.subject_id or None, annotator=p.annotator or None)
            self.statusLabel.text = f"Exported {case.case_id} to {case.folder} ({case.manifest})"


def _firstScan(scene):
    """The first scalar volume that is not a label map (label maps are scalar volumes too)."""
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
        if not node.IsA("vtkMRMLLabelMapVolumeNode"):
            return node
    return None


def _selectData(combo, value):
    index = combo.findData(value)
    if index >= 0:
        combo.currentIndex = index


def _currentData(combo):
    index = combo.currentIndex
    return combo.itemData(index) if index >= 0 else None


#
# HRpQCTSegLogic
#
class HRpQCTSegLogic(ScriptedLoadableModuleLogic):
    """Everything the module does, callable from the Python console without the widget.

    ``scene`` and ``segmentationsLogic`` default to Slicer's (``slicer.mrmlScene``,
    ``slicer.modules.segmentations.logic()``); pass them to use another scene.
    """

    def __init__(self, scene=None, segmentationsLogic=None):
        ScriptedLoadableModuleLogic.__init__(self)
        self._scene = scene
        self._segmentationsLogic = segmentationsLogic
        self.lastResults = None

    @property
    def scene(self):
        return self._scene if self._scene is not None else slicer.mrmlScene

    @property
    def segmentationsLogic(self):
        if self._segmentationsLogic is None:
            modules = getattr(slicer, "modules", None)
            if modules is not None and hasattr(modules, "segmentations"):
                self._segmentationsLogic = modules.segmentations.logic()
            else:
                from hrpqct_slicer.segmentations import segmentations_logic

                self._segmentationsLogic = segmentations_logic(self.scene)
        return self._segmentationsLogic

    # parameters
    def getParameterNode(self):
        return P.parameter_node(self.scene, self.moduleName)

    def getParameters(self):
        """The module's choices as :class:`hrpqct_slicer.params.SegmentationParameters`."""
        return P.read_parameters(P.SegmentationParameters, self.getParameterNode())

    def setParameters(self, parameters):
        P.write_parameters(parameters, self.getParameterNode())

    # models and packages
    @staticmethod
    def models():
        """The model catalogue: entries with ``id``, ``title`` and ``installed``."""
        from types import SimpleNamespace

        from hrpqct.seg.model import catalog

        out = []
        for e in catalog():
            path = e.path()
            out.append(SimpleNamespace(id=e.id, title=e.title, default=e.default,
                                       installed=bool(path is not None and path.is_dir()),
                                       entry=e))
        return out

    def defaultModel(self):
        return next((m.id for m in self.models() if m.default), "")

    def ensureDependencies(self, groups=("core", "seg"), confirm=None, install=None):
        """Install missing packages after asking (:func:`hrpqct_slicer.deps.ensure_packages`)."""
        from hrpqct_slicer.deps import ensure_packages

        confirm = confirm or (lambda text: slicer.util.confirmOkCancelDisplay(
            text, windowTitle="HRpQCT: install Python packages"))
        install = install or slicer.util.pip_install
        return ensure_packages(groups, confirm=confirm, install=install)

    # segmentation
    def startSegmentation(self, parameters):
        """Start a :class:`hrpqct_slicer.seg_logic.SegmentationTask` for ``parameters``."""
        from hrpqct_slicer.seg_logic import SegmentationTask

        if parameters.input_volume is None:
            raise ValueError("choose an input volume")
        task = SegmentationTask(parameters.input_volume, model=parameters.model or None,
                                device=parameters.device, fast_cpu=parameters.fast_cpu,
                                batch_size=parameters.batch_size or None,
                                out_dir=parameters.output_folder or None,
                                assume_unit=parameters.assume_unit)
        task.start()
        return task

    def finishSegmentation(self, task, outputSegmentation=None, reviewSlices=None):
        """Load a finished task's results; the segmentation goes into ``outputSegmentation`` (or
        the parameter node's output, or a new node, which becomes the output)."""
        p = self.getParameters()
        target = outputSegmentation or p.output_segmentation
        results = task.load(self.scene, self.segmentationsLogic, segmentation_node=target,
                            review_slices=reviewSlices or p.review_slices)
        p.output_segmentation = results.segmentation
        self.setParameters(p)
        self.lastResults = results
        return results

    def segment(self, volumeNode, model=None, device="auto", fastCpu=True, batchSize=None,
                outputSegmentation=None, outputFolder=None, reviewSlices=10, progress=None,
                timeout=None):
        """Segment ``volumeNode`` (blocking; the work runs in a background process) and return
        the segmentation node. ``progress(status)`` is called as it runs; returning False
        cancels. The full results are in ``self.lastResults``."""
        from hrpqct_slicer.seg_logic import segment_volume_node

        self.ensureDependencies(("core", "seg"))
        results = segment_volume_node(
            self.scene, self.segmentationsLogic, volumeNode, model=model, device=device,
            fast_cpu=fastCpu, batch_size=batchSize, out_dir=outputFolder,
            segmentation_node=outputSegmentation, review_slices=reviewSlices, timeout=timeout,
            progress=progress, assume_unit=self.getParameters().assume_unit)
        self.lastResults = results
        return results.segmentation

    # review, refine, export
    def leastConfidentSlices(self):
        return list(self.lastResults.least_confident) if self.lastResults else []

    def jumpToSlice(self, volumeNode, k):
        """Centre the slice views on slice ``k`` of ``volumeNode``; returns the RAS point."""
        from hrpqct_slicer.seg_logic import jump_to_slice

        return jump_to_slice(self.scene, volumeNode, k)

    def refine(self, segmentationNode, volumeNode, only=None, keepEdits=True, progress=None):
        """Re-apply the topology rules and/or the soft-tissue split to the edited segmentation
        (in place); returns a :class:`hrpqct_slicer.seg_logic.RefineResult`."""
        from hrpqct_slicer.seg_logic import refine_segmentation

        if segmentationNode is None or volumeNode is None:
            raise ValueError("choose the input volume and the segmentation to refine")
        return refine_segmentation(self.scene, self.segmentationsLogic, segmentationNode,
                                   volumeNode, only=only, keep_edits=keepEdits,
                                   assume_unit=self.getParameters().assume_unit,
                                   progress=progress)

    def exportForTraining(self, segmentationNode, volumeNode, folder, caseId, subjectId=None,
                          annotator=None):
        """Add the corrected case to a training folder for ``hrpqct train-seg``."""
        from hrpqct_slicer.seg_logic import export_for_training

        if segmentationNode is None or volumeNode is None:
            raise ValueError("choose the input volume and the corrected segmentation")
        if not folder or not caseId:
            raise ValueError("choose a training folder and a case id")
        return export_for_training(self.scene, self.segmentationsLogic, segmentationNode,
                                   volumeNode, folder, caseId, subject_id=subjectId,
                                   annotator=annotator,
                                   assume_unit=self.getParameters().assume_unit)


#
# HRpQCTSegTest
#
class HRpQCTSegTest(ScriptedLoadableModuleTest):
    """Slicer's self-test ("Reload and Test", the SelfTests module, the ExtensionsIndex CI):
    the whole extension's logic on a small synthetic scan: segment (bundled demo model, background process) -> correct a slice programmatically -> refine -> radiomics -> classify (when the classification logic is installed). The same function (:func:`hrpqct_slicer.selftest.run_selftest`) runs in the
    project's test suite on slicer-core."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_HRpQCTSeg_selftest()

    def test_HRpQCTSeg_selftest(self):
        from hrpqct_slicer.selftest import SELFTEST_STEPS, run_selftest  # noqa: F401

        HRpQCTSegLogic().ensureDependencies(("core", "seg", "radiomics"))
        result = run_selftest(slicer.mrmlScene, slicer.modules.segmentations.logic(),
                              steps=SELFTEST_STEPS, say=self.delayDisplay)
        for step, text in result.done.items():
            self.delayDisplay(f"{step}: {text}")
        for step, why in result.skipped.items():
            self.delayDisplay(f"{step} skipped: {why}")
        self.assertTrue(result.done)
