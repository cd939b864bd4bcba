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

_SEPARATORS = re.compile(r"[\s\-.()（）]+")
_MOBILE = re.compile(r"^(?:\+?0{0,2}86)?(1[3-9]\d{9})$")
# Two-digit area codes are 10 and 20–29; every other area code has three digits.
_LANDLINE = re.compile(
    r"^(?:\+?0{0,2}86)?0?(10|2\d|[3-9]\d{2})(\d{7,8})(?:(?:转|ext\.?|x|#)(\d{1,6}))?$",
    re.IGNORECASE,
)
_LANDLINE_DASH_EXT = re.compile(r"^(.*\d{7,8})-(\d{1,6})$")
MAX_LENGTH = 40

PHONE_HINT = (
    "a mainland mobile number (11 digits starting 13–19, e.g. 13812345678) or a landline with "
    "its area code (e.g. 0371-66123456, an extension as 转123)"
)


def normalize_phone(raw: str) -> str:
    """The stored form of a phone number; ValueError saying what a phone looks like."""
    text = raw.strip()
    if not text or len(text) > MAX_LENGTH:
        raise ValueError(f"not a phone number: give {PHONE_HINT}")
    # A landline's extension may follow a dash ("0371-6612 3456-801"): keep it apart before
    # the dashes between digit groups are dropped.
    extension = None
    dashed = _LANDLINE_DASH_EXT.match(text.replace(" ", ""))
    if dashed and text.lstrip("+").startswith(("0", "86")):
        head, extension = dashed.groups()
        if _LANDLINE.match(_SEPARATORS.sub("", head)) and not _MOBILE.match(
            _SEPARATORS.sub("", head)
        ):
            text = head
        else:
            extension = None
    compact = _SEPARATORS.sub("", text)
    mobile = _MOBILE.match(compact)
    if mobile and extension is None:
        return mobile.group(1)
    landline = _LANDLINE.match(compact)
    if landline and (compact.lstrip("+").startswith(("0", "86"))):
        area, number, ext = landline.groups()
        ext = ext or extension
        return f"0{area}-{number}" + (f"-{ext}" if ext else "")
    raise ValueError(f"{raw.strip()[:MAX_LENGTH]!r} is not a phone number: give {PHONE_HINT}")


def phone_digits(raw: str) -> str:
    """The digits of a search term, for matching stored numbers whatever their punctuation."""
    return re.sub(r"\D", "", raw)
