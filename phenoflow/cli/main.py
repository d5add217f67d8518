"""Entry point of the ``phenoflow`` command: registers every command, prints expected failures as one line."""

from __future__ import annotations

import logging
import sys

from typer.exceptions import Abort as TyperAbort
from typer.exceptions import Exit as TyperExit
from typer.exceptions import TyperException

from phenoflow.cli import cmd_dashboard, cmd_data, cmd_run, cmd_study
from phenoflow.cli.app import app, err, out
from phenoflow.core.errors import UserError

__all__ = ["main"]

#: The command modules; importing them registers their commands on ``app``.
COMMAND_MODULES = (cmd_data, cmd_run, cmd_study, cmd_dashboard)


def main() -> None:
    """Entry point: one line per expected failure, no traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        rc = app(standalone_mode=False)
    except UserError as exc:
        err.print(f"[red]error:[/] {exc}", soft_wrap=True)
        sys.exit(exc.exit_code)
    except TyperExit as exc:
        sys.exit(exc.exit_code)
    except TyperAbort:
        sys.exit(130)
    except TyperException as exc:  # usage errors: bad flag, missing argument, bad value
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            out.print(ctx.get_help())
            sys.exit(0)
        cmd = f" {ctx.info_name}" if ctx is not None and ctx.parent is not None else ""
        err.print(f"[red]error:[/] {exc.format_message()} — see `phenoflow{cmd} --help`", soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
