"""persona-pipeline's command line: `parser` is the grammar, one module per command group carries it out.

Start-up is kept to Python's own: the parser imports no library, and a command imports only what it needs
(`persona-set list` and `show` read the catalog with SQLAlchemy alone; Dagster and pandas load for builds).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from persona_pipeline.cli.parser import parser
from persona_pipeline.errors import PersonaPipelineError


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    module_name, function_name = args.func.split(":")
    command = getattr(importlib.import_module(f"persona_pipeline.cli.{module_name}"), function_name)
    try:
        return command(args)
    except PersonaPipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
