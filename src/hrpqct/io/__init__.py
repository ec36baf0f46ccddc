"""Scan and label-map input/output (Scanco AIM/ISQ, DICOM, NIfTI, NRRD, MHA, .seg.nrrd)."""
