"""Spreadsheet cells that cannot become formulas: text a resident typed (a description
starting with '=', '+', '-' or '@') is a formula to Excel when it opens a CSV or an XLSX
string cell written as one (OWASP "CSV injection"). Exports prefix such text with an
apostrophe, which spreadsheets show as plain text; imports remove the prefix again, so an
export imports back into the same rows."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pandas as pd

_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A plain number is not a formula, and '-3.5' must stay a number.
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
# A field of CSV text that starts with one of _STARTS, quoted or not.
_RISKY_CSV = re.compile(r'(?:^|[,\n])"?[=+\-@\t\r]')


def neutralise(value: Any) -> Any:
    """Text that a spreadsheet would read as a formula, prefixed with an apostrophe."""
    if isinstance(value, str) and value.startswith(_STARTS) and not _NUMBER.match(value):
        return "'" + value
    return value


def neutralise_sql(expr: str) -> str:
    """SQL: the text ``expr`` as ``neutralise`` leaves it (exports build their cells in
    PostgreSQL; tests compare the two on the same strings)."""
    # A bracket of the starting characters ('-' first, so it is no range; tab and return as
    # the regex escapes \t and \r, which PostgreSQL's advanced regexes read in brackets too).
    chars = "".join(c for c in _STARTS if c != "-").replace("\t", r"\t").replace("\r", r"\r")
    return (
        f"(CASE WHEN {expr} ~ '^[-{chars}]' AND {expr} !~ '{_NUMBER.pattern}'"
        f" THEN '''' || {expr} ELSE {expr} END)"
    )


def restore(value: Any) -> Any:
    """The text ``neutralise`` wrote, without its apostrophe."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(_STARTS):
        return value[1:]
    return value


def _map_text(frame: pd.DataFrame, func: Any) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
            out[column] = series.map(func, na_action="ignore")
    return out


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every text cell of a table to be written as CSV or XLSX, neutralised."""
    return _map_text(frame, neutralise)


def restore_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every text cell of a table read from CSV or XLSX, restored."""
    return _map_text(frame, restore)


def neutralise_csv(text: str) -> str:
    """CSV text with every risky field neutralised (unchanged when none is)."""
    if not _RISKY_CSV.search(text):
        return text
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(text, newline="")):
        writer.writerow([neutralise(cell) for cell in row])
    return out.getvalue()
