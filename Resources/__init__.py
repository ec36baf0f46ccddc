"""Resources shared by the Slicer extension and the core package (terminology, presets, demo model)."""
