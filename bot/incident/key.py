"""An incident's key, `INC-7`: parsed and written in one place, for the core and every adapter.

    IncidentKey.parse("INC-7")   → IncidentKey(7)      str(IncidentKey(7)) → "INC-7"
    IncidentKey.parse("#7")      → IncidentKey(7)      (lenient, for what people type)
    IncidentKey.parse("#7", strict=True) → None        (strict, for ids we wrote: buttons, metadata)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "INC"
# For embedding in other patterns (button ids, custom ids): exactly what `str(key)` writes.
PATTERN = rf"{PREFIX}-[0-9]{{1,9}}"
_STRICT = re.compile(rf"^{PREFIX}-([0-9]{{1,9}})$", re.IGNORECASE)
_LENIENT = re.compile(rf"^(?:{PREFIX}-?)?#?([0-9]{{1,9}})$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class IncidentKey:
    number: int

    def __str__(self) -> str:
        return f"{PREFIX}-{self.number}"

    @classmethod
    def parse(cls, text: str, *, strict: bool = False) -> IncidentKey | None:
        """`INC-7` (any case); leniently also `INC7`, `#7` and `7`. None when it is not a key."""
        match = (_STRICT if strict else _LENIENT).match(text.strip())
        return cls(int(match.group(1))) if match else None


def key_of(number: int) -> str:
    """`7` → `INC-7`."""
    return str(IncidentKey(number))
