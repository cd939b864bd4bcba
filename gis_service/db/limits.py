"""Ranges of PostgreSQL's column types that values from outside must fit before they reach
SQL (a larger number fails there, after the request has done its work)."""

from __future__ import annotations

BIGINT_MAX = 2**63 - 1  # ids
INTEGER_MAX = 2**31 - 1  # versions, counts
