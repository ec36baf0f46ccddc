"""Classification: feature selection, classifiers and the statistics clinicians publish with."""
