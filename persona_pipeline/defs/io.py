"""Where build steps hand data to each other: pickles under the persona home, resolved when a run starts.

Resolving the folder per run (not at import) keeps runs with different PERSONA_HOME apart, in tests and
in deployments that serve several homes from one code location.
"""

from dagster import ConfigurableIOManager, InputContext, OutputContext
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager

from persona_pipeline.settings import builds_dir


class BuildsIOManager(ConfigurableIOManager):
    """Pickled step outputs in `base_dir`, default PERSONA_HOME/builds/dagster_io."""

    base_dir: str = ""

    def _inner(self) -> PickledObjectFilesystemIOManager:
        return PickledObjectFilesystemIOManager(base_dir=self.base_dir or str(builds_dir() / "dagster_io"))

    def handle_output(self, context: OutputContext, obj: object) -> None:
        self._inner().handle_output(context, obj)

    def load_input(self, context: InputContext) -> object:
        return self._inner().load_input(context)
