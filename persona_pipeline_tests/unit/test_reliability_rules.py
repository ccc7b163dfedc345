"""The rules that keep bad input out and files whole, as properties where one exists."""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persona_pipeline import files
from persona_pipeline.core.domain import clean_name, name_key
from persona_pipeline.core.render.html import script_json
from persona_pipeline.core.traits import Trait, TraitKind
from persona_pipeline.core.validation import LARGEST_USABLE, validate
from persona_pipeline.errors import PersonaSetError
from persona_pipeline.loading import INT64_MAX, whole_ids


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.text() | st.integers() | st.none(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_json_for_a_script_element_reads_back_and_cannot_close_it(data: object) -> None:
    text = script_json(data)
    assert json.loads(text) == data
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_ids_are_read_exactly_or_refused_never_wrapped(value: int) -> None:
    ids, refused = whole_ids(pd.Series([str(value), f" {value} "]))
    if 1 <= value <= INT64_MAX:
        assert ids.tolist() == [value, value] and not refused.any()
    else:
        assert refused.all()


def test_ids_from_floats_are_refused_where_a_float_cannot_hold_them_exactly() -> None:
    ids, refused = whole_ids(pd.Series([3.0, 2.5, 2.0**60, float("nan")]))
    assert ids.tolist()[0] == 3 and refused.tolist() == [False, True, True, True]


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_names_with_hidden_characters_are_refused_and_the_rest_compare_by_their_key(text: str) -> None:
    trimmed = unicodedata.normalize("NFC", text).strip()  # whitespace around a name is trimmed, not refused
    hidden = any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in trimmed)
    blank = not trimmed
    if hidden or blank:
        with pytest.raises(PersonaSetError):
            clean_name(text, "a persona set", PersonaSetError)
        return
    name = clean_name(text, "a persona set", PersonaSetError)
    assert name_key(name) == name_key(unicodedata.normalize("NFD", name)) == name_key(name.casefold())


def test_the_same_name_in_either_unicode_form_and_any_case_is_one_name() -> None:
    assert name_key("Caf\u00e9") == name_key("Cafe\u0301") == name_key("CAFÉ")
    with pytest.raises(PersonaSetError, match="U\\+202E"):
        clean_name("evil\u202egnp.exe", "a persona set", PersonaSetError)


def test_a_huge_finite_number_is_quarantined_naming_the_trait() -> None:
    trait = Trait("net_worth", TraitKind.NUMERIC)
    frame = pd.DataFrame({"contact_id": [1, 2, 3], "net_worth": [10.0, 1.7e308, -LARGEST_USABLE * 10]})
    result = validate(frame, [trait])
    assert result.valid["contact_id"].tolist() == [1]
    assert set(result.quarantine["column"]) == {"net_worth"}
    assert result.quarantine["reason"].str.contains("not a usable value").all()


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    with pytest.raises(RuntimeError), files.atomic_output(target) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("killed midway")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.html"]
    files.write_text(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_paths_that_are_not_files_are_refused_naming_them(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    for path, reason in [
        (tmp_path, "it is a folder"),
        (Path("/dev/full"), "not a regular file"),
        (tmp_path / "plain" / "under.html", "a part of the path is a file"),
    ]:
        with pytest.raises(files.OutputError, match=reason):
            files.write_text(path, "x")
    assert Path("/dev/full").is_char_device()


def test_temporary_files_of_dead_writers_are_cleaned_and_live_ones_kept(tmp_path: Path) -> None:
    dead = tmp_path / f".report.html.{2**22 + 12345}{files.PARTIAL}"  # beyond pid_max: never a live process
    live = tmp_path / f".export.csv.{os.getpid()}{files.PARTIAL}"
    dead.write_text("left by a killed writer")
    live.write_text("being written")
    assert files.clean_partials(tmp_path) == [dead]
    assert not dead.exists() and live.exists()
