"""``hrpqct study``: raw scans to a study (segmentation, radiomics, morphometry, classification),
resumable, on local processes or a Dask cluster (docs/study.md)."""
