"""Lists shared by every domain: paging, output format (GeoJSON or CSV), links, and the
sending of bodies that PostgreSQL built (JSON via json_agg, CSV via COPY). The SQL side of
the same lists is gis_service.db.geojson."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote_plus

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection, TextClause
from sqlalchemy.dialects import postgresql
from starlette.concurrency import run_in_threadpool

from gis_service.config import Settings
from gis_service.db.limits import BIGINT_MAX
from gis_service.db.reads import ReadDb
from gis_service.http.deps import get_settings, query_pairs
from gis_service.http.responses import GeoJSONResponse
from gis_service.interchange.cells import neutralise_csv

MAX_OFFSET = 1_000_000


@dataclass(frozen=True)
class Page:
    """One page of a list: ``limit`` (already clamped) and ``offset``."""

    limit: int
    offset: int

    def as_params(self) -> dict[str, int]:
        """Bound parameters for LIMIT :limit OFFSET :offset."""
        return {"limit": self.limit, "offset": self.offset}


async def page_query(
    settings: Annotated[Settings, Depends(get_settings)],
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=BIGINT_MAX,
            description="Page size; a value above the maximum is clamped to it.",
        ),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
) -> Page:
    """Parse ``limit`` and ``offset``; a too-large limit is clamped, never refused."""
    size = settings.default_limit if limit is None else min(limit, settings.max_limit)
    return Page(size, offset)


class OutputFormat(StrEnum):
    """Formats of a list: GeoJSON (default) or CSV."""

    geojson = "geojson"
    json = "json"
    csv = "csv"


async def format_query(
    request: Request,
    f: Annotated[
        OutputFormat | None,
        Query(description="Output format: geojson (default) or csv; Accept: text/csv works too."),
    ] = None,
) -> OutputFormat:
    """The output format from ``f`` or, failing that, the Accept header."""
    if f is not None:
        return OutputFormat.geojson if f is OutputFormat.json else f
    accept = request.headers.get("accept", "")
    if "text/csv" in accept and "json" not in accept:
        return OutputFormat.csv
    return OutputFormat.geojson


PageDep = Annotated[Page, Depends(page_query)]
FormatDep = Annotated[OutputFormat, Depends(format_query)]


def page_links(request: Request, page: Page, returned: int, matched: int) -> list[dict[str, Any]]:
    """self, next and prev links; next only while items remain.

    Each href is the request's URL without api_key (query_pairs), its other parameters
    in their order and the changed ones last, as Starlette's include_query_params writes
    them; the query is read once for all four (each of those calls parsed and re-encoded
    it: a fifth of a bbox page's CPU, py-spy of bench/api_vs_tipg.py)."""
    base = str(request.url.replace(query=""))
    # Each pair encoded once, as urlencode would (quote_plus of name and value).
    encoded = [(k, f"{quote_plus(k)}={quote_plus(v)}") for k, v in query_pairs(request)]

    def href(**changes: Any) -> str:
        kept = [pair for k, pair in encoded if k not in changes]
        added = [f"{quote_plus(k)}={quote_plus(str(v))}" for k, v in changes.items()]
        query = "&".join(kept + added)
        return f"{base}?{query}" if query else base

    links = [{"rel": "self", "type": "application/geo+json", "href": href()}]
    if page.offset + returned < matched:
        nxt = href(limit=page.limit, offset=page.offset + page.limit)
        links.append({"rel": "next", "type": "application/geo+json", "href": nxt})
    if page.offset > 0:
        prv = href(limit=page.limit, offset=max(0, page.offset - page.limit))
        links.append({"rel": "prev", "type": "application/geo+json", "href": prv})
    links.append({"rel": "alternate", "type": "text/csv", "href": href(f="csv")})
    return links


async def collection_response(
    db: ReadDb, stmt: TextClause, params: dict[str, Any], request: Request, page: Page
) -> GeoJSONResponse:
    """Run a statement that returns (body text, matched, returned) and add paging links.

    The FeatureCollection comes from PostgreSQL as text; only the links are spliced in here,
    so no feature is parsed in Python.
    """
    row = await db.row(stmt, {**params, **page.as_params()})
    body, matched, returned = row[0], row[1], row[2]
    links = json.dumps(page_links(request, page, returned, matched), ensure_ascii=False)
    # The SQL ends its object with '"features" : [...]}': splice links before the final brace.
    return GeoJSONResponse(body[:-1] + f', "links": {links}}}')


def csv_response(
    conn: Connection, stmt: TextClause, params: dict[str, Any], filename: str
) -> Response:
    """Run a SELECT through COPY … TO STDOUT WITH CSV HEADER and return the bytes."""
    compiled = stmt.bindparams(**params).compile(
        dialect=postgresql.psycopg2.dialect(), compile_kwargs={"render_postcompile": True}
    )
    raw = conn.connection.driver_connection
    buf = io.BytesIO()
    with raw.cursor() as cur:
        # mogrify quotes every value (psycopg2's own escaping); COPY takes no bind parameters.
        query = cur.mogrify(str(compiled), compiled.params).decode()
        cur.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)", buf)
    # Staff open these in Excel: a resident's '=…' must stay text, not run as a formula.
    text = neutralise_csv(buf.getvalue().decode("utf-8"))
    # A UTF-8 BOM so that Excel, which staff open CSVs with, shows the Chinese correctly.
    return Response(
        b"\xef\xbb\xbf" + text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


async def list_response(
    db: ReadDb,
    request: Request,
    page: Page,
    fmt: OutputFormat,
    statements: tuple[TextClause, TextClause],
    params: dict[str, Any],
    filename: str,
) -> Response:
    """A list as a GeoJSON page (``statements[0]``) or as CSV (``statements[1]``)."""
    geojson, csv = statements
    if fmt is OutputFormat.csv:
        # COPY runs on the synchronous engine, off the event loop, on its own connection.
        def run() -> Response:
            with request.app.state.engine.connect() as conn:
                return csv_response(conn, csv, {**params, **page.as_params()}, filename)

        return await run_in_threadpool(run)
    return await collection_response(db, geojson, params, request, page)
