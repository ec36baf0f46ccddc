"""HRpQCT Classify: 3D Slicer module of the HRpQCT extension.

The module applies a trained classifier (logistic regression and others, on selected radiomics and
clinical features) to estimate osteoporosis (femoral-neck T-score <= -2.5) from a scan.

STATUS: only this module description exists. The graphical user interface (the module widget) is
NOT BUILT YET, because the core functions it will call are still being written; opening the module
in Slicer shows an empty panel. Planned: load a trained model, compute the features of the current
scan, and report the predicted class and probability with the model's validation metrics.

Everything testable lives below the widget, in the ``hrpqct`` core package and the
``hrpqct_slicer`` MRML bridge bundled with this extension.
"""

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleTest

GUI_STATUS = "not built yet"


class HRpQCTClassify(ScriptedLoadableModule):
    """Module description (title, category, help); no widget or logic class yet."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "HRpQCT Classify"
        self.parent.categories = ["HRpQCT"]
        self.parent.dependencies = []
        self.parent.contributors = ["HRpQCT developers"]
        self.parent.helpText = (
            "<p>This module applies a trained classifier (logistic regression and others, on "
            "selected radiomics and clinical features) to estimate osteoporosis (femoral-neck "
            "T-score <= -2.5) from a scan.</p><p><b>The user interface of this module is not "
            "built yet</b>: the module only registers itself, and its panel is empty. Planned: "
            "load a trained model, compute the features of the current scan, and report the "
            "predicted class and probability with the model's validation metrics.</p><p>Until "
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
