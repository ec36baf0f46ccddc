"""HRpQCT Classify: 3D Slicer module of the HRpQCT extension.

The module applies a trained classifier (logistic regression and others, on selected radiomics and
clinical features) to estimate osteoporosis (femoral-neck T-score <= -2.5) from a scan.

STATUS: the panel (``Resources/UI/HRpQCTClassify.ui``: the feature table, a model folder, Apply)
is built, but the classification logic it calls (``hrpqct_slicer.classify_logic``) is
NOT BUILT YET (it is being written with the classification models): until it is installed,
Apply says so in the panel. Planned: load a saved model folder or the bundled demo model, predict for the scan's
features, and show the probability per region model and at patient level with the decision
threshold, as a table and a plot.

Everything testable lives below the widget, in the ``hrpqct`` core package and the
``hrpqct_slicer`` MRML bridge bundled with this extension.
"""

import importlib.util

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

GUI_STATUS = "panel built; classification logic not built yet"


class HRpQCTClassify(ScriptedLoadableModule):
    """Module description (title, category, help)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "HRpQCT Classify"
        self.parent.categories = ["HRpQCT"]
        self.parent.dependencies = []
        self.parent.contributors = ["HRpQCT developers"]
        self.parent.helpText = (
            "<p>This module applies a trained classifier (logistic regression and others, on "
            "selected radiomics and clinical features) to estimate osteoporosis (femoral-neck "
            "T-score <= -2.5) from a scan.</p><p><b>The classification logic of this module is not "
            "built yet</b>: the panel (feature table, model folder, Apply) is there, and Apply "
            "says so until the logic is installed. Planned: load a saved model folder or the "
            "bundled demo model, predict for the scan's features (from HRpQCT Radiomics), and show"
            " the probability per region model and at patient level with the decision threshold"
            " and the class.</p><p>Until "
            "then use the <code>hrpqct</code> command-line tool and Python package that ship with"
            " the extension; see the <a href='https://github.com/hrpqct/SlicerHRpQCT'>project "
            "page</a>.</p>"
        )
        self.parent.acknowledgementText = (
            "The method follows published work on SegFormer segmentation and radiomics of HR-pQCT"
            " scans of the distal tibia for osteoporosis assessment. Region terminology uses "
            "DICOM PS3.16 / SNOMED CT codes, with sources in Resources/README.md of the "
            "extension."
        )


#
# HRpQCTClassifyWidget
#
class HRpQCTClassifyWidget(ScriptedLoadableModuleWidget):
    """The panel of ``Resources/UI/HRpQCTClassify.ui``; Apply calls
    ``hrpqct_slicer.classify_logic.classify(scene, features_table, model_folder)`` (written with
    the classification models; until it exists Apply says so). A model whose preset or feature
    names do not match raises the core's ``InputError``/``ModelError``, shown in the status line
    (not a traceback in the Python console)."""

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/HRpQCTClassify.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.ui.featuresSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateButtons)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.layout.addStretch(1)
        self.updateButtons()

    def updateButtons(self, *args):
        ready = self.ui.featuresSelector.currentNode() is not None
        self.ui.applyButton.enabled = ready
        if not logicInstalled():
            self.ui.statusLabel.text = ("The classification logic (hrpqct_slicer.classify_logic)"
                                        " is not installed yet.")

    def onApplyButton(self, checked=False):
        from hrpqct.errors import HRpQCTError

        if not logicInstalled():
            self.ui.statusLabel.text = ("Cannot classify: the classification logic "
                                        "(hrpqct_slicer.classify_logic) is not installed yet.")
            return
        from hrpqct_slicer import classify_logic

        try:
            result = classify_logic.classify(slicer.mrmlScene, self.ui.featuresSelector.currentNode(),
                                             str(self.ui.modelFolderEdit.currentPath or "") or None)
        except HRpQCTError as exc:  # a mismatched model or table: a message, not a traceback
            self.ui.statusLabel.text = f"Cannot classify: {exc}"
            return
        self.ui.statusLabel.text = str(result)


def logicInstalled():
    """True once ``hrpqct_slicer.classify_logic`` exists."""
    return importlib.util.find_spec("hrpqct_slicer.classify_logic") is not None


#
# HRpQCTClassifyTest
#
class HRpQCTClassifyTest(ScriptedLoadableModuleTest):
    """Slicer's self-test: the classification step of :func:`hrpqct_slicer.selftest.run_selftest`
    on a synthetic scan's features (skipped, with a message, until the classification logic
    ``hrpqct_slicer.classify_logic`` is installed)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_HRpQCTClassify_selftest()

    def test_HRpQCTClassify_selftest(self):
        from hrpqct_slicer.selftest import run_selftest

        result = run_selftest(slicer.mrmlScene, slicer.modules.segmentations.logic(),
                              steps=("classify",), say=self.delayDisplay)
        for step, why in result.skipped.items():
            self.delayDisplay(f"{step} skipped: {why}")
        self.assertTrue(result.done or result.skipped)
