"""HRpQCT Radiomics: 3D Slicer module of the HRpQCT extension.

Extracts PyRadiomics features per region of a scan and its seven-region segmentation: the paper's
939 two-dimensional features per region and slice averaged over the scan (or the whole-scan 3D
preset, or your own parameter file), for the six regions other than skin and, optionally, the
soft tissue within a distance of the tibia (Table III's bands). The run happens in a background
process with progress and cancel; the per-scan table is shown as a table node (one row per
feature, one column per region) and the slice-level and per-scan tables are written to files.

The widget is thin: its panel is ``Resources/UI/HRpQCTRadiomics.ui``, bound with
``slicer.parameterNodeWrapper``'s ``connectGui`` to the parameter node of
:class:`hrpqct_slicer.params.RadiomicsParameters`; the input warnings of a result are shown in the
panel. It calls :class:`HRpQCTRadiomicsLogic`, which calls
``hrpqct_slicer.radiomics_logic`` (tested headless); see docs/slicer-extension.md for what has
and has not been run inside a real Slicer.

Python console::

    import HRpQCTRadiomics
    logic = HRpQCTRadiomics.HRpQCTRadiomicsLogic()
    table = logic.compute(volumeNode, segmentationNode, regions=["MT", "AT"], bands=[10])
"""

import qt

import slicer
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from hrpqct.method import RADIOMICS
from hrpqct.regions import RADIOMICS_REGIONS, region
from hrpqct_slicer import params as P
from hrpqct_slicer.module_base import (ACKNOWLEDGEMENT, ModuleLogicMixin, ModuleWidgetMixin,
                                       describe_module, first_scan, run_module_selftest)

GUI_STATUS = "built; tested against a stub of Slicer's Qt API, not yet run in a real Slicer"

_PRESETS = (("Paper: 939 2D features per slice, averaged", "paper"),  # (title, value)
            ("3D: whole-scan features", "3d"),
            ("PyRadiomics parameter file...", "file"))
_EXTRA_REGIONS = (("SK", "SK  Skin"),  # (value, title)
                  ("ST", "ST  All soft tissue (SK + MT + AT)"))
_STAT_TITLES = {"mean": "mean (the paper's)", "sd": "SD"}
_STATS = tuple((k, _STAT_TITLES.get(k, k)) for k in P.STAT_CHOICES)


# --- HRpQCTRadiomics -----------------------------------------------------------------------------
class HRpQCTRadiomics(ScriptedLoadableModule):
    """Module description."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describe_module(self.parent, "HRpQCT Radiomics", (
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
        ), ["Segmentations"],
                        "Features are computed with PyRadiomics (van Griethuysen et al., Cancer "
                        "Research 2017). " + ACKNOWLEDGEMENT)


# --- HRpQCTRadiomicsWidget -----------------------------------------------------------------------
class HRpQCTRadiomicsWidget(ModuleWidgetMixin, ScriptedLoadableModuleWidget,
                            VTKObservationMixin):
    """Controls <-> parameter node; Apply/Cancel run :class:`HRpQCTRadiomicsLogic`. The
    parameter node, the background task and scene handling are
    :class:`hrpqct_slicer.module_base.ModuleWidgetMixin`."""

    TASK_TITLE = "Radiomics"

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.initWidget()

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.logic = HRpQCTRadiomicsLogic()
        # the panel: Resources/UI/HRpQCTRadiomics.ui (the scan, segmentation, output table and
        # slices are bound by connectGui through their SlicerParameterName)
        self.setupUI()
        # what the .ui cannot hold: choices from hrpqct.regions / hrpqct.method, and bindings
        # the wrapper has no connector for (items with data, str paths, check-box groups)
        self.bindComboData("preset", self.presetComboBox, _PRESETS)
        self.bindPath("preset_file", self.presetFileEdit)
        self.bindPath("output_file", self.outputFileEdit)
        regions = [(c, f"{c}  {region(c).name}") for c in RADIOMICS_REGIONS] + list(_EXTRA_REGIONS)
        self.regionCheckBoxes = self._checkBoxes(self.regionsWidget, regions, columns=2)
        self.bandCheckBoxes = self._checkBoxes(
            self.bandsWidget, [(float(d), f"{d:g} mm") for d in RADIOMICS.ablation_distances_mm])
        self.statCheckBoxes = self._checkBoxes(self.statsWidget, _STATS)
        self.bindCheckGroup("regions", self.regionCheckBoxes)
        self.bindCheckGroup("band_distances_mm", self.bandCheckBoxes)
        self.bindCheckGroup("stats", self.statCheckBoxes)
        self.layout.addStretch(1)
        self.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.setupPlumbing()

    @staticmethod
    def _checkBoxes(container, items, columns=0):
        """One check box per ``(value, title)`` in ``container``'s layout (a grid of
        ``columns`` columns, else a row); returns ``{value: box}``."""
        boxes = {}
        for i, (value, title) in enumerate(items):
            box = qt.QCheckBox(title)
            if columns:
                container.layout().addWidget(box, i // columns, i % columns)
            else:
                container.layout().addWidget(box)
            boxes[value] = box
        return boxes

    # --- parameter node <-> controls --------------------------------------------------------------
    def defaultInputs(self, p):
        changed = False
        if p.input_volume is None:
            p.input_volume = first_scan(slicer.mrmlScene)
            changed = p.input_volume is not None
        if p.input_segmentation is None:
            p.input_segmentation = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSegmentationNode")
            changed = changed or p.input_segmentation is not None
        return changed

    def showParameters(self, p):
        self.presetFileEdit.enabled = p.preset == "file"

    def updateButtons(self, p):
        running = self.running
        ready = p.input_volume is not None and p.input_segmentation is not None
        self.applyButton.enabled = ready and not running
        self.applyButton.toolTip = ("Extract the features in a background process." if ready
                                    else "Choose the input volume and its segmentation.")
        self.cancelButton.enabled = running

    # --- running --------------------------------------------------------------------------------
    def onApplyButton(self, checked=False):
        self.startTask(lambda: self.logic.startRadiomics(self.logic.getParameters()),
                       ("core", "radiomics"))

    def onTaskSucceeded(self, task):
        results = self.logic.finishRadiomics(task)
        self.showWarnings(results.warnings, "Radiomics")
        self.statusLabel.text = (f"Done: table {results.table.GetName()!r}; files "
                                 f"{results.slice_file} and {results.patient_file}")
        self._showTable(results.table)

    def _showTable(self, tableNode):
        layoutManager = slicer.app.layoutManager()
        if layoutManager is None:
            return
        layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
        selection = slicer.app.applicationLogic().GetSelectionNode()
        selection.SetActiveTableID(tableNode.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()


# --- HRpQCTRadiomicsLogic ------------------------------------------------------------------------
class HRpQCTRadiomicsLogic(ModuleLogicMixin, ScriptedLoadableModuleLogic):
    """Everything the module does, callable from the Python console without the widget."""

    PARAMETERS = P.RadiomicsParameters
    DEPENDENCY_GROUPS = ("core", "radiomics")

    def __init__(self, scene=None, segmentationsLogic=None):
        ScriptedLoadableModuleLogic.__init__(self)
        self.initLogic(scene, segmentationsLogic)

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


# --- HRpQCTRadiomicsTest -------------------------------------------------------------------------
class HRpQCTRadiomicsTest(ScriptedLoadableModuleTest):
    """Slicer's self-test ("Reload and Test", the SelfTests module, the ExtensionsIndex CI):
    PyRadiomics features of one region and slice of a small synthetic scan, from its exact
    seven-region segmentation, through the background worker. The same function
    (:func:`hrpqct_slicer.selftest.run_selftest`) runs in the project's test suite."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_HRpQCTRadiomics_selftest()

    def test_HRpQCTRadiomics_selftest(self):
        result = run_module_selftest(self, HRpQCTRadiomicsLogic(), ("core", "radiomics"),
                                     ("radiomics",))
        self.assertTrue(result.done)
