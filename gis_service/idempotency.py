"""Writes a client may send again: an offline queue retries until it hears back, so the same
visit, patrol or hazard move can arrive twice. The first one's result is kept per (caller,
Idempotency-Key); a retry with the same body gets it back instead of acting twice, a retry
with another body is refused (422). The rows live in ``idempotency_keys`` (revision 0007);
hazard reports keep their own column (revision 0004), with the same fingerprint rule.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints
from sqlalchemy import Connection, text

from gis_service.errors import Invalid
from gis_service.plaintext import Documented

# Printable ASCII without spaces: keys go into headers and logs (8-200 characters), taken
# as sent (no stripping) and checked whole (fullmatch). The document's pattern ends in
# ``$(?!\n)`` because Python's ``$`` alone also matches before a final line break, so a
# generator reading the pattern in Python sent "key\n", which the server refuses; the
# lookahead reads the same in every engine (ECMA, Rust's fancy-regex, Python).
_KEY = re.compile(r"[\x21-\x7e]{8,200}")
KEY_PATTERN = rf"^{_KEY.pattern}$(?!\n)"


def _whole_key(value: str) -> str:
    if not _KEY.fullmatch(value):
        raise ValueError("an idempotency key is 8-200 printable ASCII characters, no spaces")
    return value


IdempotencyKeyText = Annotated[
    str,
    StringConstraints(strip_whitespace=False),  # a body model's stripping would hide " key"
    AfterValidator(_whole_key),
    Documented(KEY_PATTERN),
]

_SELECT = text(
    """
    SELECT operation, fingerprint, object_type, object_id, result
      FROM idempotency_keys WHERE principal = :principal AND key = :key
    """
)
_INSERT = text(
    """
    INSERT INTO idempotency_keys (principal, key, operation, fingerprint, object_type,
                                  object_id, result)
    VALUES (:principal, :key, :operation, :fingerprint, :object_type, :object_id,
            CAST(:result AS jsonb))
    ON CONFLICT (principal, key) DO NOTHING
    """
)


@dataclass(frozen=True)
class Earlier:
    """What the first request with a key did."""

    object_type: str
    object_id: str
    result: dict[str, Any] = field(default_factory=dict)


def fingerprint(body: dict[str, Any], photo_hashes: list[str], submitter: str) -> str:
    """SHA-256 of what a write says (the key excluded), its photos and who sent it."""
    data = {**body, "photos": list(photo_hashes), "submitter": submitter}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def earlier(
    conn: Connection, caller: str, key: str | None, operation: str, fp: str
) -> Earlier | None:
    """The first result of ``key`` for this caller, or None; 422 when the key was used for
    another write. Call it inside the write's transaction (after any row lock it takes)."""
    if not key:
        return None
    row = conn.execute(_SELECT, {"principal": caller, "key": key}).first()
    if row is None:
        return None
    if row.operation != operation or row.fingerprint != fp:
        raise Invalid(
            "This Idempotency-Key was already used for a different request. A retry must "
            "send exactly the same request; a new one needs a new key.",
            code="idempotency_key_reused",
            idempotency_key=key,
            first=row.operation,
            object_id=row.object_id,
        )
    return Earlier(row.object_type, row.object_id, row.result or {})


def remember(
    conn: Connection,
    caller: str,
    key: str | None,
    operation: str,
    fp: str,
    object_type: str,
    object_id: Any,
    result: dict[str, Any] | None = None,
) -> bool:
    """Keep the result of a write under its key, in the write's transaction. False when a
    concurrent request with the same key got there first (the caller then rolls back and
    answers with :func:`earlier`)."""
    if not key:
        return True
    done = conn.execute(
        _INSERT,
        {
            "principal": caller,
            "key": key,
            "operation": operation,
            "fingerprint": fp,
            "object_type": object_type,
            "object_id": str(object_id),
            "result": json.dumps(result or {}, default=str),
        },
    )
    return done.rowcount == 1
