"""Stand-ins for the parts of Slicer that need the application (Qt, CTK, qMRML widgets)."""
