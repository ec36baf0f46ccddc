"""HRpQCT Radiomics: 3D Slicer module of the HRpQCT extension.

The module extracts the paper's 939 two-dimensional PyRadiomics features per region and slice (six
regions: tibia and fibula cortical and trabecular bone, myotendinous and adipose tissue) and
averages them per scan.

STATUS: only this module description exists. The graphical user interface (the module widget) is
NOT BUILT YET, because the core functions it will call are still being written; opening the module
in Slicer shows an empty panel. Planned: pick a scan and its segmentation, run the extraction with
progress, and show the per-region feature table in a table node.

Everything testable lives below the widget, in the ``hrpqct`` core package and the
``hrpqct_slicer`` MRML bridge bundled with this extension.
"""

from slicer.ScriptedLoadableModule import ScriptedLoadableModule

GUI_STATUS = "not built yet"


class HRpQCTRadiomics(ScriptedLoadableModule):
    """Module description (title, category, help); no widget, logic or test classes yet."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "HRpQCT Radiomics"
        self.parent.categories = ["HRpQCT"]
        self.parent.dependencies = ["Segmentations"]
        self.parent.contributors = ["HRpQCT developers"]
        self.parent.helpText = (
            "<p>This module extracts the paper's 939 two-dimensional PyRadiomics features per "
            "region and slice (six regions: tibia and fibula cortical and trabecular bone, "
            "myotendinous and adipose tissue) and averages them per scan.</p><p><b>The user "
            "interface of this module is not built yet</b>: the module only registers itself, and"
            " its panel is empty. Planned: pick a scan and its segmentation, run the extraction "
            "with progress, and show the per-region feature table in a table node.</p><p>Until "
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
