"""Radiomics: the paper's 939-feature 2D set per region, a multi-region engine, cohort runs."""
