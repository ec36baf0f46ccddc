"""The typer application object shared by every sub-command module (see :mod:`hrpqct.cli`)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="hrpqct",
    help=(
        "HR-pQCT distal tibia: synthetic scans, SegFormer segmentation into seven regions, "
        "radiomics and osteoporosis classification. Every command has its own --help."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
