"""The package's shape as a contract: settings in one place, statuses changed in one module, public APIs only.

The layers themselves are checked by import-linter (`lint-imports`, in `make test`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from persona_pipeline import config
from persona_pipeline.core.domain import PersonaSetStatus
from persona_pipeline_tests.helpers import REPO

PACKAGE = REPO / "persona_pipeline"
TESTS = REPO / "persona_pipeline_tests"


def _sources(root: Path) -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text("utf-8"))) for path in sorted(root.rglob("*.py"))]


def _relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_environment_variables_are_read_in_config_only() -> None:
    readers = []
    for path, tree in _sources(PACKAGE):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                if isinstance(node.value, ast.Name) and node.value.id == "os":
                    readers.append(f"{_relative(path)}:{node.lineno}")
    assert readers and all(r.startswith("persona_pipeline/config.py:") for r in readers), readers


def test_the_readme_lists_every_setting_with_its_default() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| (.+?) \| .+ \|$", readme, re.M))
    assert set(rows) == config.SETTING_NAMES
    assert all(rows[s.name] == s.default for s in config.SETTINGS)


def test_an_unregistered_setting_cannot_be_read() -> None:
    with pytest.raises(KeyError, match="not a registered setting"):
        config.setting("PERSONA_NOT_A_SETTING")


def _calls_to(names: set[str]) -> dict[str, list[str]]:
    """Where in the package a function of these names is called, by module."""
    found: dict[str, list[str]] = {}
    for path, tree in _sources(PACKAGE):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if name in names:
                    found.setdefault(_relative(path), []).append(f"{name}:{node.lineno}")
    return found


def test_every_status_change_of_a_persona_set_is_in_lifecycle() -> None:
    writers = _calls_to({"write_status", "make_current", "replace_memberships", "claim_building"})
    assert set(writers) == {
        "persona_pipeline/persona_sets/lifecycle.py",
        "persona_pipeline/warehouse/memberships.py",
    }
    assert writers["persona_pipeline/warehouse/memberships.py"] == [
        w for w in writers["persona_pipeline/warehouse/memberships.py"] if w.startswith("make_current")
    ]
    inserts = _calls_to({"insert"})  # SQLAlchemy's Table.insert() is a method of a table, not this
    assert not [
        line
        for module, lines in inserts.items()
        for line in lines
        if module != "persona_pipeline/persona_sets/lifecycle.py" and "store.insert" in line
    ]


def test_status_values_are_spelled_only_by_the_enum() -> None:
    spelled = []
    values = {s.value for s in PersonaSetStatus}
    for path, tree in _sources(PACKAGE):
        if path.name == "domain.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in values:
                spelled.append(f"{_relative(path)}:{node.lineno} {node.value!r}")
    assert spelled == []


def test_no_private_dagster_module_is_imported() -> None:
    private = []
    for path, tree in _sources(PACKAGE):
        for node in ast.walk(tree):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            private += [f"{_relative(path)}: {m}" for m in modules if re.match(r"dagster\w*\._", m)]
    # The exceptions, Dagster pinned: it has no public way to record an in-process run as a run of a code
    # location (runtime/origin.py builds the origins the webserver would; e2e/test_dagster_ui.py checks the
    # result through the real webserver); its SQLite storages, which its instance docs name for dagster.yaml,
    # live only under private paths (runtime/sqlite_storage.py subclasses them; e2e/test_cli_and_storage.py
    # reads what it writes with Dagster's own storage and follows a run with Dagster's own watcher).
    allowed = {"persona_pipeline/runtime/origin.py", "persona_pipeline/runtime/sqlite_storage.py"}
    assert [p for p in private if p.split(":")[0] not in allowed] == []


def test_tests_use_no_private_name_of_ours() -> None:
    private = []
    for path, tree in _sources(TESTS):
        ours: set[str] = set()  # names bound to our modules in this file
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("persona_pipeline"):
                for alias in node.names:
                    if alias.name.startswith("_"):
                        private.append(f"{_relative(path)}:{node.lineno} {alias.name}")
                    ours.add(alias.asname or alias.name)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in ours
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                private.append(f"{_relative(path)}:{node.lineno} {node.value.id}.{node.attr}")
    assert private == []


def test_function_level_imports_are_the_clis_and_say_why() -> None:
    """Imports inside functions only where they keep the command line fast, each with its reason."""
    unexplained = []
    for path, tree in _sources(PACKAGE):
        lines = path.read_text("utf-8").splitlines()
        for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    text = lines[node.lineno - 1]
                    explained = "#" in text or (
                        node.lineno >= 2 and lines[node.lineno - 2].strip().startswith("#")
                    )
                    if not explained:
                        unexplained.append(f"{_relative(path)}:{node.lineno} {text.strip()}")
    assert unexplained == []
