"""Scrub secrets and phone numbers from text bound for logs or reports.

Logs are read by more people than the data is, and kept longer: a log line must never carry a
password, a session, bearer or API key secret, or a phone number (personal data, 《个人信息保护法》
第二十八条 counts a person's contact data with their identity). Structured request logs carry
no such field to begin with; this is the second line of defence for free text such as an
error message or a query shown by the doctor.
"""

from __future__ import annotations

import re

from gis_service.auth.tokens import API_KEY_PREFIX, BEARER_PREFIX, SESSION_PREFIX

MASK = "[redacted]"
_PATTERNS = [
    # Our own secrets carry a kind prefix: gss_…, gst_…, gsk_….
    re.compile(rf"\b(?:{SESSION_PREFIX}|{BEARER_PREFIX}|{API_KEY_PREFIX})_[A-Za-z0-9_\-]{{6,}}"),
    # key=value and "key": "value" forms of secret-bearing names.
    re.compile(
        r"""(?i)((?:api[_-]?key|password|passwd|token|secret|authorization|cookie|csrf)"""
        r"""["']?\s*[:=]\s*["']?)(?:Bearer\s+)?[^\s"'&,;}]+"""
    ),
    # Phone numbers: mainland mobiles (1[3-9] + 9 digits), numbers written with separators
    # (0371-12345678, 100-7777-0000) and any bare run of exactly 11 digits. Grid codes (12 or
    # 15 digits) and ids stay readable.
    re.compile(r"(?<![\w.])\+?(?:86[- ]?)?1[3-9]\d(?:[- ]?\d){8}(?!\d)"),
    re.compile(r"(?<![\w.])\d{3,4}-\d{3,4}-?\d{4}(?!\d)"),
    re.compile(r"(?<![\w.])\d{11}(?![\d.])"),
]


def redact(text: str) -> str:
    """``text`` with secrets and phone numbers masked."""
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        else:
            text = pattern.sub(MASK, text)
    return text
