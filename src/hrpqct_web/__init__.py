"""The browser app for correcting the seven regions: ``hrpqct serve``.

Built on trame-slicer (Kitware), which serves 3D Slicer's own slice and 3D views and its segment
editor effects from the ``slicer-core`` package to a web page. The app calls the same bridge
(:mod:`hrpqct_slicer`) and core functions as the Slicer module.

* :mod:`.session`: the work below the page (open, segment, refine, review, save, export,
  radiomics + classify), no UI;
* :mod:`.results`: the radiomics and classification results as the page shows them (tables,
  probability plot);
* :mod:`.app`: the trame page and its controls;
* :mod:`.rendering`: the OpenGL check (Mesa software rendering on machines without a GPU);
* :mod:`.commands`: the ``hrpqct serve`` command.

See docs/web-app.md.
"""
