"""HRpQCT Segmentation: 3D Slicer module of the HRpQCT extension.

Segments an HR-pQCT scan of the distal tibia into seven regions (tibia and fibula cortical and
trabecular bone, skin, myotendinous and adipose tissue) with a SegFormer model, in a background
process with progress and cancel; loads the segmentation (names, colours, terminology), the
region summary and the per-slice confidence; lists the least confident slices and jumps the
slice views there; re-applies the topology rules and the soft-tissue split to an annotator's
corrections ("Refine"); and exports corrected masks as a training case ("Export for training").

The panel is ``Resources/UI/HRpQCTSeg.ui``, bound by ``slicer.parameterNodeWrapper``'s
``connectGui`` to :class:`hrpqct_slicer.params.SegmentationParameters`; a result's input
warnings are shown in it. :class:`HRpQCTSegLogic` calls the ``hrpqct_slicer`` bridge (tested
headless); docs/slicer-extension.md says what has not yet run inside a real Slicer.

Console examples: README.md, "3D Slicer".
"""

import logging

import slicer
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from hrpqct_slicer import params as P
from hrpqct_slicer.module_base import (ModuleLogicMixin, ModuleWidgetMixin, describe_module,
                                       first_scan, run_module_selftest)

GUI_STATUS = "built; tested against a stub of Slicer's Qt API, not yet run in a real Slicer"

_REFINE_CHOICES = (("Both: topology rules and soft-tissue split", ""),  # (title, value)
                   ("Soft-tissue split only", "split"),
                   ("Topology rules only", "topology"))


# --- HRpQCTSeg -----------------------------------------------------------------------------------
class HRpQCTSeg(ScriptedLoadableModule):
    """Module description; loads the HRpQCT terminology once Slicer has started."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describe_module(self.parent, "HRpQCT Segmentation", (
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
        ), ["Segmentations", "Terminologies"])
        slicer.app.connect("startupCompleted()", self.loadTerminologies)

    def loadTerminologies(self):
        """Make the HRpQCT region terminology available in Segment Editor."""
        from hrpqct_slicer.seg_logic import load_terminologies

        try:
            load_terminologies(slicer.modules.terminologies.logic())
        except Exception as exc:  # noqa: BLE001  never break Slicer's start-up
            logging.warning(f"HRpQCT: terminology not loaded: {exc}")


# --- HRpQCTSegWidget -----------------------------------------------------------------------------
class HRpQCTSegWidget(ModuleWidgetMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel; its buttons call :class:`HRpQCTSegLogic`. Parameter node, background task,
    warnings and scene handling: :class:`hrpqct_slicer.module_base.ModuleWidgetMixin`."""

    TASK_TITLE = "Segmentation"

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.initWidget()
        self._results = None

    # --- building -------------------------------------------------------------------------------
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.logic = HRpQCTSegLogic()
        # the panel: Resources/UI/HRpQCTSeg.ui; its widgets become attributes of the widget;
        # the controls naming a parameter (SlicerParameterName) are bound by connectGui
        self.setupUI()
        # bound here: what the wrapper has no connector for (items with data, str paths)
        self.bindComboData("model", self.modelComboBox,
                           [(m.title + ("" if m.installed else " (not installed)"), m.id)
                            for m in self.logic.models()], default=self.logic.defaultModel())
        self.bindComboData("refine_only", self.refineOnlyComboBox, _REFINE_CHOICES)
        self.bindPath("output_folder", self.outputFolderEdit)
        self.bindPath("export_folder", self.exportFolderEdit)
        self.layout.addStretch(1)
        # actions
        self.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.leastConfidentList.connect("currentRowChanged(int)", self.onReviewSliceSelected)
        self.editButton.connect("clicked(bool)", self.onEditButton)
        self.refineButton.connect("clicked(bool)", self.onRefineButton)
        self.exportButton.connect("clicked(bool)", self.onExportButton)
        self.setupPlumbing()

    def defaultInputs(self, p):
        if p.input_volume is None:
            p.input_volume = first_scan(slicer.mrmlScene)
            return p.input_volume is not None
        return False

    def updateButtons(self, p):
        idle, haveSeg = not self.running, None not in (p.output_segmentation, p.input_volume)
        self.applyButton.enabled = idle and p.input_volume is not None
        self.applyButton.toolTip = ("Segment the input volume in a background process."
                                    if p.input_volume is not None else "Choose an input volume.")
        self.cancelButton.enabled = not idle
        self.refineButton.enabled = idle and haveSeg
        self.editButton.enabled = haveSeg
        self.exportButton.enabled = idle and haveSeg and bool(p.export_folder and p.case_id)

    # --- segmentation ---------------------------------------------------------------------------
    def onApplyButton(self, checked=False):
        self.startTask(lambda: self.logic.startSegmentation(self.logic.getParameters()),
                       ("core", "seg"))

    def onTaskSucceeded(self, task):
        self._results = self.logic.finishSegmentation(task)
        self._showResults(self._results)

    def _showResults(self, results):
        self.showWarnings(results.warnings, "Segmentation")
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
    def onRefineButton(self, checked=False):
        p = self.logic.getParameters()
        result = self.runInProcess("Refine failed.", lambda progress: self.logic.refine(
            p.output_segmentation, p.input_volume, only=p.refine_only or None,
            keepEdits=p.keep_edits, progress=progress),
            cancelled="Refine cancelled; the segmentation is unchanged.")
        if result is not None:
            self.showWarnings(result.warnings, "Refine")
            self.statusLabel.text = (f"Refined: {result.changed_class_voxels} voxels changed "
                                     "between bone, soft tissue and background"
                                     + (f", {result.changed_voxels} changed label"
                                        if result.changed_voxels >= 0 else ""))

    def onExportButton(self, checked=False):
        p = self.logic.getParameters()
        with slicer.util.tryWithErrorDisplay("Export failed.", waitCursor=True):
            self.logic.ensureDependencies(("core",))
            case = self.logic.exportForTraining(
                p.output_segmentation, p.input_volume, p.export_folder, p.case_id,
                subjectId=p.subject_id or None, annotator=p.annotator or None)
            self.statusLabel.text = f"Exported {case.case_id} to {case.folder} ({case.manifest})"


# --- HRpQCTSegLogic ------------------------------------------------------------------------------
class HRpQCTSegLogic(ModuleLogicMixin, ScriptedLoadableModuleLogic):
    """Everything the module does, callable from the Python console without the widget;
    ``scene`` and ``segmentationsLogic`` default to Slicer's (pass others to use another scene).
    """

    PARAMETERS = P.SegmentationParameters
    DEPENDENCY_GROUPS = ("core", "seg")

    def __init__(self, scene=None, segmentationsLogic=None):
        ScriptedLoadableModuleLogic.__init__(self)
        self.initLogic(scene, segmentationsLogic)

    # models and packages
    @staticmethod
    def models():
        """The model catalogue: entries with ``id``, ``title`` and ``installed``."""
        from types import SimpleNamespace

        from hrpqct.seg.model import catalog

        return [SimpleNamespace(id=e.id, title=e.title, default=e.default, entry=e,
                                installed=bool(e.path() is not None and e.path().is_dir()))
                for e in catalog()]

    def defaultModel(self):
        return next((m.id for m in self.models() if m.default), "")


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

        if segmentationNode is None or volumeNode is None or not folder or not caseId:
            raise ValueError("choose the input volume, the corrected segmentation, a training "
                             "folder and a case id")
        return export_for_training(self.scene, self.segmentationsLogic, segmentationNode,
                                   volumeNode, folder, caseId, subject_id=subjectId,
                                   annotator=annotator,
                                   assume_unit=self.getParameters().assume_unit)


# --- HRpQCTSegTest -------------------------------------------------------------------------------
class HRpQCTSegTest(ScriptedLoadableModuleTest):
    """Slicer's self-test ("Reload and Test", the SelfTests module, the ExtensionsIndex CI): the
    extension's logic on a small synthetic scan: segment (bundled demo model, background process)
    -> correct a slice programmatically -> refine -> radiomics -> classify
    (:func:`hrpqct_slicer.selftest.run_selftest`, which also runs in the project's test suite)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_HRpQCTSeg_selftest()

    def test_HRpQCTSeg_selftest(self):
        from hrpqct_slicer.selftest import SELFTEST_STEPS

        result = run_module_selftest(self, HRpQCTSegLogic(), ("core", "seg", "radiomics"),
                                     SELFTEST_STEPS)
        self.assertTrue(result.done)
