"""Synthetic HR-pQCT distal tibia scans with exact ground truth, and synthetic cohorts."""
