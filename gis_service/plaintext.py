"""The one check of short free text that clients send (names, notes, reasons): PostgreSQL
text cannot hold NUL, and control characters have no place in a name shown on a map."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator

from gis_service.db.limits import BIGINT_MAX

# C0 controls other than tab and line breaks, DEL, and C1 controls.
_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
CONTROL_CHARACTERS = _CONTROLS  # for a pattern's character class
_CONTROL = re.compile(f"[{_CONTROLS}]")
# The same rules as patterns, for the OpenAPI document (issue 11, finding 12): text with no
# control character; a line is that, not blank once stripped, and one line once stripped.
TEXT_PATTERN = f"^[^{_CONTROLS}]*$"
_BLANK = rf"[^\S{_CONTROLS}]"  # what strip() removes, controls aside
_INK = rf"[^\s{_CONTROLS}]"
LINE_PATTERN = rf"^{_BLANK}*{_INK}([^\t\n\r{_CONTROLS}]*{_INK})?{_BLANK}*$"
NAME_PATTERN = rf"^[^{_CONTROLS}]*{_INK}[^{_CONTROLS}]*$"  # text that is not blank


def clean_text(value: str) -> str:
    """Strip surrounding blanks; ValueError for NUL or other control characters."""
    if _CONTROL.search(value):
        raise ValueError("must not contain NUL or other control characters")
    return value.strip()


def _one_line(value: str) -> str:
    value = clean_text(value)
    if "\n" in value or "\r" in value or "\t" in value:
        raise ValueError("must be one line")
    if not value:
        raise ValueError("must not be blank")
    return value


# Use with Field(max_length=…) at the field: ``name: Line = Field(max_length=50)``.
class Documented:
    """States a check's rule as a pattern in the JSON Schema only: the check itself keeps its
    own message ("must not be blank" says more than a pattern mismatch)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler(core_schema)
        schema["pattern"] = self.pattern
        return schema


Line = Annotated[str, AfterValidator(_one_line), Documented(LINE_PATTERN)]
"""One line, not blank after stripping, no control characters."""
Paragraph = Annotated[str, AfterValidator(clean_text), Documented(TEXT_PATTERN)]
"""Free text (line breaks allowed), stripped, no NUL or other control characters."""


def like_literal(term: str) -> str:
    """A search term with LIKE's wildcards (and its escape character) taken literally."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def decimal_id(ref: int | str) -> int | None:
    """An id given as an int or in ASCII digits, when it fits a PostgreSQL bigint; else None."""
    if isinstance(ref, int):
        return ref if 0 < ref <= BIGINT_MAX else None
    text = ref.strip()
    if not re.fullmatch(r"[0-9]{1,19}", text) or int(text) > BIGINT_MAX:
        return None
    return int(text)
