"""`INC-7` is parsed and written in one place (bot/incident/key.py) for the core and every adapter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.incident.key import IncidentKey, key_of


@pytest.mark.parametrize(("text", "number"), [("INC-7", 7), ("inc-7", 7), (" INC-12 ", 12), ("INC7", 7), ("#7", 7),
                                              ("7", 7), ("INC-000000001", 1)])
def test_what_people_type_is_read_leniently(text: str, number: int) -> None:
    assert IncidentKey.parse(text) == IncidentKey(number)


@pytest.mark.parametrize("text", ["INC7", "#7", "7", "INC-", "INC-1234567890", "INC-7a", "PR-7", "", "INC--7"])
def test_ids_we_wrote_are_read_strictly(text: str) -> None:
    assert IncidentKey.parse(text, strict=True) is None


@pytest.mark.parametrize("text", ["INC-", "INC-1234567890", "seven", "INC-7 INC-8", "-7", "INC-7.5"])
def test_what_is_not_a_key_is_none(text: str) -> None:
    assert IncidentKey.parse(text) is None


@given(st.integers(min_value=0, max_value=999_999_999))
def test_writing_then_reading_gives_the_same_key(number: int) -> None:
    assert IncidentKey.parse(key_of(number), strict=True) == IncidentKey(number)
    assert str(IncidentKey(number)) == f"INC-{number}"
