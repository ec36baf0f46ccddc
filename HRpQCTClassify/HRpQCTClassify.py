"""HRpQCT Classify: 3D Slicer module of the HRpQCT extension.

The module applies a trained classifier (logistic regression and others, on selected radiomics and
clinical features) to estimate osteoporosis (femoral-neck T-score <= -2.5) from a scan.

The panel (``Resources/UI/HRpQCTClassify.ui``: the feature table from HRpQCT Radiomics, a model
folder, Apply) calls ``hrpqct_slicer.classify_logic.classify``: it loads a saved model folder
(empty: the bundled demo classifier, which has only seen synthetic phantoms), predicts for the
scan's features and adds a table (probability per region model and at patient level, threshold,
class) and a bar chart with the decision threshold, shown in the plot view. A model whose preset
or feature names do not match the table is refused with a message in the status line.

Everything testable lives below the widget, in the ``hrpqct`` core package and the
``hrpqct_slicer`` MRML bridge bundled with this extension.
"""

import importlib.util

import slicer
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from hrpqct_slicer import params as P
from hrpqct_slicer.module_base import (ModuleLogicMixin, ModuleWidgetMixin, describe_module,
                                       run_module_selftest)

GUI_STATUS = "built; tested against a stub of Slicer's Qt API, not yet run in a real Slicer"


class HRpQCTClassify(ScriptedLoadableModule):
    """Module description (title, category, help)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describe_module(self.parent, "HRpQCT Classify", (
            "<p>This module applies a trained classifier (logistic regression and others, on "
            "selected radiomics and clinical features) to estimate osteoporosis (femoral-neck "
            "T-score <= -2.5) from a scan.</p><p>Choose the scan's feature table (made by "
            "HRpQCT Radiomics with the six regions) and a model folder (leave it empty for the "
            "bundled demo classifier), then <b>Apply</b>: a table with the probability of "
            "osteoporosis of the patient-level model and of each region model, their decision "
            "thresholds and the class, and a bar chart of the probabilities with the decision "
            "threshold drawn as a line. A model whose radiomics preset or feature names do not "
            "match the table is refused with a message.</p><p><b>The bundled demo classifier has"
            " only seen synthetic phantoms: it is not a clinical model.</b> Train your own with "
            "the <code>hrpqct</code> command-line tool that ships with the extension; see the "
            "<a href='https://github.com/hrpqct/SlicerHRpQCT'>project page</a>.</p>"
        ), [])


# --- HRpQCTClassifyWidget ------------------------------------------------------------------------
class HRpQCTClassifyWidget(ModuleWidgetMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel of ``Resources/UI/HRpQCTClassify.ui``, bound to the parameter node of
    :class:`hrpqct_slicer.params.ClassifyParameters`; Apply calls
    :meth:`HRpQCTClassifyLogic.classify` and shows the chart. A model whose preset or feature
    names do not match raises the core's ``InputError``/``ModelError``, shown in the status line
    (not a traceback in the Python console); the result's warnings go to the warnings box."""

    TASK_TITLE = "Classification"

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.initWidget()
        self.result = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.logic = HRpQCTClassifyLogic()
        self.setupUI()  # the feature table is bound by connectGui (SlicerParameterName)
        self.bindPath("model_folder", self.modelFolderEdit)
        self.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.layout.addStretch(1)
        self.setupPlumbing()

    def updateButtons(self, p):
        self.applyButton.enabled = p.features_table is not None
        if not logicInstalled():
            self.statusLabel.text = ("The classification logic (hrpqct_slicer.classify_logic)"
                                     " is not installed yet.")

    def onApplyButton(self, checked=False):
        from hrpqct.errors import HRpQCTError

        self.showWarnings(())
        if not logicInstalled():
            self.statusLabel.text = ("Cannot classify: the classification logic "
                                     "(hrpqct_slicer.classify_logic) is not installed yet.")
            return
        p = self.logic.getParameters()
        try:
            result = self.logic.classify(p.features_table, p.model_folder or None)
        except HRpQCTError as exc:  # a mismatched model or table: a message, not a traceback
            self.statusLabel.text = f"Cannot classify: {exc}"
            return
        self.result = result
        self.statusLabel.text = f"Done: {result} (table {result.table.GetName()!r})"
        self.showWarnings(result.warnings, "Classification")
        showChart(result.chart)


# --- HRpQCTClassifyLogic -------------------------------------------------------------------------
class HRpQCTClassifyLogic(ModuleLogicMixin, ScriptedLoadableModuleLogic):
    """What the module does, callable from the Python console without the panel."""

    PARAMETERS = P.ClassifyParameters
    DEPENDENCY_GROUPS = ("core",)

    def __init__(self, scene=None, segmentationsLogic=None):
        ScriptedLoadableModuleLogic.__init__(self)
        self.initLogic(scene, segmentationsLogic)

    def classify(self, featuresTable, modelFolder=None, clinical=None):
        """Predict for the per-scan (or slice-level) feature table of HRpQCT Radiomics with a
        saved model folder (``None``: the bundled demo classifier, phantom-trained); returns
        :class:`hrpqct_slicer.classify_logic.ClassifyResults` (table and chart nodes added to
        the scene; ``.warnings``), also kept in ``self.lastResults``."""
        from hrpqct_slicer import classify_logic

        extra = {"clinical": clinical} if clinical else {}
        self.lastResults = classify_logic.classify(self.scene, featuresTable, modelFolder,
                                                   **extra)
        return self.lastResults


def showChart(chart):
    """The chart in the layout's plot view (Slicer's Plots module)."""
    plots = getattr(slicer.modules, "plots", None)
    if plots is not None:
        plots.logic().ShowChartInLayout(chart)


def logicInstalled():
    """True once ``hrpqct_slicer.classify_logic`` exists."""
    return importlib.util.find_spec("hrpqct_slicer.classify_logic") is not None


# --- HRpQCTClassifyTest --------------------------------------------------------------------------
class HRpQCTClassifyTest(ScriptedLoadableModuleTest):
    """Slicer's self-test: the classification step of :func:`hrpqct_slicer.selftest.run_selftest`
    (radiomics of a synthetic scan's six regions on one slice, then the bundled demo
    classifier)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_HRpQCTClassify_selftest()

    def test_HRpQCTClassify_selftest(self):
        result = run_module_selftest(self, HRpQCTClassifyLogic(), (), ("classify",))
        self.assertIn("classify", result.done)
