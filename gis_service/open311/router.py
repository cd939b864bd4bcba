"""Open311 GeoReport v2 at /open311/v2 (JSON and XML; errors as the spec's list).

Services are the hazard categories; requests are hazards, identified by their public code.
POST requests is form-encoded with an ``api_key`` whose scopes include ``open311``, and goes
through the same report function as POST /api/v1/hazards (routing, snapping, audit).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gis_service.auth.deps import PUBLIC_READ, ClientIp, require
from gis_service.auth.principal import Principal
from gis_service.catalog.schemas import PHONE_PATTERN, X_DECLARED
from gis_service.errors import BadRequest, DomainError, NotFound
from gis_service.hazards.reporting import report_hazard
from gis_service.hazards.schemas import ReportIn, Severity
from gis_service.http.deps import CatalogDep, Conn, SettingsDep
from gis_service.http.errors import describe_validation, headers_of, status_of
from gis_service.instants import add_clamped, parse_instant
from gis_service.open311 import service

MAX_RANGE_DAYS = 90
MAX_REQUESTS = 1000


def _fmt_of(request: Request) -> str:
    return "xml" if request.url.path.endswith(".xml") else "json"


def respond(fmt: str, root: str, value: Any, status: int = 200) -> Response:
    """A JSON or XML response of the same document."""
    if fmt == "xml":
        return Response(
            service.xml_document(root, value),
            status_code=status,
            media_type="text/xml; charset=utf-8",
        )
    return JSONResponse(value, status_code=status)


def error_response(fmt: str, status: int, description: str) -> Response:
    """The spec's error list in the requested format."""
    return respond(fmt, "errors", service.error_list(status, description), status)


def refusal(status: int, code: str, message: str, path: str) -> Response:
    """An edge refusal (gis_service.http.guard) of an Open311 URL, as the spec's error list."""
    return error_response("xml" if path.endswith(".xml") else "json", status, message)


class Open311Route(APIRoute):
    """A route whose errors come as GeoReport v2 error lists in the requested format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler (dependencies included) to translate every client error."""
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            fmt = _fmt_of(request)
            try:
                return await handler(request)
            except DomainError as exc:
                resp = error_response(fmt, status_of(exc), exc.message)
                for k, v in (headers_of(exc) or {}).items():
                    resp.headers[k] = v
                return resp
            except RequestValidationError as exc:
                return error_response(fmt, 400, describe_validation(exc.errors()))
            except StarletteHTTPException as exc:
                return error_response(fmt, exc.status_code, str(exc.detail))

        return wrapped


_XML = "text/xml"
# GeoReport v2 errors: [{code, description}] in the requested format (XML: <errors><error>…).
_ERROR_LIST: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}
_ERROR_CONTENT = {"application/json": {"schema": _ERROR_LIST}, _XML: {"schema": {}}}
# Every answer an Open311 operation can give (issue 11, finding 12): the spec's statuses with
# its error list, not FastAPI's 422 (request validation is a 400 here); .xml answers in XML.
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {_XML: {"schema": {}}}},
    **{
        status: {"description": description, "content": _ERROR_CONTENT}
        for status, description in (
            (400, "A missing or malformed parameter, or a refusal at the edge (NUL, bad JSON)."),
            (401, "api_key unknown, expired or revoked (creating a request)."),
            (403, "The api_key lacks the open311 scope (creating a request)."),
            (404, "Unknown format (use .json or .xml), service code, request or token."),
            (413, "The body is larger than this operation accepts."),
            (415, "The body's media type is not one this operation reads."),
        )
    },
    503: {
        "description": "The database is unreachable; retry later.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    },
}

router = APIRouter(
    prefix="/open311/v2", tags=["open311"], route_class=Open311Route, responses=_RESPONSES
)
OPEN311_WRITE = require(scopes={"open311"})
Fmt = Annotated[str, Path(description="json or xml")]
Public = Annotated[Principal, Depends(PUBLIC_READ)]
Jurisdiction = Annotated[
    str | None, Query(description="Accepted and ignored: this server has one jurisdiction.")
]


def _check_fmt(fmt: str) -> str:
    if fmt not in service.FORMATS:
        raise NotFound(f"Unknown format {fmt!r}: use .json or .xml.")
    return fmt


async def local_zone(settings: SettingsDep) -> ZoneInfo:
    """The zone Open311 times are written in (the service's local time)."""
    return ZoneInfo(settings.local_timezone)


LocalZone = Annotated[ZoneInfo, Depends(local_zone)]


@router.get("/services.{fmt}", summary="Open311: service list (the hazard categories)")
def services(
    catalog: CatalogDep, fmt: Fmt, _: Public, jurisdiction_id: Jurisdiction = None
) -> Response:
    """Every hazard category as a service; ``group`` is its 四必报 class."""
    fmt = _check_fmt(fmt)
    return respond(fmt, "services", service.service_list(catalog))


@router.get("/services/{code}.{fmt}", summary="Open311: service definition")
def service_definition(
    catalog: CatalogDep, code: str, fmt: Fmt, _: Public, jurisdiction_id: Jurisdiction = None
) -> Response:
    """The attributes a request of this service may carry: severity, accuracy, facility code."""
    fmt = _check_fmt(fmt)
    cat = catalog.hazard_categories.get(code)
    if cat is None:
        raise NotFound(f"No service has the code {code!r}.")
    return respond(fmt, "service_definition", service.service_definition(cat))


def _when(raw: str | None, name: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        return parse_instant(raw)
    except ValueError as exc:
        raise BadRequest(f"{name} must be a W3C datetime such as 2026-01-01T00:00:00Z.") from exc


def _csv(raw: str | None) -> list[str] | None:
    items = [x.strip() for x in (raw or "").split(",") if x.strip()]
    return items or None


@router.get("/requests.{fmt}", summary="Open311: service requests (hazards)")
def list_requests(
    request: Request,
    conn: Conn,
    tz: LocalZone,
    fmt: Fmt,
    _: Public,
    service_request_id: Annotated[str | None, Query(description="Comma list of ids.")] = None,
    service_code: Annotated[str | None, Query(description="Comma list of services.")] = None,
    start_date: Annotated[str | None, Query(description="Requested at or after.")] = None,
    end_date: Annotated[str | None, Query(description="Requested at or before.")] = None,
    status: Annotated[str | None, Query(description="open, closed, or both.")] = None,
    jurisdiction_id: Jurisdiction = None,
) -> Response:
    """Requests by id (which overrides every other filter), or by service, period and status;
    without dates, the last 90 days. A range may span at most 90 days."""
    fmt = _check_fmt(fmt)
    codes = _csv(service_request_id)
    start, end = _when(start_date, "start_date"), _when(end_date, "end_date")
    try:
        statuses = service.statuses_for(status)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    if codes:
        services_, statuses, start, end = None, None, None, None
    else:
        services_ = _csv(service_code)
        if start and end and end < start:
            raise BadRequest("end_date is before start_date.")
        window = timedelta(days=MAX_RANGE_DAYS)
        if start and end and end - start > window:
            raise BadRequest(f"A range may span at most {MAX_RANGE_DAYS} days.")
        if start is None and end is None:
            start = datetime.now(UTC) - window
        elif start is None:
            start = add_clamped(end, -window)
        elif end is None:
            end = add_clamped(start, window)
    rows = service.find_requests(
        conn,
        codes=codes,
        services=services_,
        statuses=statuses,
        start=start,
        end=end,
        limit=MAX_REQUESTS,
    )
    base = str(request.base_url)
    return respond(fmt, "service_requests", [service.request_document(r, base, tz) for r in rows])


@router.get("/requests/{request_id}.{fmt}", summary="Open311: one service request")
def get_request(
    request: Request,
    conn: Conn,
    tz: LocalZone,
    request_id: str,
    fmt: Fmt,
    _: Public,
    jurisdiction_id: Jurisdiction = None,
) -> Response:
    """One request (a list of one, as the spec has it)."""
    fmt = _check_fmt(fmt)
    rows = service.find_requests(
        conn, codes=[request_id], services=None, statuses=None, start=None, end=None, limit=1
    )
    if not rows:
        raise NotFound(f"No service request has the id {request_id!r}.")
    doc = service.request_document(rows[0], str(request.base_url), tz)
    return respond(fmt, "service_requests", [doc])


@router.get("/tokens/{token}.{fmt}", summary="Open311: the request id behind a token")
def get_token(
    conn: Conn, token: str, fmt: Fmt, _: Public, jurisdiction_id: Jurisdiction = None
) -> Response:
    """Requests are created at once, so a token always has its id."""
    fmt = _check_fmt(fmt)
    row = service.request_by_token(conn, token)
    if row is None:
        raise NotFound(f"No request has the token {token!r}.")
    return respond(
        fmt, "service_requests", [{"service_request_id": row.public_code, "token": token}]
    )


_NO_GEOCODING = "Required: this server cannot geocode address_string or address_id."
_DESCRIPTION = "Default: the service's name. Characters XML cannot hold are dropped."
# Empty, or something left once the characters XML cannot hold are dropped and the rest is
# stripped (ReportIn's rule); no NUL (refused at the edge). "Empty" is written (?![\s\S]):
# Python's ^$ also matches a lone line break, which ReportIn refuses.
_SOME_TEXT = r"^(?![\s\S])|^[^\x00]*[^\s\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff][^\x00]*$"


@router.post("/requests.{fmt}", summary="Open311: create a service request (a hazard report)")
def create_request(
    conn: Conn,
    settings: SettingsDep,
    catalog: CatalogDep,
    ip: ClientIp,
    fmt: Fmt,
    principal: Annotated[Principal, Depends(OPEN311_WRITE)],
    # The form states what a report (ReportIn) takes, so that a client of this document is
    # not refused with 400 for a value it could not know was wrong (issue 11, finding 12).
    service_code: Annotated[
        str, Form(min_length=1, json_schema_extra={X_DECLARED: "code:hazard_categories"})
    ],
    lat: Annotated[float, Form(ge=-90, le=90, description=_NO_GEOCODING)],
    long: Annotated[float, Form(ge=-180, le=180, description=_NO_GEOCODING)],
    address_string: Annotated[str | None, Form(max_length=500)] = None,
    address_id: Annotated[str | None, Form()] = None,
    email: Annotated[str | None, Form(max_length=200)] = None,
    device_id: Annotated[str | None, Form(max_length=200)] = None,
    account_id: Annotated[str | None, Form(max_length=200)] = None,
    first_name: Annotated[str | None, Form(max_length=50)] = None,
    last_name: Annotated[str | None, Form(max_length=50)] = None,
    phone: Annotated[str | None, Form(pattern=PHONE_PATTERN)] = None,
    description: Annotated[
        str | None,
        Form(
            max_length=4000,
            description=_DESCRIPTION,
            json_schema_extra={X_DECLARED: {"pattern": _SOME_TEXT}},  # ReportIn checks it
        ),
    ] = None,
    media_url: Annotated[str | None, Form(max_length=2000)] = None,
    api_key: Annotated[str | None, Form(description="The API key (scope open311).")] = None,
    jurisdiction_id: Annotated[str | None, Form()] = None,
    severity: Annotated[Severity | None, Form(alias="attribute[severity]")] = None,
    accuracy_m: Annotated[float | None, Form(alias="attribute[accuracy_m]", ge=0, le=10000)] = None,
    facility_code: Annotated[
        str | None, Form(alias="attribute[facility_code]", max_length=64)
    ] = None,
) -> Response:
    """Create a hazard from a form-encoded Open311 request (lat/long in WGS84; addresses
    alone cannot be geocoded here). The reporter's name, phone and e-mail stay private."""
    fmt = _check_fmt(fmt)
    if service_code not in catalog.hazard_categories:
        raise NotFound(f"No service has the code {service_code!r}.")
    # cut to a report's reporter_name: two names of 50 may make 101 characters
    name = " ".join(p for p in (first_name, last_name) if p)[:100] or None
    token = f"o311-{uuid.uuid4()}"
    try:
        report = ReportIn(
            category=service_code,
            lon=long,
            lat=lat,
            accuracy_m=accuracy_m,
            description=description or catalog.hazard_categories[service_code].name_zh,
            severity=severity,
            source="resident",
            address=address_string,
            facility_code=facility_code,
            reporter_name=name,
            reporter_phone=phone,
        )
    except ValidationError as exc:
        raise BadRequest(describe_validation(exc.errors()) or str(exc)) from exc
    result = report_hazard(
        conn,
        settings=settings,
        catalog=catalog,
        principal=principal,
        report=report,
        photos=[],
        ip=ip,
        idempotency_key=token,
        scope="open311",
        event_data={
            "open311": {
                k: v
                for k, v in {
                    "email": email,
                    "device_id": device_id,
                    "account_id": account_id,
                    "media_url": media_url,
                    "address_id": address_id,
                }.items()
                if v
            }
        },
    )
    code = service.request_code(conn, result.hazard_id)
    grid = result.facility
    notice = f"已受理，编号 {code}。" + (f"关联部件 {grid['code']}。" if grid else "")
    return respond(
        fmt,
        "service_requests",
        [
            {
                "service_request_id": code,
                "token": token,
                "service_notice": notice,
                "account_id": account_id,
            }
        ],
        status=201,
    )
