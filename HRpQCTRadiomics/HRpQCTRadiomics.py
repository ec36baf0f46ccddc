"""HRpQCT Radiomics: 3D Slicer module of the HRpQCT extension.

Extracts PyRadiomics features per region of a scan and its seven-region segmentation: the paper's
939 two-dimensional features per region and slice averaged over the scan (or the whole-scan 3D
preset, or your own parameter file), for the six regions other than skin and, optionally, the
soft tissue within a distance of the tibia (Table III's bands). The run happens in a background
process with progress and cancel; the per-scan table is shown as a table node (one row per
feature, one column per region) and the slice-level and per-scan tables are written to files.

The widget is thin: it maps controls to :class:`hrpqct_slicer.params.RadiomicsParameters`
(mirrored to the module's parameter node) and calls :class:`HRpQCTRadiomicsLogic`, which calls
``hrpqct_slicer.radiomics_logic`` (tested headless); see docs/slicer-extension.md for what has
and has not been run inside a real Slicer.

Python console::

    import HRpQCTRadiomics
    logic = HRpQCTRadiomics.HRpQCTRadiomicsLogic()
    table = logic.compute(volumeNode, segmentationNode, regions=["MT", "AT"], bands=[10])
"""

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

from hrpqct.method import RADIOMICS
from hrpqct.regions import RADIOMICS_REGIONS, region
from hrpqct_slicer import params as P

GUI_STATUS = "built; tested against a stub of Slicer's Qt API, not yet run in a real Slicer"

_PRESETS = (("paper", "Paper: 939 2D features per slice, averaged"),
            ("3d", "3D: whole-scan features"),
            ("file", "PyRadiomics parameter file..."))
_EXTRA_REGIONS = (("SK", "Skin"), ("ST", "All soft tissue (SK + MT + AT)"))
_STATS = (("mean", "mean (the paper's)"), ("median", "median"), ("sd", "SD"))


#
# HRpQCTRadiomics
#
class HRpQCTRadiomics(ScriptedLoadableModule):
    """Module description."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "HRpQCT Radiomics"
        self.parent.categories = ["HRpQCT"]
        self.parent.dependencies = ["Segmentations"]
        self.parent.contributors = ["HRpQCT developers"]
        self.parent.helpText = (
            "<p>Extracts PyRadiomics features per region from an HR-pQCT scan and its "
            "seven-region segmentation (from HRpQCT Segmentation): the paper's 939 "
            "two-dimensional features per region and slice, averaged over the scan, for the six "
            "regions other than skin, and optionally the soft tissue within a distance of the "
            "tibia.</p><p>Choose the scan, the segmentation, the feature preset and the regions,"
            " press <b>Apply</b>. The extraction runs in a background process (Cancel stops it);"
            " the per-scan table appears as a table node with one row per feature and one column"
            " per region, and the slice-level and per-scan tables are written to files.</p>"
            "<p>Missing Python packages (PyRadiomics, ...) are installed on first use after you "
            "confirm.</p><p>Research use only. See the <a "
            "href='https://github.com/hrpqct/SlicerHRpQCT'>project page</a>.</p>"
        )
        self.parent.acknowledgementText = (
            "Features are computed with PyRadiomics (van Griethuysen et al., Cancer Research "
            "2017). The method follows published work on SegFormer segmentation and radiomics of"
            " HR-pQCT scans of the distal tibia for osteoporosis assessment."
        )


#
# HRpQCTRadiomicsWidget
#
class HRpQCTRadiomicsWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Controls <-> parameter node; Apply/Cancel run :class:`HRpQCTRadiomicsLogic`."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._updatingGUI = False
        self._task = None
        self._timer = None
        self.regionCheckBoxes = {}
        self.bandCheckBoxes = {}
        self.statCheckBoxes = {}

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.logic = HRpQCTRadiomicsLogic()

        box = ctk.ctkCollapsibleButton()
        box.text = "Inputs"
        self.layout.addWidget(box)
        form = qt.QFormLayout(box)
        self.inputVolumeSelector = slicer.qMRMLNodeComboBox()
        self.inputVolumeSelector.nodeTypes = ["vtkMRMLScalarVolumeNode"]
        self.inputVolumeSelector.addEnabled = False
        self.inputVolumeSelector.removeEnabled = False
        self.inputVolumeSelector.noneEnabled = False
        self.inputVolumeSelector.showChildNodeTypes = False
        self.inputVolumeSelector.setMRMLScene(slicer.mrmlScene)
        self.inputVolumeSelector.setToolTip("The HR-pQCT scan (values in HU).")
        form.addRow("Input volume:", self.inputVolumeSelector)
        self.inputSegmentationSelector = slicer.qMRMLNodeComboBox()
        self.inputSegmentationSelector.nodeTypes = ["vtkMRMLSegmentationNode"]
        self.inputSegmentationSelector.addEnabled = False
        self.inputSegmentationSelector.removeEnabled = False
        self.inputSegmentationSelector.noneEnabled = False
        self.inputSegmentationSelector.setMRMLScene(slicer.mrmlScene)
        self.inputSegmentationSelector.setToolTip("The seven-region segmentation of the scan.")
        form.addRow("Segmentation:", self.inputSegmentationSelector)

        box = ctk.ctkCollapsibleButton()
        box.text = "Features and regions"
        self.layout.addWidget(box)
        form = qt.QFormLayout(box)
        self.presetComboBox = qt.QComboBox()
        for key, title in _PRESETS:
            self.presetComboBox.addItem(title, key)
        form.addRow("Preset:", self.presetComboBox)
        self.presetFileEdit = ctk.ctkPathLineEdit()
        self.presetFileEdit.filters = ctk.ctkPathLineEdit.Files
        self.presetFileEdit.nameFilters = ["PyRadiomics parameters (*.yaml *.yml *.json)"]
        self.presetFileEdit.settingKey = "HRpQCTRadiomics/PresetFile"
        form.addRow("Parameter file:", self.presetFileEdit)

        grid = qt.QGridLayout()
        codes = list(RADIOMICS_REGIONS)
        for i, code in enumerate(codes):
            check = qt.QCheckBox(f"{code}  {region(code).name}")
            self.regionCheckBoxes[code] = check
            grid.addWidget(check, i // 2, i % 2)
        for j, (code, title) in enumerate(_EXTRA_REGIONS):
            check = qt.QCheckBox(f"{code}  {title}")
            self.regionCheckBoxes[code] = check
            grid.addWidget(check, (len(codes) + j) // 2, (len(codes) + j) % 2)
        form.addRow("Regions:", grid)
        bands = qt.QHBoxLayout()
        for d in RADIOMICS.ablation_distances_mm:
            check = qt.QCheckBox(f"{d:g} mm")
            check.setToolTip(f"Soft tissue within {d:g} mm of the tibia's outer surface "
                             f"(region ST{d:g}mm).")
            self.bandCheckBoxes[float(d)] = check
            bands.addWidget(check)
        form.addRow("Soft tissue near the tibia:", bands)
        stats = qt.QHBoxLayout()
        for key, title in _STATS:
            check = qt.QCheckBox(title)
            self.statCheckBoxes[key] = check
            stats.addWidget(check)
        form.addRow("Per-scan statistics:", stats)
        self.slicesEdit = qt.QLineEdit()
        self.slicesEdit.placeholderText = "all (or e.g. 0:168:8 for a quick look)"
        form.addRow("Slices:", self.slicesEdit)

        box = ctk.ctkCollapsibleButton()
        box.text = "Outputs"
        self.layout.addWidget(box)
        form = qt.QFormLayout(box)
        self.outputFileEdit = ctk.ctkPathLineEdit()
        self.outputFileEdit.filters = ctk.ctkPathLineEdit.Files | ctk.ctkPathLineEdit.Writable
        self.outputFileEdit.nameFilters = ["Tables (*.csv *.parquet)"]
        self.outputFileEdit.settingKey = "HRpQCTRadiomics/OutputFile"
        self.outputFileEdit.setToolTip("Slice-level table (.csv or .parquet); the per-scan table "
                                       "goes next to it as <name>.patient.<ext>. Empty: a new "
                                       "temporary folder.")
        form.addRow("Feature file:", self.outputFileEdit)
        self.outputTableSelector = slicer.qMRMLNodeComboBox()
        self.outputTableSelector.nodeTypes = ["vtkMRMLTableNode"]
        self.outputTableSelector.addEnabled = True
        self.outputTableSelector.removeEnabled = True
        self.outputTableSelector.renameEnabled = True
        self.outputTableSelector.noneEnabled = True
        self.outputTableSelector.noneDisplay = "Create new table"
        self.outputTableSelector.selectNodeUponCreation = True
        self.outputTableSelector.setMRMLScene(slicer.mrmlScene)
        form.addRow("Output table:", self.outputTableSelector)

        buttons = qt.QHBoxLayout()
        self.applyButton = qt.QPushButton("Apply")
        self.cancelButton = qt.QPushButton("Cancel")
        self.cancelButton.enabled = False
        buttons.addWidget(self.applyButton)
        buttons.addWidget(self.cancelButton)
        form.addRow(buttons)
        self.progressBar = qt.QProgressBar()
        self.progressBar.setRange(0, 1000)
        self.progressBar.visible = False
        form.addRow(self.progressBar)
        self.statusLabel = qt.QLabel("")
        self.statusLabel.wordWrap = True
        form.addRow(self.statusLabel)
        self.layout.addStretch(1)

        for selector in (self.inputVolumeSelector, self.inputSegmentationSelector,
                         self.outputTableSelector):
            selector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateParameterNodeFromGUI)
        self.presetComboBox.connect("currentIndexChanged(int)", self.updateParameterNodeFromGUI)
        for path in (self.presetFileEdit, self.outputFileEdit):
            path.connect("currentPathChanged(QString)", self.updateParameterNodeFromGUI)
        for check in (*self.regionCheckBoxes.values(), *self.bandCheckBoxes.values(),
                      *self.statCheckBoxes.values()):
            check.connect("toggled(bool)", self.updateParameterNodeFromGUI)
        self.slicesEdit.connect("textChanged(QString)", self.updateParameterNodeFromGUI)
        self.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.cancelButton.connect("clicked(bool)", self.onCancelButton)

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
        changed = False
        if p.input_volume is None:
            scene = slicer.mrmlScene
            scans = [scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
                     for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode"))]
            p.input_volume = next((n for n in scans
                                   if not n.IsA("vtkMRMLLabelMapVolumeNode")), None)
            changed = p.input_volume is not None
        if p.input_segmentation is None:
            p.input_segmentation = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSegmentationNode")
            changed = changed or p.input_segmentation is not None
        if changed:
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
            p = P.read_parameters(P.RadiomicsParameters, self._parameterNode)
            self.inputVolumeSelector.setCurrentNode(p.input_volume)
            self.inputSegmentationSelector.setCurrentNode(p.input_segmentation)
            self.outputTableSelector.setCurrentNode(p.output_table)
            index = self.presetComboBox.findData(p.preset)
            if index >= 0:
                self.presetComboBox.currentIndex = index
            self.presetFileEdit.currentPath = p.preset_file
            self.presetFileEdit.enabled = p.preset == "file"
            for code, check in self.regionCheckBoxes.items():
                check.checked = code in p.regions
            for d, check in self.bandCheckBoxes.items():
                check.checked = any(abs(d - float(x)) < 1e-9 for x in p.band_distances_mm)
            for key, check in self.statCheckBoxes.items():
                check.checked = key in p.stats
            self.slicesEdit.text = p.slices
            self.outputFileEdit.currentPath = p.output_file
            running = self._task is not None
            ready = p.input_volume is not None and p.input_segmentation is not None
            self.applyButton.enabled = ready and not running
            self.applyButton.toolTip = ("Extract the features in a background process." if ready
                                        else "Choose the input volume and its segmentation.")
            self.cancelButton.enabled = running
        finally:
            self._updatingGUI = False

    def updateParameterNodeFromGUI(self, *args):
        if self._parameterNode is None or self._updatingGUI:
            return
        old = self.logic.getParameters()
        index = self.presetComboBox.currentIndex
        p = P.RadiomicsParameters(
            input_volume=self.inputVolumeSelector.currentNode(),
            input_segmentation=self.inputSegmentationSelector.currentNode(),
            output_table=self.outputTableSelector.currentNode(),
            preset=self.presetComboBox.itemData(index) if index >= 0 else "paper",
            preset_file=str(self.presetFileEdit.currentPath or ""),
            regions=tuple(c for c, check in self.regionCheckBoxes.items() if check.checked),
            band_distances_mm=tuple(d for d, check in self.bandCheckBoxes.items()
                                    if check.checked),
            stats=tuple(k for k, check in self.statCheckBoxes.items() if check.checked),
            output_file=str(self.outputFileEdit.currentPath or ""),
            assume_unit=old.assume_unit,
            slices=str(self.slicesEdit.text or ""),
        )
        self.logic.setParameters(p)

    # --- running --------------------------------------------------------------------------------
    def onApplyButton(self, checked=False):
        with slicer.util.tryWithErrorDisplay("Could not start the radiomics.", waitCursor=True):
            self.logic.ensureDependencies(("core", "radiomics"))
            self._task = self.logic.startRadiomics(self.logic.getParameters())
            self._showStatus(self._task.status)
            self.progressBar.visible = True
            self._timer.start()
        self.updateGUIFromParameterNode()

    def onCancelButton(self, checked=False):
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
                with slicer.util.tryWithErrorDisplay("Could not load the features."):
                    results = self.logic.finishRadiomics(task)
                    self.statusLabel.text = (f"Done: table {results.table.GetName()!r}; files "
                                             f"{results.slice_file} and {results.patient_file}")
                    self._showTable(results.table)
            elif status.state == "failed":
                slicer.util.errorDisplay(f"Radiomics failed: {status.message}",
                                         detailedText=task.job.log_text)
        finally:
            self.progressBar.visible = False
            self.updateGUIFromParameterNode()

    def _showTable(self, tableNode):
        layoutManager = slicer.app.layoutManager()
        if layoutManager is None:
            return
        layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
        selection = slicer.app.applicationLogic().GetSelectionNode()
        selection.SetActiveTableID(tableNode.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()


#
# HRpQCTRadiomicsLogic
#
class HRpQCTRadiomicsLogic(ScriptedLoadableModuleLogic):
    """Everything the module does, callable from the Python console without the widget."""

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

    def getParameterNode(self):
        return P.parameter_node(self.scene, self.moduleName)

    def getParameters(self):
        """The module's choices as :class:`hrpqct_slicer.params.RadiomicsParameters`."""
        return P.read_parameters(P.RadiomicsParameters, self.getParameterNode())

    def setParameters(self, parameters):
        P.write_parameters(parameters, self.getParameterNode())

    def ensureDependencies(self, groups=("core", "radiomics"), confirm=None, install=None):
        """Install missing packages after asking (:func:`hrpqct_slicer.deps.ensure_packages`)."""
        from hrpqct_slicer.deps import ensure_packages

        confirm = confirm or (lambda text: slicer.util.confirmOkCancelDisplay(
            text, windowTitle="HRpQCT: install Python packages"))
        install = install or slicer.util.pip_install
        return ensure_packages(groups, confirm=confirm, install=install)

    @staticmethod
    def regionNames(parameters):
        """The parameters' regions and distance bands as core region names."""
        from hrpqct_slicer.radiomics_logic import region_names

        return region_names(parameters.regions, parameters.band_distances_mm)

    def startRadiomics(self, parameters):
        """Start a :class:`hrpqct_slicer.radiomics_logic.RadiomicsTask` for ``parameters``."""
        from hrpqct_slicer.radiomics_logic import RadiomicsTask, preset_argument

        if parameters.input_volume is None or parameters.input_segmentation is None:
            raise ValueError("choose the input volume and its segmentation")
        if not parameters.stats:
            raise ValueError("choose at least one per-scan statistic")
        task = RadiomicsTask(self.scene, self.segmentationsLogic, parameters.input_volume,
                             parameters.input_segmentation,
                             preset=preset_argument(parameters.preset, parameters.preset_file),
                             regions=self.regionNames(parameters), stats=parameters.stats,
                             out_file=parameters.output_file or None,
                             slices=parameters.slices or None,
                             assume_unit=parameters.assume_unit)
        task.start()
        return task

    def finishRadiomics(self, task, outputTable=None):
        """Load a finished task's per-scan table into ``outputTable`` (or the parameter node's
        output table, or a new table node, which becomes the output)."""
        p = self.getParameters()
        results = task.load(self.scene, table_node=outputTable or p.output_table)
        p.output_table = results.table
        self.setParameters(p)
        self.lastResults = results
        return results

    def compute(self, volumeNode, segmentationNode, preset="paper", regions=None, bands=(),
                stats=("mean",), outputFile=None, outputTable=None, slices=None,
                progress=None, timeout=None):
        """Features of ``volumeNode`` in the regions of ``segmentationNode`` (blocking; the work
        runs in a background process). ``preset``: "paper", "3d" or a parameter file's path;
        ``bands``: distances (mm) of soft-tissue bands around the tibia. Returns the table node;
        the files are in ``self.lastResults``."""
        from hrpqct_slicer.radiomics_logic import preset_argument, radiomics_of_nodes, region_names

        self.ensureDependencies(("core", "radiomics"))
        names = region_names(regions if regions is not None else RADIOMICS_REGIONS, bands)
        preset = preset if preset in ("paper", "3d") else preset_argument("file", str(preset))
        results = radiomics_of_nodes(self.scene, self.segmentationsLogic, volumeNode,
                                     segmentationNode, preset=preset, regions=names,
                                     stats=tuple(stats), out_file=outputFile, slices=slices,
                                     table_node=outputTable, timeout=timeout, progress=progress,
                                     assume_unit=self.getParameters().assume_unit)
        self.lastResults = results
        return results.table


#
# HRpQCTRadiomicsTest
#
class HRpQCTRadiomicsTest(ScriptedLoadableModuleTest):
    """Slicer's self-test ("Reload and Test", the SelfTests module, the ExtensionsIndex CI):
    PyRadiomics features of one region and slice of a small synthetic scan, from its exact seven-region segmentation, through the background worker. The same function (:func:`hrpqct_slicer.selftest.run_selftest`) runs in the
    project's test suite on slicer-core."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_HRpQCTRadiomics_selftest()

    def test_HRpQCTRadiomics_selftest(self):
        from hrpqct_slicer.selftest import SELFTEST_STEPS, run_selftest  # noqa: F401

        HRpQCTRadiomicsLogic().ensureDependencies(("core", "radiomics"))
        result = run_selftest(slicer.mrmlScene, slicer.modules.segmentations.logic(),
                              steps=("radiomics",), say=self.delayDisplay)
        for step, text in result.done.items():
            self.delayDisplay(f"{step}: {text}")
        for step, why in result.skipped.items():
            self.delayDisplay(f"{step} skipped: {why}")
        self.assertTrue(result.done)
