"""Mainland China phone numbers: the one check and the one stored form of a person's phones.

Mobile numbers have 11 digits starting 13–19 (the MIIT numbering plan, YD/T 2270: 1 + a
network code 3–9 + 9 digits), written with or without +86 / 0086 and with spaces or dashes
anywhere. Landlines are a trunk prefix 0, an area code of 2 or 3 digits (010 Beijing, 020–029
the large cities, 0371 Zhengzhou …) and a 7- or 8-digit local number, optionally with an
extension (转 123, ext. 123, -123 after the number). They are stored as ``13812345678`` and
``0371-66123456`` (``-123`` for an extension), and searched by their digits.
"""

from __future__ import annotations

import re

from gis_service.plaintext import CONTROL_CHARACTERS

# The one rule, written once as a regular expression over the text as sent: the server
# reads a phone with it (fullmatch, named parts) and the OpenAPI document states it as the
# same pattern (PHONE_PATTERN), so that what a client may send is what the server takes
# (issue 11, finding 12). Separators (blanks other than control characters, - . ( ) and
# full-width parentheses) may stand between any two parts; an extension follows 转, ext,
# x or #, or a dash right after the number (only spaces around that dash).
_S = rf"(?:[^\S{CONTROL_CHARACTERS}]|[-.()（）])*"
_BLANK = rf"[^\S{CONTROL_CHARACTERS}]*"


def _digits(low: int, high: int | None = None) -> str:
    """``low`` (to ``high``) ASCII digits with separators between them."""
    more = f"{low - 1}" if high is None else f"{low - 1},{high - 1}"
    return rf"[0-9](?:{_S}[0-9]){{{more}}}"


_COUNTRY = rf"(?:\+{_S})?(?:0{_S}){{0,2}}8{_S}6{_S}"  # +86, 0086, 86
_MOBILE = rf"(?P<mobile>1{_S}[3-9]{_S}{_digits(9)})"
_AREA = rf"(?P<area>1{_S}0|2{_S}[0-9]|[3-9]{_S}[0-9]{_S}[0-9])"
# The number's 7 digits are tried before 8, so that "0371-6612345-6" keeps its extension.
_NUMBER = rf"(?P<number>[0-9](?:{_S}[0-9]){{6,7}}?)"
_MARKED_EXTENSION = rf"{_S}(?:转|[eE]{_S}[xX]{_S}[tT]|[xX]|#){_S}(?P<ext>{_digits(1, 6)})"
_DASHED_EXTENSION = r" *- *(?P<dashed>[0-9](?: *[0-9]){0,5})"
_LANDLINE = (
    rf"(?:{_COUNTRY}(?:0{_S})?|0{_S}){_AREA}{_S}{_NUMBER}"
    rf"(?:{_MARKED_EXTENSION}{_S}|{_DASHED_EXTENSION}{_BLANK}|{_S})"
)
_PHONE = re.compile(rf"{_S}(?:(?:{_COUNTRY})?{_MOBILE}{_S}|{_LANDLINE})")
MAX_LENGTH = 40
# The same expression for the document: anchored, its named parts left unnamed.
PHONE_PATTERN = "^" + re.sub(r"\(\?P<\w+>", "(?:", _PHONE.pattern) + "$"

PHONE_HINT = (
    "a mainland mobile number (11 digits starting 13–19, e.g. 13812345678) or a landline with "
    "its area code (e.g. 0371-66123456, an extension as 转123)"
)


def _only_digits(part: str) -> str:
    return re.sub(r"[^0-9]", "", part)


def normalize_phone(raw: str) -> str:
    """The stored form of a phone number; ValueError saying what a phone looks like."""
    found = _PHONE.fullmatch(raw) if len(raw) <= MAX_LENGTH else None
    if found is None:
        shown = raw.strip()[:MAX_LENGTH]
        raise ValueError(f"{shown!r} is not a phone number: give {PHONE_HINT}")
    if found["mobile"]:
        return _only_digits(found["mobile"])
    area, number = _only_digits(found["area"]), _only_digits(found["number"])
    extension = _only_digits(found["ext"] or found["dashed"] or "")
    return f"0{area}-{number}" + (f"-{extension}" if extension else "")


def phone_digits(raw: str) -> str:
    """The digits of a search term, for matching stored numbers whatever their punctuation."""
    return re.sub(r"\D", "", raw)
