"""trademesh.core.platform.parsing: outside JSON and TOML, nesting bounded before the parser recurses."""

from __future__ import annotations

import pytest

from trademesh.core.platform.config.file import parse_toml
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.logs.stream.entry import decode_entry
from trademesh.core.platform.parsing import MAX_DEPTH, depth_of, loads_json, loads_toml, text_depth
from trademesh.core.supervisor.engine.bounds import Bounds


def _why(error: pytest.ExceptionInfo[InvalidArgument]) -> tuple[str, str]:
    violation = error.value.violations[0]
    return violation.field, violation.description


@pytest.mark.parametrize(
    "text",
    [
        "[" * 4096,  # 4 KiB: json's RecursionError
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
        '{"a": ' * 5000 + "1" + "}" * 5000,
        '{"key": "x", "more": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
)
def test_json_nested_past_the_bound_is_invalid_argument_naming_what(text: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        loads_json(text, "body")
    assert _why(error) == ("body", f"nested deeper than {MAX_DEPTH} levels")


def test_json_at_the_bound_parses() -> None:
    text = "[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH
    assert depth_of(loads_json(text, "body")) == MAX_DEPTH


def test_brackets_inside_json_strings_are_not_nesting() -> None:
    text = '{"a": "' + "[{" * 1000 + '\\"[", "b": ["]]]"]}'
    assert loads_json(text, "body") == {"a": "[{" * 1000 + '"[', "b": ["]]]"]}


def test_an_unterminated_string_hides_no_nesting_from_the_scan() -> None:
    assert text_depth('"abc' + "[" * 100) == 100


def test_lone_surrogates_become_replacement_characters_and_pairs_stay() -> None:
    value = loads_json('{"\\ud800k": ["\\udfff", "\\ud83d\\ude00"]}', "answer")
    assert value == {"\ufffdk": ["\ufffd", "\U0001f600"]}


def test_lone_surrogates_in_a_str_given_become_replacement_characters_too() -> None:
    # Python makes them from bytes that are not UTF-8 (surrogateescape): no escape in the text.
    assert loads_json('["a\udcff"]', "answer") == ["a\ufffd"]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (b"\xff{}", "not UTF-8 text (byte at offset 0)"),
        ("{", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ("x" * 11, "larger than 10 bytes"),
    ],
)
def test_json_that_is_not_json_is_invalid_argument(text: str | bytes, why: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        loads_json(text, "answer", max_bytes=10)
    assert _why(error) == ("answer", why)


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 5000 + "]" * 5000,  # tomllib's RecursionError
        "a = " + "{b = " * 5000 + "1" + "}" * 5000,
        "a = " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
        ".".join(["a"] * 5000) + " = 1",  # dotted keys: no recursion in tomllib, but in every walker
        "[" + ".".join(["t"] * (MAX_DEPTH + 2)) + "]\nx = 1",
    ],
)
def test_toml_nested_past_the_bound_is_invalid_argument_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        loads_toml(text, "file", "patch.toml")
    assert _why(error) == ("file", f"patch.toml: nested deeper than {MAX_DEPTH} levels")


def test_toml_brackets_in_strings_and_comments_are_not_nesting() -> None:
    deep = "[" * 200
    text = f'a = "{deep}"  # {deep}\nb = \'{deep}\'\nc = """\n{deep}"""\n[[t.u]]\nd = [[1], [2]]\n'
    table = loads_toml(text, "file", "f.toml")
    assert table["a"] == deep and table["c"] == deep and table["t"]["u"] == [{"d": [[1], [2]]}]


def test_every_toml_reader_bounds_nesting() -> None:
    deep = "a = " + "[" * 5000 + "]" * 5000
    with pytest.raises(InvalidArgument) as error:
        parse_toml(deep, "policies", "the policy set")
    assert _why(error)[0] == "policies"
    with pytest.raises(InvalidArgument) as error:
        Bounds.from_toml("[supervisor]\n" + deep)
    assert _why(error) == ("supervisor", f"the bounds: nested deeper than {MAX_DEPTH} levels")


def test_bounds_whose_supervisor_is_no_table_are_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as error:
        Bounds.from_toml("supervisor = 1")
    assert _why(error)[0] == "supervisor"


def test_a_log_stream_entry_nested_past_the_bound_reads_as_an_empty_entry() -> None:
    # Anyone who can write the bus's `logs` stream wrote this; every Tail reads it.
    entry = decode_entry(b"1-0", {b"j": b'{"f": ' + b"[" * 5000 + b"]" * 5000 + b"}"})
    assert entry.id == "1-0" and entry.time_ns == 0 and entry.message == ""
