"""persona-pipeline's command line: `parser` is the grammar, one module per command group carries it out.

Start-up is kept to Python's own: the parser imports no library, and a command imports only what it needs
(`persona-set list` and `show` read the catalog with SQLAlchemy alone; Dagster and pandas load for builds).
"""

from __future__ import annotations

import atexit
import errno
import importlib
import os
import sys
import threading
from collections.abc import Sequence

from persona_pipeline.cli.parser import parser
from persona_pipeline.errors import EXIT_USER_ERROR, PersonaPipelineError


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    module_name, function_name = args.func.split(":")
    try:
        # inside the guard: importing a command's module reads settings (a bad one is a user error too)
        command = getattr(importlib.import_module(f"persona_pipeline.cli.{module_name}"), function_name)
        return command(args)
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as Python's docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except PersonaPipelineError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        message = environment_error(exc)
        if message is None:
            raise
        print(f"error: {_one_line(message)}", file=sys.stderr)
        return EXIT_USER_ERROR


def _one_line(text: str) -> str:
    return " ".join(text.split())


def environment_error(exc: BaseException) -> str | None:
    """What a failure of the machine or the warehouse (not of our code) means for the user, or None."""
    database = sys.modules.get("sqlalchemy.exc")  # loaded whenever the warehouse was used
    if database is not None and isinstance(exc, database.DBAPIError):
        first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc).splitlines()[0]
        if "not a database" in first or "malformed" in first:
            return (
                f"the embedded warehouse file is damaged ({first}); restore it from a backup, or move it away "
                "to start an empty one (PERSONA_HOME/warehouse.sqlite); nothing was changed"
            )
        if isinstance(exc, database.OperationalError | database.InterfaceError):
            return (
                f"the warehouse cannot be reached or used ({first}); check that the database is running and "
                "that PERSONA_WAREHOUSE_URL points to it; nothing was changed"
            )
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}: free space or fix the permissions, then run the command again"
    return None


def entry() -> None:
    """The `persona-pipeline` command: main(), then exit without Python's module teardown.

    Tearing down Dagster's, pandas', scikit-learn's and SciPy's modules took 0.6-1.0 s after every build's
    output was written (measured on this project's host), time a user waits for nothing. The exit handlers
    still run (logging flushes and closes its files, temporary directories go), and when a thread other than
    this one is alive the exit is Python's usual one, which waits for it.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader went away: nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    entry()
