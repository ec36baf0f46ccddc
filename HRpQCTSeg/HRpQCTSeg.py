"""HRpQCT Segmentation: 3D Slicer module of the HRpQCT extension.

The module segments an HR-pQCT scan of the distal tibia, slice by slice, with a SegFormer-B3 model
into tibia cortical and trabecular bone, fibula cortical and trabecular bone and soft tissue, post-
processes the masks and splits the soft tissue into skin, myotendinous and adipose tissue (7
regions).

STATUS: only this module description exists. The graphical user interface (the module widget) is
NOT BUILT YET, because the core functions it will call are still being written; opening the module
in Slicer shows an empty panel. Planned: choose a scan, run the segmentation in a background
process with progress and cancel, review the 7-region segmentation (colours and terminology from
the HRpQCT terminology), jump to the least confident slices, and save corrected masks as .seg.nrrd
for training.

Everything testable lives below the widget, in the ``hrpqct`` core package and the
``hrpqct_slicer`` MRML bridge bundled with this extension.
"""

from slicer.ScriptedLoadableModule import ScriptedLoadableModule

GUI_STATUS = "not built yet"


class HRpQCTSeg(ScriptedLoadableModule):
    """Module description (title, category, help); no widget, logic or test classes yet."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "HRpQCT Segmentation"
        self.parent.categories = ["HRpQCT"]
        self.parent.dependencies = ["Segmentations", "Terminologies"]
        self.parent.contributors = ["HRpQCT developers"]
        self.parent.helpText = (
            "<p>This module segments an HR-pQCT scan of the distal tibia, slice by slice, with a "
            "SegFormer-B3 model into tibia cortical and trabecular bone, fibula cortical and "
            "trabecular bone and soft tissue, post-processes the masks and splits the soft tissue"
            " into skin, myotendinous and adipose tissue (7 regions).</p><p><b>The user interface"
            " of this module is not built yet</b>: the module only registers itself, and its "
            "panel is empty. Planned: choose a scan, run the segmentation in a background process"
            " with progress and cancel, review the 7-region segmentation (colours and terminology"
            " from the HRpQCT terminology), jump to the least confident slices, and save "
            "corrected masks as .seg.nrrd for training.</p><p>Until then use the "
            "<code>hrpqct</code> command-line tool and Python package that ship with the "
            "extension; see the <a href='https://github.com/hrpqct/SlicerHRpQCT'>project "
            "page</a>.</p>"
        )
        self.parent.acknowledgementText = (
            "The method follows published work on SegFormer segmentation and radiomics of HR-pQCT"
            " scans of the distal tibia for osteoporosis assessment. Region terminology uses "
            "DICOM PS3.16 / SNOMED CT codes, with sources in Resources/README.md of the "
            "extension."
        )
