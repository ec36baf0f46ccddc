"""The ``hrpqct`` command line: one entry point, a sub-command per task.

Each area registers its sub-commands on :data:`hrpqct._cli.app` in its own ``commands`` module;
importing those modules here is what makes the commands appear.
"""

from __future__ import annotations

import sys

from rich.console import Console

from ._cli import app
from .errors import Cancelled, HRpQCTError

# Sub-command modules (import order = order in --help).
from . import demo as _demo  # noqa: F401,E402  demo
from .phantom import commands as _phantom_commands  # noqa: F401,E402  phantom, phantom-cohort
from .io import commands as _io_commands  # noqa: F401,E402  info
from .seg import commands_segment as _seg_segment_commands  # noqa: F401,E402  segment
from .seg import commands_refine as _seg_refine_commands  # noqa: F401,E402  refine
from .seg import commands_train as _seg_train_commands  # noqa: F401,E402  train-seg, eval-seg
from .radiomics import commands as _radiomics_commands  # noqa: F401,E402  radiomics, cohort
from .classify import commands as _classify_commands  # noqa: F401,E402  classify ...
# the browser app lives next to the core (it needs slicer-core); its module imports only typer
from hrpqct_web import commands as _web_commands  # noqa: F401,E402  serve
from .morphometry import commands as _morphometry_commands  # noqa: F401,E402  morphometry
from .study import commands as _study_commands  # noqa: F401,E402  study


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Usage errors are reported by typer; the project's own errors (bad input,
    missing model...) are printed as one clear line and exit with status 2 (130 when cancelled)."""
    try:
        app(args=argv, prog_name="hrpqct")  # standalone: typer formats usage errors and exits
    except HRpQCTError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(130 if isinstance(exc, Cancelled) else 2)
    except OSError as exc:  # a file-system failure no writer turned into an OutputError
        if getattr(exc, "filename", None) is None and getattr(exc, "errno", None) is None:
            raise
        from .io.outputs import describe_os_error

        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {where}{describe_os_error(exc)}",
                                   highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
