"""Text from outside that every output format can carry.

XML 1.0 (§2.2) has no way to write most C0 control characters, not even as a character
reference: one vertical tab in a resident's description made the Open311 XML document
unparseable. Reports and moves drop them on the way in (tab, newline and carriage return
stay), and XML writers drop them on the way out, for text that predates the input filter.
"""

from __future__ import annotations

import re

# What XML 1.0 cannot hold: C0 controls but tab, LF and CR; the non-characters U+FFFE/FFFF.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def printable(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold."""
    return XML_ILLEGAL.sub("", text)
