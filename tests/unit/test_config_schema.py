"""The one mechanism every config file is read by (trademesh.core.platform.config.schema): each key is
declared once on a frozen dataclass; an unknown key is refused with the known ones, a value of the
wrong type or out of range with the key's dotted path, every refusal at once and each naming the
file, in one wording."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

import pytest

from trademesh.core.platform.config.schema import (
    NOT_A_KEY,
    NOT_EMPTY,
    Above,
    Items,
    Key,
    Label,
    Matches,
    OneOf,
    Parse,
    Reading,
    Unique,
    Within,
    check_fields,
    load,
    read_value,
)
from trademesh.core.platform.errors import InvalidArgument


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def _upper(value: Any, path: str) -> str:
    text: str = read_value(str, value, path)
    if not text.isupper():
        raise InvalidArgument.field("anything", f"{text!r} is not upper case")
    return text


@dataclass(frozen=True)
class Leg:
    name: Annotated[str, NOT_EMPTY]
    size: Annotated[Decimal, Above(0, 10)]
    note: str = ""

    def __post_init__(self) -> None:
        if self.name == self.note:
            raise InvalidArgument.field("note", "must differ from name")


@dataclass(frozen=True)
class Section:
    ratio: Annotated[float, Within(0, 1)] = 0.5
    colour: Colour = Colour.RED


@dataclass(frozen=True)
class Plan:
    start: Annotated[int, Key("from"), Within(0)]
    legs: Annotated[tuple[Leg, ...], Items(1, 3), Unique("name")] = ()
    named: Annotated[tuple[Leg, ...], Label("name")] = ()
    section: Section = field(default_factory=Section)
    tags: tuple[Annotated[str, NOT_EMPTY], ...] = ()
    mode: Annotated[str, OneOf(("fast", "slow"))] = "fast"
    code: Annotated[str, Matches(r"[a-z]{3}", "a code of three letters")] = "abc"
    upper: Annotated[str, Parse(_upper)] = "A"
    weights: dict[str, Annotated[int, Within(1, 9)]] = field(default_factory=dict)
    enabled: bool = True
    origin: Annotated[str, NOT_A_KEY] = "here"


def _refused(table: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        load(Plan, table, "plan.toml", **kwargs)
    return {v.field: v.description for v in caught.value.violations}


def test_a_good_table_makes_the_config_with_the_defaults_for_the_rest() -> None:
    plan = load(Plan, {"from": 3, "legs": [{"name": "a", "size": "1.5"}], "section": {"colour": "blue"}})
    assert plan == Plan(3, (Leg("a", Decimal("1.5")),), section=Section(colour=Colour.BLUE))


def test_an_unknown_key_is_named_by_its_path_with_the_known_keys_in_their_order() -> None:
    assert _refused({"from": 1, "section": {"ratoi": 1}}) == {
        "section.ratoi": "unknown key; known: ratio, colour (in plan.toml)"
    }
    said = _refused({"from": 1, "origin": "x"})
    assert said == {
        "origin": "unknown key; known: from, legs, named, section, tags, mode, code, upper, weights, "
        "enabled (in plan.toml)"
    }  # a field that is not a key (set by the loader) is not one of the file's


@pytest.mark.parametrize(
    ("table", "path", "said"),
    [
        ({"from": 1.5}, "from", "1.5 is not a whole number"),
        ({"from": True}, "from", "True is not a whole number"),
        ({"from": -1}, "from", "must be at least 0, got -1"),
        ({"section": {"ratio": "0.5"}}, "section.ratio", "'0.5' is not a number"),
        ({"section": {"ratio": float("nan")}}, "section.ratio", "nan is not a finite number"),
        ({"section": {"ratio": 1.5}}, "section.ratio", "must be between 0 and 1, got 1.5"),
        ({"section": {"colour": "green"}}, "section.colour", "'green' is not one of red, blue"),
        ({"section": 3}, "section", "3 is not a table"),
        ({"legs": [{"name": "a", "size": "0"}]}, "legs[0].size", "must be more than 0 and at most 10, got 0"),
        ({"legs": [{"name": "a", "size": True}]}, "legs[0].size", "True is not a decimal number"),
        ({"legs": [{"name": "a", "size": "x"}]}, "legs[0].size", "'x' is not a decimal number"),
        ({"legs": [{"name": "a", "size": "inf"}]}, "legs[0].size", "'inf' is not a finite decimal number"),
        ({"legs": [{"name": "a", "size": "1e-40"}]}, "legs[0].size", "'1e-40' has more than 38 digits"),
        ({"legs": [{"name": "a"}]}, "legs[0].size", "is required"),
        ({"legs": [1]}, "legs[0]", "1 is not a table"),
        ({"legs": {"name": "a"}}, "legs", "{'name': 'a'} is not an array of tables ([[legs]])"),
        ({"legs": []}, "legs", "must list between 1 and 3, got 0"),
        ({"named": [{"name": "x", "size": "1", "colour": 1}]}, "named.x.colour",
         "unknown key; known: name, size, note"),
        ({"named": [{"size": "1"}]}, "named[0].name", "is required"),
        ({"tags": ["a", ""]}, "tags", "'' is not a non-empty string"),
        ({"tags": "a"}, "tags", "'a' is not a list"),
        ({"mode": "medium"}, "mode", "'medium' is not one of fast, slow"),
        ({"code": "abcd"}, "code", "'abcd' is not a code of three letters"),
        ({"upper": "abc"}, "upper", "'abc' is not upper case"),
        ({"upper": 5}, "upper", "5 is not a string"),
        ({"weights": {"a": 10}}, "weights.a", "must be between 1 and 9, got 10"),
        ({"enabled": "yes"}, "enabled", "'yes' is not true or false"),
    ],
)  # fmt: skip
def test_a_bad_value_is_named_by_its_dotted_path_and_the_file(
    table: dict[str, Any], path: str, said: str
) -> None:
    assert _refused({"from": 1, **table}) == {path: f"{said} (in plan.toml)"}


def test_a_required_key_left_out_is_named_by_its_name_in_the_file() -> None:
    assert _refused({}) == {"from": "is required (in plan.toml)"}


def test_every_refusal_of_a_file_comes_at_once_and_a_refused_table_is_not_made() -> None:
    table = {"from": -1, "legs": [{"name": "a", "size": "0", "note": "a"}], "mode": "x", "colour": 1}
    # legs[0] is not made (its size is refused), so its own check (note == name) does not run
    assert set(_refused(table)) == {"from", "legs[0].size", "mode", "colour"}


def test_what_a_class_refuses_itself_is_named_under_its_table() -> None:
    assert _refused({"from": 1, "legs": [{"name": "a", "size": "1", "note": "a"}]}) == {
        "legs[0].note": "must differ from name (in plan.toml)"
    }


def test_a_list_of_tables_may_say_which_key_is_unique() -> None:
    legs = [{"name": "a", "size": "1"}, {"name": "b", "size": "1"}, {"name": "a", "size": "2"}]
    assert _refused({"from": 1, "legs": legs}) == {"legs[2].name": "'a' is listed twice (in plan.toml)"}


def test_keys_another_reader_of_the_file_reads_are_known_and_left() -> None:
    plan = load(
        Plan, {"from": 1, "seed": 5, "section": {"speed": 2}}, also={Plan: ("seed",), Section: ("speed",)}
    )
    assert plan.start == 1
    said = _refused({"from": 1, "sed": 5}, also={Plan: ("seed",)})
    assert said["sed"].startswith("unknown key; known: from, legs,") and "enabled, seed (in" in said["sed"]


def test_texts_reads_numbers_and_lists_given_as_text() -> None:
    plan = load(Plan, {"from": " 7 ", "tags": "a, b,,", "section": {"ratio": "0.25"}}, texts=True)
    assert (plan.start, plan.tags, plan.section.ratio) == (7, ("a", "b"), 0.25)
    assert _refused({"from": "seven"}, texts=True) == {"from": "'seven' is not a whole number (in plan.toml)"}


def test_text_from_no_file_is_refused_without_a_file_named() -> None:
    with pytest.raises(InvalidArgument, match=r"^from: must be at least 0, got -1$"):
        load(Plan, {"from": -1})


def test_a_reading_merges_tables_before_making_the_config() -> None:
    reading = Reading("plan.toml", texts=True)
    values = {
        **(reading.values(Plan, {"from": 1, "mode": "slow"}) or {}),
        **(reading.values(Plan, {"from": "2"}) or {}),
    }
    plan = reading.make(Plan, values)
    reading.done()
    assert plan is not None and (plan.start, plan.mode) == (2, "slow")


def test_a_config_made_in_code_is_held_to_the_same_markers() -> None:
    legs = (Leg("a", Decimal(1)),)
    check_fields(Plan(1, legs))
    with pytest.raises(InvalidArgument) as caught:
        check_fields(Plan(-1, legs, mode="x"))
    assert {v.field: v.description for v in caught.value.violations} == {
        "from": "must be at least 0, got -1",
        "mode": "'x' is not one of fast, slow",
    }


def test_a_long_value_is_cut_in_the_error() -> None:
    said = _refused({"from": 1, "mode": "x" * 10_000})["mode"]
    assert len(said) < 200 and "(10000 characters)" in said
