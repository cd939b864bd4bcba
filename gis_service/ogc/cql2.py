"""A CQL2-text parser that turns a filter into a PostgreSQL boolean expression.

Supported (OGC 21-065r2): Basic CQL2 (comparisons =, <>, <, >, <=, >=, IS [NOT] NULL,
AND/OR/NOT, parentheses, string/number/boolean/DATE()/TIMESTAMP() literals), the advanced
comparison operators ([NOT] LIKE, [NOT] BETWEEN, [NOT] IN) and the spatial functions S_INTERSECTS,
S_DISJOINT, S_CONTAINS, S_WITHIN, S_EQUALS, S_TOUCHES, S_CROSSES and S_OVERLAPS with WKT and
BBOX(...) literals.

The SQL this module writes holds only fixed keywords, the column expressions the caller hands
in (never text from the filter) and bind-parameter names; every literal of the filter becomes a
bound parameter. Property names are checked against the queryables before anything is written.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
import shapely.wkt
from shapely.errors import GEOSException

from gis_service.db.limits import BIGINT_MAX, BIGINT_MIN
from gis_service.instants import parse_date, parse_instant

MAX_LENGTH = 4096
MAX_DEPTH = 20

# Property types of the queryables; "geometry" is the one spatial property.
STRING, INTEGER, NUMBER, BOOLEAN, DATETIME, GEOMETRY = (
    "string",
    "integer",
    "number",
    "boolean",
    "datetime",
    "geometry",
)
_NUMERIC = {INTEGER, NUMBER}
_ORDERED = {INTEGER, NUMBER, STRING, DATETIME}

_SPATIAL_FUNCTIONS = {
    "S_INTERSECTS": "ST_Intersects",
    "S_DISJOINT": "ST_Disjoint",
    "S_CONTAINS": "ST_Contains",
    "S_WITHIN": "ST_Within",
    "S_EQUALS": "ST_Equals",
    "S_TOUCHES": "ST_Touches",
    "S_CROSSES": "ST_Crosses",
    "S_OVERLAPS": "ST_Overlaps",
}
_GEOMETRY_KEYWORDS = {
    "POINT",
    "LINESTRING",
    "POLYGON",
    "MULTIPOINT",
    "MULTILINESTRING",
    "MULTIPOLYGON",
    "GEOMETRYCOLLECTION",
}
_KEYWORDS = {"AND", "OR", "NOT", "LIKE", "BETWEEN", "IN", "IS", "NULL", "TRUE", "FALSE"}
_COMPARISONS = {"=", "<>", "<", ">", "<=", ">="}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^']|'')*')
  | (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<qid>"(?:[^"]|"")+")
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><>|<=|>=|=|<|>)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<comma>,)
  | (?P<sign>[+-])
    """,
    re.VERBOSE,
)


class Cql2Error(ValueError):
    """The filter cannot be used; the message says what is wrong and where."""


@dataclass(frozen=True)
class Field:
    """A queryable as the translator sees it: its SQL expression and its type."""

    sql: str
    type: str


@dataclass(frozen=True)
class _Token:
    kind: str
    value: Any
    pos: int


@dataclass(frozen=True)
class _Operand:
    """A property, a literal or a geometry; literals are bound only once their type is known."""

    kind: str  # "property" | "literal"
    type: str  # for literals: string, number, boolean, date, timestamp, geometry
    sql: str = ""  # properties and already-bound geometries
    value: Any = None
    label: str = ""


def _tokenize(source: str) -> list[_Token]:
    """Split the filter into tokens; a geometry literal becomes one token holding its WKT."""
    tokens: list[_Token] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            ch = source[pos]
            if ch == "'":
                raise Cql2Error(f"unterminated string literal at position {pos + 1}")
            raise Cql2Error(f"unexpected character {ch!r} at position {pos + 1}")
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "id" and text.upper() in _GEOMETRY_KEYWORDS:
            end = _wkt_end(source, m.end(), pos)
            tokens.append(_Token("geom", source[pos:end], pos))
            pos = end
            continue
        if kind == "str":
            tokens.append(_Token("str", text[1:-1].replace("''", "'"), pos))
        elif kind == "qid":
            tokens.append(_Token("qid", text[1:-1].replace('""', '"'), pos))
        elif kind != "ws":
            tokens.append(_Token(kind, text, pos))
        pos = m.end()
    tokens.append(_Token("eof", None, len(source)))
    return tokens


def _wkt_end(source: str, pos: int, start: int) -> int:
    """The end of a WKT literal starting at ``start``: the parenthesis closing the first one."""
    depth = 0
    i = pos
    while i < len(source):
        ch = source[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
            if depth < 0:
                break
        elif depth == 0 and not (ch.isspace() or ch in "Zz"):
            break
        i += 1
    raise Cql2Error(
        f"geometry literal at position {start + 1} is incomplete; write e.g. "
        "POINT(113.6 34.7) or POLYGON((lon lat, ...)); empty geometries are not supported"
    )


def _check_lonlat(geom: Any, where: str) -> None:
    minx, miny, maxx, maxy = geom.bounds
    ok = all(math.isfinite(v) for v in (minx, miny, maxx, maxy))
    if not ok or not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise Cql2Error(
            f"{where}: coordinates must be longitude,latitude in CRS84 "
            "(longitude in [-180, 180], latitude in [-90, 90])"
        )


def _parse_wkt(wkt: str, pos: int) -> str:
    """Check a WKT literal (valid, not empty, lon/lat) and return it normalised, 2D."""
    where = f"geometry literal at position {pos + 1}"
    try:
        geom = shapely.wkt.loads(wkt)
    except (GEOSException, ValueError) as exc:
        raise Cql2Error(f"{where} is not valid WKT: {exc}") from exc
    if geom.is_empty:
        raise Cql2Error(f"{where} is empty; empty geometries are not supported")
    geom = shapely.force_2d(geom)
    _check_lonlat(geom, where)
    if not geom.is_valid:
        raise Cql2Error(f"{where} is not a valid geometry: {shapely.is_valid_reason(geom)}")
    if geom.geom_type == "GeometryCollection":
        # GEOS cannot relate a collection whose parts overlap; its union is the same point set.
        geom = shapely.unary_union(geom)
    return shapely.to_wkt(geom, rounding_precision=-1)


def _parse_instant(text: str, kind: str, pos: int) -> datetime:
    """A DATE('YYYY-MM-DD') or TIMESTAMP('…Z') value, as an aware UTC datetime."""
    try:
        return parse_date(text) if kind == "date" else parse_instant(text)
    except ValueError as exc:
        raise Cql2Error(
            f"{kind} literal {text!r} at position {pos + 1} is not an RFC 3339 "
            f"{'date (YYYY-MM-DD)' if kind == 'date' else 'timestamp (YYYY-MM-DDThh:mm:ssZ)'}"
        ) from exc


def _ends_with_escape(pattern: str) -> bool:
    """True when the pattern ends in an odd run of backslashes (an escape of nothing)."""
    return (len(pattern) - len(pattern.rstrip("\\"))) % 2 == 1


class _Parser:
    """Recursive descent over the tokens: OR < AND < NOT < predicate."""

    def __init__(
        self, tokens: list[_Token], fields: dict[str, Field], params: dict[str, Any], prefix: str
    ) -> None:
        self.tokens = tokens
        self.i = 0
        self.fields = fields
        self.params = params
        self.prefix = prefix

    # ---- token helpers ------------------------------------------------------------------------
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def _next(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _is_kw(self, word: str, offset: int = 0) -> bool:
        tok = self.tokens[min(self.i + offset, len(self.tokens) - 1)]
        return tok.kind == "id" and tok.value.upper() == word

    def _accept_kw(self, word: str) -> bool:
        if self._is_kw(word):
            self.i += 1
            return True
        return False

    def _expect(self, kind: str, what: str) -> _Token:
        tok = self.tok
        if tok.kind != kind:
            raise Cql2Error(f"expected {what} at position {tok.pos + 1}, found {self._show(tok)}")
        self.i += 1
        return tok

    def _expect_kw(self, word: str) -> None:
        if not self._accept_kw(word):
            tok = self.tok
            raise Cql2Error(f"expected {word} at position {tok.pos + 1}, found {self._show(tok)}")

    @staticmethod
    def _show(tok: _Token) -> str:
        if tok.kind == "eof":
            return "the end of the filter"
        if tok.kind == "str":
            return f"string '{tok.value}'"
        if tok.kind == "geom":
            return "a geometry"
        return repr(tok.value)

    @staticmethod
    def _depth(depth: int) -> None:
        if depth > MAX_DEPTH:
            raise Cql2Error(
                f"filter is nested too deeply: at most {MAX_DEPTH} levels of parentheses and NOT"
            )

    def _bind(self, value: Any) -> str:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    # ---- grammar ------------------------------------------------------------------------------
    def parse(self) -> str:
        if self.tok.kind == "eof":
            raise Cql2Error("filter is empty")
        sql = self._or(0)
        if self.tok.kind != "eof":
            raise Cql2Error(
                f"unexpected {self._show(self.tok)} at position {self.tok.pos + 1}; "
                "combine conditions with AND or OR"
            )
        return sql

    def _or(self, depth: int) -> str:
        parts = [self._and(depth)]
        while self._accept_kw("OR"):
            parts.append(self._and(depth))
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _and(self, depth: int) -> str:
        parts = [self._not(depth)]
        while self._accept_kw("AND"):
            parts.append(self._not(depth))
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def _not(self, depth: int) -> str:
        if self._accept_kw("NOT"):
            self._depth(depth + 1)
            return f"(NOT {self._not(depth + 1)})"
        return self._primary(depth)

    def _primary(self, depth: int) -> str:
        tok = self.tok
        if tok.kind == "lp":
            self._depth(depth + 1)
            self.i += 1
            inner = self._or(depth + 1)
            self._expect("rp", "')'")
            return f"({inner})"
        if tok.kind == "id" and tok.value.upper() in _SPATIAL_FUNCTIONS:
            return self._spatial()
        return self._predicate()

    def _spatial(self) -> str:
        name = self._next().value.upper()
        self._expect("lp", f"'(' after {name}")
        a = self._operand()
        self._expect("comma", f"',' between the two arguments of {name}")
        b = self._operand()
        self._expect("rp", f"')' closing {name}")
        for arg in (a, b):
            if arg.type != GEOMETRY:
                raise Cql2Error(
                    f"{name} compares geometries: give the property 'geometry' and a geometry "
                    f"literal such as POINT(113.6 34.7) or BBOX(113.6,34.7,113.7,34.8), "
                    f"not {arg.label}"
                )
        return f"{_SPATIAL_FUNCTIONS[name]}({a.sql}, {b.sql})"

    def _predicate(self) -> str:
        start = self.tok
        left = self._operand()
        tok = self.tok
        if tok.kind == "op":
            self.i += 1
            right = self._operand()
            return self._compare(left, tok.value, right, tok.pos)
        negate = self._is_kw("NOT") and any(self._is_kw(w, 1) for w in ("LIKE", "BETWEEN", "IN"))
        if negate:
            self.i += 1
        not_sql = "NOT " if negate else ""
        if self._accept_kw("LIKE"):
            pattern = self._operand()
            if left.type == GEOMETRY or self._type_of(left, STRING) != STRING:
                raise Cql2Error(f"LIKE needs a string property, not {left.label}")
            if self._type_of(pattern, STRING) != STRING:
                raise Cql2Error(f"LIKE needs a string pattern, not {pattern.label}")
            if pattern.kind == "literal" and _ends_with_escape(pattern.value):
                raise Cql2Error(
                    "a LIKE pattern cannot end with the escape character '\\'; write '\\\\' "
                    "for a backslash"
                )
            return f"({self._sql(left, STRING)} {not_sql}LIKE {self._sql(pattern, STRING)})"
        if self._accept_kw("BETWEEN"):
            low = self._operand()
            self._expect_kw("AND")
            high = self._operand()
            kind = self._common_type(left, low, "BETWEEN", start.pos)
            self._common_type(left, high, "BETWEEN", start.pos)
            if kind not in _NUMERIC | {DATETIME}:
                raise Cql2Error(f"BETWEEN needs numbers or timestamps, not {left.label}")
            return (
                f"({self._sql(left, kind)} {not_sql}BETWEEN {self._sql(low, kind)} "
                f"AND {self._sql(high, kind)})"
            )
        if self._accept_kw("IN"):
            self._expect("lp", "'(' starting the IN list")
            items = [self._operand()]
            while self.tok.kind == "comma":
                self.i += 1
                items.append(self._operand())
            self._expect("rp", "')' closing the IN list")
            kind = left.type
            for item in items:
                kind = self._common_type(left, item, "IN", start.pos)
            listed = ", ".join(self._sql(item, kind) for item in items)
            return f"({self._sql(left, kind)} {not_sql}IN ({listed}))"
        if self._accept_kw("IS"):
            is_not = self._accept_kw("NOT")
            self._expect_kw("NULL")
            if left.kind != "property":
                raise Cql2Error("IS NULL applies to a property")
            return f"({left.sql} IS {'NOT ' if is_not else ''}NULL)"
        if left.kind == "literal" and left.type == BOOLEAN:
            return "TRUE" if left.value else "FALSE"
        raise Cql2Error(
            f"expected a comparison (=, <>, <, >, <=, >=, LIKE, BETWEEN, IN, IS NULL) after "
            f"{left.label} at position {tok.pos + 1}, found {self._show(tok)}"
        )

    def _operand(self) -> _Operand:
        tok = self._next()
        if tok.kind == "str":
            return _Operand("literal", STRING, value=tok.value, label=f"the string '{tok.value}'")
        if tok.kind in ("num", "sign"):
            return self._number(tok)
        if tok.kind == "geom":
            wkt = _parse_wkt(tok.value, tok.pos)
            sql = f"ST_GeomFromText({self._bind(wkt)}, 4326)"
            return _Operand("literal", GEOMETRY, sql=sql, label="a geometry literal")
        if tok.kind == "qid":
            return self._property(tok.value, tok.pos)
        if tok.kind == "id":
            word = tok.value.upper()
            if word in ("TRUE", "FALSE"):
                return _Operand("literal", BOOLEAN, value=word == "TRUE", label=word)
            if word in ("DATE", "TIMESTAMP") and self.tok.kind == "lp":
                self.i += 1
                text = self._expect("str", f"a quoted {word.lower()} inside {word}(...)")
                self._expect("rp", f"')' closing {word}")
                kind = word.lower()
                value = _parse_instant(text.value, kind, text.pos)
                return _Operand("literal", kind, value=value, label=f"{word}('{text.value}')")
            if word == "BBOX" and self.tok.kind == "lp":
                return self._bbox(tok)
            if self.tok.kind == "lp":
                raise Cql2Error(
                    f"function {tok.value}() at position {tok.pos + 1} is not supported; "
                    "spatial functions are " + ", ".join(sorted(_SPATIAL_FUNCTIONS))
                )
            if word == "NULL":
                raise Cql2Error("compare with NULL using 'property IS NULL'")
            if word in _KEYWORDS:
                raise Cql2Error(
                    f"expected a property or a value at position {tok.pos + 1}, found {word}"
                )
            return self._property(tok.value, tok.pos)
        raise Cql2Error(
            f"expected a property or a value at position {tok.pos + 1}, found {self._show(tok)}"
        )

    def _number(self, tok: _Token) -> _Operand:
        sign = 1
        if tok.kind == "sign":
            sign = -1 if tok.value == "-" else 1
            tok = self._expect("num", "a number after the sign")
        elif tok.kind != "num":
            raise Cql2Error(f"expected a number at position {tok.pos + 1}, found {self._show(tok)}")
        text = tok.value
        shown = text if len(text) <= 40 else text[:37] + "..."
        out_of_range = Cql2Error(f"number {shown} at position {tok.pos + 1} is out of range")
        try:
            value: int | float = int(text) if text.isdigit() else float(text)
            if isinstance(value, int) and not BIGINT_MIN <= value <= BIGINT_MAX:
                value = float(value)  # beyond bigint: compared as a double
        except OverflowError:  # an integer beyond a double's range
            raise out_of_range from None
        if isinstance(value, float) and not math.isfinite(value):
            raise out_of_range
        value = sign * value
        return _Operand("literal", NUMBER, value=value, label=f"the number {value}")

    def _bbox(self, tok: _Token) -> _Operand:
        self._expect("lp", "'(' after BBOX")
        nums: list[float] = []
        while True:
            lit = self._number(self._next())
            nums.append(float(lit.value))
            if self.tok.kind != "comma":
                break
            self.i += 1
        self._expect("rp", "')' closing BBOX")
        if len(nums) == 6:  # minx, miny, minz, maxx, maxy, maxz
            nums = [nums[0], nums[1], nums[3], nums[4]]
        if len(nums) != 4:
            raise Cql2Error(
                f"BBOX at position {tok.pos + 1} takes four numbers: minLon,minLat,maxLon,maxLat"
            )
        minx, miny, maxx, maxy = nums
        if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise Cql2Error(
                f"BBOX at position {tok.pos + 1} must be minLon,minLat,maxLon,maxLat in CRS84 "
                "with minLat ≤ maxLat"
            )
        if minx > maxx:  # across the antimeridian (OGC 21-065r2 §6.4.3, as bbox in Part 1)
            east = ", ".join(self._bind(v) for v in (minx, miny, 180.0, maxy))
            west = ", ".join(self._bind(v) for v in (-180.0, miny, maxx, maxy))
            geom = f"ST_Collect(ST_MakeEnvelope({east}, 4326), ST_MakeEnvelope({west}, 4326))"
            return _Operand("literal", GEOMETRY, sql=geom, label="BBOX")
        args = ", ".join(self._bind(v) for v in (minx, miny, maxx, maxy))
        return _Operand("literal", GEOMETRY, sql=f"ST_MakeEnvelope({args}, 4326)", label="BBOX")

    def _property(self, name: str, pos: int) -> _Operand:
        field = self.fields.get(name)
        if field is None:
            known = ", ".join(sorted(self.fields))
            raise Cql2Error(
                f"unknown property {name!r} at position {pos + 1}; the queryables are: {known}"
            )
        return _Operand("property", field.type, sql=field.sql, label=f"property {name!r}")

    # ---- typing and binding -------------------------------------------------------------------
    @staticmethod
    def _type_of(op: _Operand, hint: str) -> str:
        """The type an operand has in a comparison with something of type ``hint``."""
        if op.kind == "property":
            return op.type
        if op.type == NUMBER:
            return INTEGER if hint == INTEGER else NUMBER
        if op.type in ("date", "timestamp"):
            return DATETIME
        if op.type == STRING and hint == DATETIME:
            return DATETIME  # an RFC 3339 string compared with a timestamp property
        return op.type

    def _common_type(self, a: _Operand, b: _Operand, what: str, pos: int) -> str:
        ta = self._type_of(a, self._type_of(b, ""))
        tb = self._type_of(b, ta)
        if ta in _NUMERIC and tb in _NUMERIC:
            return NUMBER if NUMBER in (ta, tb) else INTEGER
        if ta == tb and ta != GEOMETRY:
            return ta
        raise Cql2Error(
            f"{what} at position {pos + 1} cannot compare {a.label} ({ta}) with {b.label} ({tb})"
        )

    def _sql(self, op: _Operand, kind: str, ordered: bool = False) -> str:
        if op.type == GEOMETRY:
            return op.sql
        if op.kind == "property":
            sql = op.sql
        else:
            value = op.value
            if kind == DATETIME and op.type == STRING:
                value = _parse_instant(value, "timestamp", 0)
            sql = self._bind(value)
        if kind == STRING and ordered:
            # CQL2 orders strings by code point (OGC 21-065r2 §6.4.2); the database's own
            # collation (zh-x-icu, en-x-icu on a DATABASE_URL database) would order them its
            # way. Equality needs no collation: deterministic ones agree on it, and an index
            # on the column stays usable.
            return f'({sql} COLLATE "C")'
        return sql

    def _compare(self, left: _Operand, op: str, right: _Operand, pos: int) -> str:
        if op not in _COMPARISONS:  # pragma: no cover - the tokenizer only yields these
            raise Cql2Error(f"unknown operator {op}")
        if GEOMETRY in (left.type, right.type):
            raise Cql2Error(
                f"comparison at position {pos + 1}: compare geometries with S_INTERSECTS and "
                "the other spatial functions, not with " + op
            )
        kind = self._common_type(left, right, f"'{op}'", pos)
        if kind == BOOLEAN and op not in ("=", "<>"):
            raise Cql2Error(f"booleans can only be compared with = or <>, not {op}")
        if kind not in _ORDERED | {BOOLEAN}:  # pragma: no cover - defensive
            raise Cql2Error(f"cannot compare values of type {kind}")
        ordered = op not in ("=", "<>")
        return f"({self._sql(left, kind, ordered)} {op} {self._sql(right, kind, ordered)})"


def to_sql(
    source: str, fields: dict[str, Field], params: dict[str, Any], prefix: str = "cql_"
) -> str:
    """Translate a CQL2-text filter into SQL, adding its literals to ``params``.

    Raises Cql2Error (OGC 19-079r2 /req/filter/filter-param: an invalid filter is a 400).
    """
    if len(source) > MAX_LENGTH:
        raise Cql2Error(
            f"filter is {len(source)} characters long; the most allowed is {MAX_LENGTH}"
        )
    return _Parser(_tokenize(source), fields, params, prefix).parse()
