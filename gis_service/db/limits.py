"""Ranges of PostgreSQL's column types that values from outside must fit before they reach
SQL (a larger number fails there, after the request has done its work)."""

from __future__ import annotations

BIGINT_MAX = 2**63 - 1  # ids
BIGINT_MIN = -BIGINT_MAX - 1
INTEGER_MAX = 2**31 - 1  # versions, counts
# How long one statement of a request may run before PostgreSQL cancels it (every pool,
# sync and async, sets it; the error table answers 504 statement_timeout).
STATEMENT_TIMEOUT_S = 60
