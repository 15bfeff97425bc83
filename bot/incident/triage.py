"""Suggest the scenario playbook whose keywords best match an incident's title and impact."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from playbooks.schema import Scenario


def _words(text: str) -> str:
    """' word word ' with punctuation flattened, so phrase matching respects word boundaries."""
    return " " + " ".join(re.sub(r"[^\w]+", " ", text.lower()).split()) + " "


@lru_cache(maxsize=4096)
def _phrase(keyword: str) -> str:
    """A keyword as `_words` would find it; the same few hundred keywords are matched at every declare."""
    return _words(keyword)


def suggest_playbook(scenarios: Iterable[Scenario], text: str) -> Scenario | None:
    """The scenario with the most keyword hits (whole words/phrases, case-insensitive); None when nothing hits.
    Ties go to the scenario listed first by name, so the suggestion is stable."""
    haystack = _words(text)
    best: tuple[int, str] | None = None
    chosen = None
    for scenario in sorted(scenarios, key=lambda s: s.name):
        hits = sum(1 for keyword in scenario.keywords if _phrase(keyword) in haystack)
        if hits and (best is None or hits > best[0]):
            best, chosen = (hits, scenario.name), scenario
    return chosen
