"""Bridge between :mod:`hrpqct` results and MRML nodes.

Every function takes the MRML scene (and, where needed, the Segmentations module logic) as an
argument, so the same code runs inside 3D Slicer and headless on the ``slicer-core`` package.
"""
