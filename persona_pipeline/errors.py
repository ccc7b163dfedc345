"""The one error base: every user error is a PersonaPipelineError, shown as one line, exit code 2.

Each subclass names the domain the error comes from; its message says what was wrong and how to fix it.
They are ValueErrors too, as they always were (a caller that caught ValueError still does).
Imports nothing: every layer raises these.
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT_USER_ERROR = 2


class PersonaPipelineError(ValueError):
    """A request that cannot be carried out as asked; nothing stored was changed. Exit code 2."""

    exit_code = EXIT_USER_ERROR


class ConfigError(PersonaPipelineError):
    """An environment variable with a value that cannot be used; the message names it."""


class CatalogError(PersonaPipelineError):
    """A trait catalog that cannot be used; the message says which entry and how to fix it."""


class ValidationError(PersonaPipelineError):
    """The data cannot be validated at all (a missing column, an empty cohort); nothing was written."""


class FeatureError(PersonaPipelineError):
    """A trait that cannot be used for clustering, with the fix."""


class ClusteringError(PersonaPipelineError):
    """The cohort cannot be split as asked; the message says why and what to change."""


class AnalysisError(PersonaPipelineError):
    """An analysis request that cannot be answered; the message says how to fix it."""


class NotBuiltError(AnalysisError):
    """A persona set with no build to serve yet: nothing to analyse, report, export or score with."""


class FlowError(PersonaPipelineError):
    """A flow request that cannot be answered (a day outside the history, a set never snapshotted)."""


class ScoringError(PersonaPipelineError):
    """A contact that cannot be scored: unknown traits or values of the wrong type; the message names them."""


class LoadError(PersonaPipelineError):
    """The file cannot be loaded at all; nothing in the warehouse was changed."""


class SqlModelError(PersonaPipelineError):
    """A model that cannot be run; the message names its file."""


class PersonaSetError(PersonaPipelineError):
    """A persona set request that cannot be carried out; the message says how to fix it."""


class BuildError(PersonaPipelineError):
    """A build step that cannot go on; the message says what to do."""


class BuildAlreadyRunning(BuildError):
    """Another run is building the set: this one stops and leaves the set to it."""


class PipelineError(PersonaPipelineError):
    """A pipeline that cannot be created or run as asked; the message says what to change."""


class LineageError(PersonaPipelineError):
    """A deletion refused because something still consumes the target; nothing was deleted."""

    def __init__(self, target: str, consumers: Sequence[object], advice: str) -> None:
        self.consumers = list(consumers)
        listed = "; ".join(str(c) for c in consumers)
        super().__init__(f"cannot delete {target}: it is used by {listed}. {advice} Nothing was deleted.")
