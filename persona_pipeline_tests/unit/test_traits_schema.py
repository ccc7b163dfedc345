"""traits.schema.json and the README's Input formats section, held to the loader's own vocabulary: a key,
kind, id kind, flag or word added to (or dropped from) the code fails here until the docs say so too."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
import yaml

from persona_pipeline.cli.parser import parser
from persona_pipeline.core.orders import STATUS_WORDS
from persona_pipeline.core.traits import (
    BOOLEAN_WORDS,
    CONTACT_KEYS,
    FILE_KEYS,
    IDENTIFIER,
    ORDER_FIELDS,
    ORDER_KEYS,
    RESERVED_COLUMNS,
    TRAIT_KEYS,
    ContactIds,
    ContactLayout,
    OrderIds,
    OrderLayout,
    Trait,
    TraitKind,
    UnknownLevels,
    read_traits_file,
)
from persona_pipeline.errors import CatalogError
from persona_pipeline.loading import BLANK_WORDS, DEFAULT_MAX_REJECT_SHARE, REJECT_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "traits.schema.json").read_text(encoding="utf-8"))
DEFS = SCHEMA["$defs"]
TRAIT = DEFS["trait"]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# Fenced YAML blocks that are traits files (a top-level `traits:` key).
TRAITS_BLOCKS = [
    block
    for block in re.findall(r"^```yaml\n(.*?)^```", README, flags=re.DOTALL | re.MULTILINE)
    if re.search(r"^traits:", block, flags=re.MULTILINE)
]
# Values for trait keys that the code allows on date traits only.
DATE_ONLY_VALUES = {"format": "%d/%m/%Y", "reference": "2026-01-01"}


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


INPUT_FORMATS = _section("Input formats")


def _table_keys(section: str, header: str) -> set[str]:
    """The backticked words in the first cell of each row of the table whose header line starts so."""
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    keys: set[str] = set()
    for line in lines[start + 2 :]:  # past the header and the |---| line
        if not line.startswith("|"):
            break
        keys |= set(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return keys


def _load_options() -> dict[str, argparse.Action]:
    top = parser()
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return {option: a for a in commands.choices["load"]._actions for option in a.option_strings}


def test_schema_trait_keys_are_the_codes():
    assert set(TRAIT["properties"]) == TRAIT_KEYS
    assert TRAIT["additionalProperties"] is False
    assert set(TRAIT["required"]) == {"name", "kind"}
    assert all(spec.get("description") for spec in TRAIT["properties"].values())


def test_schema_trait_name_is_the_codes():
    name = TRAIT["properties"]["name"]
    assert name["pattern"] == IDENTIFIER.pattern
    assert set(name["not"]["enum"]) == RESERVED_COLUMNS


def test_schema_enums_are_the_codes():
    assert set(TRAIT["properties"]["kind"]["enum"]) == set(TraitKind)
    assert set(TRAIT["properties"]["unknown"]["enum"]) == set(UnknownLevels)
    assert set(DEFS["contacts"]["properties"]["ids"]["enum"]) == set(ContactIds)
    assert set(DEFS["orders"]["properties"]["order_ids"]["enum"]) == set(OrderIds)


def test_schema_sections_are_the_codes():
    assert set(DEFS["file"]["properties"]) == FILE_KEYS
    assert DEFS["file"]["required"] == ["traits"]
    assert set(DEFS["contacts"]["properties"]) == CONTACT_KEYS
    assert set(DEFS["orders"]["properties"]) == ORDER_KEYS
    for name in ("file", "trait", "contacts", "orders"):
        assert DEFS[name]["additionalProperties"] is False, name
    assert {ref["$ref"] for ref in SCHEMA["anyOf"]} == {"#/$defs/traits", "#/$defs/file"}


def test_schema_defaults_are_the_codes():
    contacts = ContactLayout()
    for key, spec in DEFS["contacts"]["properties"].items():
        assert spec["default"] == str(getattr(contacts, key)), key
    orders = OrderLayout()
    for key, spec in DEFS["orders"]["properties"].items():
        expected = orders.order_ids if key == "order_ids" else orders.columns[key]
        assert spec["default"] == str(expected), key
    plain = Trait(name="x", kind=TraitKind.NUMERIC)
    for key in ("cluster", "noun", "normalize", "unknown"):
        default = getattr(plain, key)
        assert TRAIT["properties"][key]["default"] == (str(default) if key == "unknown" else default), key


def test_schema_conditions_are_the_codes():
    rules = TRAIT["allOf"]
    levels_rule = next(r for r in rules if "levels" in r.get("then", {}).get("required", []))
    level_kinds = set(levels_rule["if"]["properties"]["kind"]["enum"])
    assert level_kinds == {k for k in TraitKind if Trait(name="x", kind=k).has_levels}
    assert levels_rule["then"]["properties"]["levels"]["minItems"] == 2
    for kind in level_kinds:
        with pytest.raises(CatalogError, match="at least two"):
            Trait.from_dict({"name": "x", "kind": kind, "levels": ["a"]})
        assert Trait.from_dict({"name": "x", "kind": kind, "levels": ["a", "b"]}).levels == ("a", "b")
    for kind in set(TraitKind) - level_kinds:
        assert Trait.from_dict({"name": "x", "kind": kind}).kind is kind

    date_rule = next(r for r in rules if "else" in r)
    assert date_rule["if"]["properties"]["kind"]["const"] == TraitKind.DATE
    date_only = {key for key, spec in date_rule["else"]["properties"].items() if spec is False}
    assert date_only == set(DATE_ONLY_VALUES)
    for key, value in DATE_ONLY_VALUES.items():
        assert Trait.from_dict({"name": "x", "kind": "date", key: value}).kind is TraitKind.DATE
        for kind in set(TraitKind) - {TraitKind.DATE}:
            levels = {"levels": ["a", "b"]} if kind in level_kinds else {}
            with pytest.raises(CatalogError, match="date traits only"):
                Trait.from_dict({"name": "x", "kind": kind, key: value, **levels})


def test_readme_has_traits_examples():
    assert len(TRAITS_BLOCKS) >= 2  # the Data section's and the Input formats section's


@pytest.mark.parametrize("block", TRAITS_BLOCKS, ids=[f"block{i}" for i in range(len(TRAITS_BLOCKS))])
def test_readme_traits_example_reads(block: str, tmp_path: Path):
    path = tmp_path / "traits.yaml"
    path.write_text(block, encoding="utf-8")
    traits_file = read_traits_file(path)
    raw = yaml.safe_load(block)
    assert traits_file.catalog.names == [t["name"] for t in raw["traits"]]
    for key, header in (raw.get("contacts") or {}).items():
        assert str(getattr(traits_file.contacts, key)) == str(header), key
    for key, header in (raw.get("orders") or {}).items():
        read = traits_file.orders.order_ids if key == "order_ids" else traits_file.orders.columns[key]
        assert str(read) == str(header), key


def test_readme_input_formats_example_shows_every_kind_and_section():
    (example,) = [block for block in TRAITS_BLOCKS if block in INPUT_FORMATS]
    raw = yaml.safe_load(example)
    assert set(raw) == FILE_KEYS
    assert {t["kind"] for t in raw["traits"]} == set(TraitKind)


def test_readme_tables_list_every_key():
    assert _table_keys(INPUT_FORMATS, "| key |") == TRAIT_KEYS
    assert _table_keys(INPUT_FORMATS, "| column |") == set(ORDER_FIELDS)


def test_readme_load_flags_exist():
    options = _load_options()
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", INPUT_FORMATS))
    assert named, "the section names the load's flags"
    assert named <= set(options), named - set(options)
    assert options["--max-reject-share"].default == DEFAULT_MAX_REJECT_SHARE
    assert f"(default {DEFAULT_MAX_REJECT_SHARE:g})" in INPUT_FORMATS


def test_readme_lists_the_words_the_loader_reads():
    words = {
        "status": {w for w in STATUS_WORDS if w},
        "boolean": set(BOOLEAN_WORDS),
        "blank": set(BLANK_WORDS),
        "rejects column": set(REJECT_COLUMNS),
    }
    for what, expected in words.items():
        missing = {w for w in expected if f"`{w}`" not in INPUT_FORMATS}
        assert not missing, f"{what} words missing from README Input formats: {sorted(missing)}"
