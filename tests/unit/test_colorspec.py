"""Names under colors/ on their own: what each asks for, and what is refused
without a request."""

from __future__ import annotations

import pytest

from aionfs.views.colorspec import BadColor, parse

FAMILIES = frozenset({"earth_tone", "blue"})


@pytest.mark.parametrize(("name", "key"), [
    ("#C4A87C", "hex:#c4a87c"),
    ("c4a87c", "hex:#c4a87c"),
    ("#abc", "hex:#aabbcc"),
    ("#c4a87c~10", "hex:#c4a87c~10"),
    ("Earth_Tone", "family:earth_tone"),
    ("walnut", "name:walnut"),
    ("dusty rose~0", "name:dusty rose~0"),
])
def test_a_name_stands_for_one_query(name: str, key: str) -> None:
    assert parse(name, FAMILIES).key == key


def test_two_spellings_of_a_color_are_one_query() -> None:
    assert parse("#ABC", FAMILIES).key == parse("aabbcc", FAMILIES).key


@pytest.mark.parametrize("name", ["#12345", "#ggg", "walnut~101", "walnut~-1", "walnut~x",
                                  "9lives", "a/b", "x" * 80])
def test_what_cannot_be_a_color_is_refused(name: str) -> None:
    with pytest.raises(BadColor):
        parse(name, FAMILIES)


def test_the_api_gets_the_query_it_asks_for() -> None:
    assert parse("#c4a87c~10", FAMILIES).api_args() == {
        "hex_code": "#c4a87c", "color_family": None, "color_name": None,
        "delta_e_threshold": 10.0}
