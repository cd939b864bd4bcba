"""Thin routes of operations: /metrics (Prometheus), /ready, and the audit log export."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.exc import DBAPIError

from gis_service.auth.access import Access
from gis_service.auth.deps import (
    ADMIN_ONLY,
    client_ip,
    credentials_not_needed,
    current_principal,
)
from gis_service.auth.principal import Principal
from gis_service.errors import Invalid
from gis_service.http.deps import INSTANT_PATTERN, EngineDep, SettingsDep
from gis_service.http.errors import error_body
from gis_service.ops import metrics, readiness
from gis_service.ops.audit_export import MAX_DAYS, export_rows, parse_range
from gis_service.ops.pgtools import OpsError

router = APIRouter(tags=["system"])

_METRICS_ACCESS = Access(scopes=frozenset({"metrics"}))


def address_allowed(request: Request, allowed: list[str]) -> bool:
    """True when the caller's address lies in ``allowed`` (GIS_METRICS_ALLOW)."""
    if not allowed:
        return False
    try:
        ip = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    for entry in allowed:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


async def caller_if_any(request: Request) -> Principal:
    """The caller, resolved on a connection of its own only when credentials are presented:
    routes that must answer while the database is down (liveness, metrics) use this instead
    of a pooled connection per request. Bogus credentials are still 401."""
    # current_principal takes no connection for anonymous callers and checks credentials on
    # a connection of its own.
    return await current_principal(request)


async def anyone_alive(request: Request) -> None:
    """Anyone may ask whether the process is alive (credentials, if sent, must be valid)."""
    await caller_if_any(request)


anyone_alive.gis_access = Access(allow_anonymous=True)  # type: ignore[attr-defined]
anyone_alive.gis_resolves_caller = True  # type: ignore[attr-defined]


async def metrics_reader(request: Request, settings: SettingsDep, engine: EngineDep) -> None:
    """Admit GIS_METRICS_ALLOW addresses as they are, others with the metrics scope (so a
    scraper from an allowed address gets its figures while the database is down)."""
    if address_allowed(request, settings.metrics_allow):
        return
    _METRICS_ACCESS.check(await caller_if_any(request))


metrics_reader.gis_access = _METRICS_ACCESS  # type: ignore[attr-defined]
metrics_reader.gis_resolves_caller = True  # type: ignore[attr-defined]

_PROTECTED = {
    401: {"description": "Not from an address in GIS_METRICS_ALLOW and no credentials."},
    403: {"description": "The credentials lack the metrics scope."},
}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4."},
        **_PROTECTED,
        503: {"description": "Credentials were sent and the database is down to check them."},
    },
    dependencies=[Depends(metrics_reader)],
)
def get_metrics(engine: EngineDep) -> Response:
    """Requests and latency per route template, database pool use, open hazards by status,
    overdue hazards, import runs and tile cache use, summed over every worker. Also open to
    callers from an address in GIS_METRICS_ALLOW."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(metrics.exposition(engine), media_type=CONTENT_TYPE_LATEST)


def _not_ready(message: str, **details: object) -> JSONResponse:
    return JSONResponse(
        error_body("not_ready", message, details),
        status_code=503,
        headers={"Cache-Control": "no-store", "Retry-After": "5"},
    )


@router.get(
    "/ready",
    summary="Readiness: database reachable and schema current",
    responses={503: {"description": "The database is unreachable or migrations are pending."}},
    dependencies=[Depends(credentials_not_needed())],
)
def ready(request: Request, engine: EngineDep) -> Response:
    """200 when the database answers and its schema is at this release's newest revision; 503
    otherwise (for a load balancer). /health only says the process is alive."""
    try:
        current = readiness.schema_revision(engine)
    except DBAPIError:
        return _not_ready(
            "The database is not reachable; check that PostGIS is running "
            "(gis-service pg status) or that DATABASE_URL is right."
        )
    head = request.app.state.schema_head
    if current != head:
        return _not_ready(
            "Database migrations are pending: run `gis-service db upgrade`.",
            current=current,
            head=head,
        )
    return JSONResponse(
        {"status": "ready", "schema_revision": current}, headers={"Cache-Control": "no-store"}
    )


@router.get(
    "/api/v1/audit/export",
    tags=["admin"],
    summary="Export the audit log of a date range (CSV or JSON lines)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}, "application/x-ndjson": {}}},
        401: {"description": "Not logged in."},
        403: {"description": "Not an admin."},
        422: {"description": "since/until are not dates or times, or until is not after since."},
        503: {"description": "The database is not reachable."},
    },
    dependencies=[Depends(ADMIN_ONLY)],
)
def export_audit(
    settings: SettingsDep,
    engine: EngineDep,
    since: Annotated[
        str,
        Query(
            max_length=40,
            pattern=INSTANT_PATTERN,
            description="From this date or time, inclusive; a date or a time without offset is "
            "the office's local time (GIS_LOCAL_TIMEZONE).",
            examples=["2026-11-01"],
        ),
    ],
    until: Annotated[
        str | None,
        Query(
            max_length=40,
            pattern=INSTANT_PATTERN,
            description="Before this date or time; default now. An export covers at most "
            f"{MAX_DAYS} days from since (a later until is cut there); an until not after "
            "since exports nothing.",
        ),
    ] = None,
    format: Annotated[Literal["csv", "json"], Query(description="csv or json (lines).")] = "csv",
) -> StreamingResponse:
    """Every audit row in [since, until), oldest first, streamed (no page limit)."""
    try:
        start, end = parse_range(since, until, settings.local_timezone)
    except OpsError as exc:
        raise Invalid(str(exc), since=since, until=until) from exc

    def body():
        with engine.connect() as conn:
            yield from export_rows(conn, start, end, format)

    stamp = datetime.now(UTC).strftime("%Y%m%d")
    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    ext = "csv" if format == "csv" else "jsonl"
    return StreamingResponse(
        body(),
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="audit-{stamp}.{ext}"',
            "Cache-Control": "no-store",
        },
    )
