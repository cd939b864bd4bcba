"""Every route declares who may call it; this module finds and documents the declarations.

A route declares access with a ``require(...)`` dependency (on the route, on its router, or
at ``include_router``, or as a parameter). :func:`document_access` puts each route's
declaration into the OpenAPI document as ``x-roles`` / ``x-api-key-scopes`` and appends a
"Who may call: …" sentence to its description. Routes that are not API routes (the docs
pages, mounted static files) are declared with :func:`declare`. ``tests/test_permissions.py``
fails on any route without a declaration.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant

from gis_service.auth.access import Access
from gis_service.catalog.schemas import X_DECLARED, Catalog
from gis_service.db.limits import BIGINT_MAX
from gis_service.geo.areas import BBOX_SCHEMA, LONLAT_SCHEMA
from gis_service.http.deps import code_list_pattern

PUBLIC = Access(allow_anonymous=True)
# FastAPI's own pages: the docs and the schema are public.
BUILTIN_PUBLIC_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
_CONVERTER = re.compile(r"\{(\w+):\w+\}")
_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def declare(route: Any, access: Access) -> None:
    """Declare who may call a non-API route (a Mount of static files, a plain Route)."""
    route.gis_access = access


@dataclass(frozen=True)
class RouteInfo:
    """One route as served: its full path, methods, effective dependant and declaration."""

    path: str
    methods: frozenset[str]
    name: str
    is_api: bool
    include_in_schema: bool
    access: Access | None
    original: Any
    dependant: Dependant | None = None


def _collect(dependant: Dependant | None, out: list[Access]) -> None:
    if dependant is None:
        return
    access = getattr(dependant.call, "gis_access", None)
    if isinstance(access, Access):
        out.append(access)
    for sub in dependant.dependencies:
        _collect(sub, out)


def _merged(found: list[Access]) -> Access | None:
    if not found:
        return None
    merged = found[0]
    for other in found[1:]:
        merged = merged.merge(other)
    return merged


def _contexts(app: FastAPI) -> Iterator[tuple[Any, Any]]:
    """(original route, effective route) pairs, flattening included routers."""
    try:  # FastAPI ≥ 0.13x keeps included routers unflattened behind route contexts
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI: app.routes is already flat
        for route in app.routes:
            yield route, route
        return
    for ctx in iter_route_contexts(app.routes):
        yield ctx.original_route, ctx._effective_route


def iter_routes(app: FastAPI) -> Iterator[RouteInfo]:
    """Every route the app serves, with its effective access declaration (None = missing)."""
    from fastapi.routing import APIRoute

    for original, effective in _contexts(app):
        path = getattr(effective, "path", "") or getattr(original, "path", "")
        explicit = getattr(original, "gis_access", None)
        dependant = getattr(effective, "dependant", None)
        found: list[Access] = [explicit] if isinstance(explicit, Access) else []
        _collect(dependant, found)
        yield RouteInfo(
            path=path,
            methods=frozenset(getattr(effective, "methods", None) or ()),
            name=getattr(effective, "name", "") or "",
            is_api=isinstance(original, APIRoute),
            include_in_schema=bool(getattr(effective, "include_in_schema", True)),
            access=_merged(found),
            original=original,
            dependant=dependant,
        )


def methods_at(app: FastAPI, path: str) -> list[str]:
    """Every method some route serves at ``path``, for the ``Allow`` header of a 405.

    Starlette names only the methods of the first route whose path matches, while a path's
    GET and POST are often two routes (RFC 9110 §15.5.6: Allow lists every method the target
    resource supports)."""
    from starlette.routing import Match

    scope = {"type": "http", "path": path, "method": "", "root_path": ""}
    methods: set[str] = set()
    for _, effective in _contexts(app):
        served = getattr(effective, "methods", None)
        if served and effective.matches(scope)[0] is not Match.NONE:
            methods |= set(served)
    if "GET" in methods:
        methods.add("HEAD")  # Starlette answers HEAD wherever it answers GET
    return sorted(methods)


def _serves_static(asgi: Any, static_class: type) -> bool:
    """True when ``asgi`` is StaticFiles, perhaps inside middleware (GZip …)."""
    for _ in range(8):
        if isinstance(asgi, static_class):
            return True
        asgi = getattr(asgi, "app", None)
        if asgi is None:
            return False
    return False


def document_access(app: FastAPI) -> list[str]:
    """Declare FastAPI's own pages public, make the OpenAPI document carry every route's
    declaration, and return the paths of routes that declare nothing."""
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    for original, _ in _contexts(app):
        if getattr(original, "gis_access", None) is not None:
            continue
        # Static assets (scripts, styles, icons) cannot carry credentials: always public.
        static = isinstance(original, Mount) and _serves_static(original.app, StaticFiles)
        if static or getattr(original, "path", None) in BUILTIN_PUBLIC_PATHS:
            declare(original, PUBLIC)
    missing = [r.path for r in iter_routes(app) if r.access is None]
    if not getattr(app, "_gis_access_documented", False):
        generate = app.openapi

        def openapi() -> dict[str, Any]:
            if app.openapi_schema is not None:
                return app.openapi_schema
            schema = generate()
            _annotate(app, schema)
            app.openapi_schema = schema
            return schema

        app.openapi = openapi  # type: ignore[method-assign]
        app._gis_access_documented = True  # type: ignore[attr-defined]
    app.openapi_schema = None
    return missing


# The error body of every /api route (gis_service.http.errors.error_body).
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["code", "message", "details"],
    "properties": {
        "code": {"type": "string", "description": "Stable machine code, e.g. not_found."},
        "message": {"type": "string", "description": "What went wrong and how to fix it."},
        "details": {"type": "object", "description": "Fields that name what was refused."},
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
# Answers any operation may give, whatever it declares itself (issue 11, finding 12: clients
# generated from the document must know them): the edge guard and unknown query parameters
# (400), the database being down (503), a statement stopped by the statement timeout (504).
_ALWAYS = {
    "400": "Refused at the edge: a NUL character, JSON nested too deep, invalid Unicode, or "
    "a query parameter this operation does not take.",
    "503": "The database is unreachable; retry later.",
    "504": "The request needed more database time than one request gets (statement_timeout): "
    "ask for less at once (a shorter period, a smaller area, fewer items).",
}
# A public operation answers 401 too when the caller sends a credential that is unknown,
# expired or revoked (a bad credential is refused, never silently ignored).
_BAD_CREDENTIAL = {
    "401": "A session, bearer token or API key was sent but is unknown, expired or revoked."
}
_PROTECTED = {
    "401": "Not logged in, or the session, token or API key is unknown, expired or revoked.",
    "403": "Logged in, but the role, the key's scopes or the grid scope do not allow this.",
}
# A list that also answers CSV (gis_service.http.listing.format_query: f=csv or Accept).
_CSV = {"text/csv": {"schema": {"type": "string"}}}
# An id, code, grid or root the operation is given may name nothing (in the caller's scope).
_NOT_FOUND = "Nothing with this id or code exists, or it lies outside your scope."
_WITH_BODY = {
    "413": "The body is larger than this operation accepts.",
    "415": "The body's media type is not one this operation reads.",
}


# The edge refuses a NUL in any parameter or JSON string (gis_service.http.guard): say so in
# every free string's schema, so that clients and fuzzers do not send what is refused.
NO_NUL = r"^[^\x00]*$"


def _forbid_nul(schema: Any) -> None:
    """Add the no-NUL pattern to every free string (no pattern, enum, format or const)."""
    if isinstance(schema, list):
        for item in schema:
            _forbid_nul(item)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not {"pattern", "enum", "format", "const"} & set(schema):
        schema["pattern"] = NO_NUL
    for key, value in schema.items():
        if key in ("properties", "$defs", "patternProperties"):
            for sub in value.values():
                _forbid_nul(sub)
        elif key in ("items", "anyOf", "oneOf", "allOf", "not", "additionalProperties"):
            _forbid_nul(value)


def _exact_bounds(node: Any) -> None:
    """Give the id bound back its exact value: FastAPI's document model holds bounds as
    floats, and float(BIGINT_MAX) is 2**63, so the document allowed one more id than the
    server (a generated 2**63 was refused with 422, issue 11 finding 12)."""
    if isinstance(node, list):
        for item in node:
            _exact_bounds(item)
    elif isinstance(node, dict):
        if node.get("maximum") == float(BIGINT_MAX):
            node["maximum"] = BIGINT_MAX
        for value in node.values():
            _exact_bounds(value)


def catalog_codes(catalog: Catalog, kind: str) -> list[str]:
    """The codes of one of the catalogue's lists (layers/*.yaml), as the server checks them."""
    if kind == "care_categories":
        return sorted(c.code for c in catalog.care.categories)
    return sorted(getattr(catalog, kind))


def _declared(schema: dict[str, Any], catalog: Catalog | None) -> dict[str, Any] | None:
    """The schema a marked parameter or field gets from the declaration the server validates
    with (X_DECLARED): the bbox parse_bbox reads, or the catalogue's codes; None if unmarked."""
    mark = schema.get(X_DECLARED)
    if mark is None:
        return None
    if mark == "bbox":
        return dict(BBOX_SCHEMA)
    if mark == "lonlat":
        return dict(LONLAT_SCHEMA)
    if isinstance(mark, dict):  # a pattern the parser checks itself, with its own message
        string: dict[str, Any] = {"type": "string", **mark}
    else:
        kind, _, name = mark.partition(":")
        if catalog is None:  # a document built without a catalogue (never served)
            return {k: v for k, v in schema.items() if k != X_DECLARED}
        codes = catalog_codes(catalog, name)
        if kind == "code-list":
            string = {"type": "string", "pattern": code_list_pattern(codes)}
        else:
            string = {"type": "string", "enum": codes}
    # The declaration's own bounds stay (max_length=200 on a code list was lost: 422s).
    branches = [s for s in schema.get("anyOf", [schema]) if s.get("type") == "string"]
    for bound in ("minLength", "maxLength"):
        if branches and bound in branches[0]:
            string[bound] = branches[0][bound]
    keep = {k: v for k, v in schema.items() if k in ("title", "description", "default")}
    if any(s.get("type") == "null" for s in schema.get("anyOf", ())):
        return {**keep, "anyOf": [string, {"type": "null"}]}
    return {**keep, **string}


def _apply_declared(schema: Any, catalog: Catalog | None) -> None:
    """Replace every marked field's schema, at any depth of a component."""
    if isinstance(schema, list):  # anyOf, oneOf …: a marked branch (an optional code) too
        for i, item in enumerate(schema):
            new = _declared(item, catalog) if isinstance(item, dict) else None
            if new is not None:
                schema[i] = new
            else:
                _apply_declared(item, catalog)
        return
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key in ("properties", "$defs"):
            for name, sub in value.items():
                new = _declared(sub, catalog) if isinstance(sub, dict) else None
                if new is not None:
                    value[name] = new
                else:
                    _apply_declared(sub, catalog)
        elif key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties"):
            _apply_declared(value, catalog)


def _declare_parameter(parameter: dict[str, Any], catalog: Catalog | None) -> None:
    new = _declared(parameter.get("schema", {}), catalog)
    if new is None:
        return
    parameter["schema"] = new
    if new.get("type") == "array":  # one comma list, as /ogc takes it
        parameter["style"], parameter["explode"] = "form", False


def _header_is_a_string(parameter: dict[str, Any]) -> None:
    """An optional header is absent or a string: FastAPI's ``str | None`` also allowed null,
    which a client can only send as the text "null" (schemathesis did; refused with 422)."""
    schema = parameter.get("schema", {})
    if parameter.get("in") != "header" or "anyOf" not in schema:
        return
    branches = [s for s in schema["anyOf"] if s.get("type") != "null"]
    if len(branches) == 1:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        parameter["schema"] = {**rest, **branches[0]}


def _uses(dependant: Dependant | None, call: Any) -> bool:
    """True when ``call`` is among the route's dependencies, at any depth."""
    if dependant is None:
        return False
    return dependant.call is call or any(_uses(sub, call) for sub in dependant.dependencies)


_TOO_MANY = {"429": "Too many requests from this address; retry after Retry-After seconds."}


def _document_limits(operation: dict[str, Any], dependant: Dependant | None) -> None:
    """An operation behind a per-address limit documents its 429."""
    from gis_service.auth.deps import limit_anonymous_reports

    if _uses(dependant, limit_anonymous_reports):
        operation.setdefault("responses", {}).setdefault(
            "429",
            {
                "description": _TOO_MANY["429"],
                "content": {"application/json": {"schema": _ERROR_REF}},
            },
        )


def _document_formats(operation: dict[str, Any], dependant: Dependant | None) -> None:
    """A list that takes f=csv documents text/csv beside its JSON media type."""
    from gis_service.http.listing import format_query

    if not _uses(dependant, format_query):
        return
    for status, response in operation.get("responses", {}).items():
        if status.startswith("2") and "content" in response:
            response["content"].update(_CSV)


def _document_errors(operation: dict[str, Any], access: Access) -> None:
    """Every error status the operation can answer, with the one error body."""
    responses = operation.setdefault("responses", {})
    wanted = dict(_ALWAYS)
    wanted.update(_PROTECTED if not access.allow_anonymous else _BAD_CREDENTIAL)
    if "requestBody" in operation:
        wanted.update(_WITH_BODY)
    if operation.get("parameters") or "requestBody" in operation:
        wanted["404"] = _NOT_FOUND
    for status, description in wanted.items():
        responses.setdefault(status, {"description": description})
    for status, response in responses.items():
        if not status.startswith(("4", "5")):
            continue
        content = response.setdefault("content", {})
        schema = content.get("application/json", {}).get("schema", {})
        # FastAPI documents 422 as {detail: [...]}; the service answers {code, message, details}.
        if not schema or schema.get("$ref", "").endswith("/HTTPValidationError"):
            content["application/json"] = {"schema": _ERROR_REF}


def _annotate(app: FastAPI, schema: dict[str, Any]) -> None:
    """Add x-roles, x-api-key-scopes and 'Who may call: …' to every operation, and the error
    statuses every /api operation can answer."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    _exact_bounds(schema)
    catalog = getattr(app.state, "catalog", None)
    for component in schema["components"]["schemas"].values():
        _apply_declared(component, catalog)
        _forbid_nul(component)
    by_key: dict[tuple[str, str], Access] = {}
    dependants: dict[tuple[str, str], Dependant | None] = {}
    for info in iter_routes(app):
        if info.access is None:
            continue
        path = _CONVERTER.sub(r"{\1}", info.path)  # the document drops {id:int}'s converter
        for method in info.methods:
            by_key[(path, method.lower())] = info.access
            dependants[(path, method.lower())] = info.dependant
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _HTTP_METHODS or not isinstance(operation, dict):
                continue
            access = by_key.get((path, method))
            if access is None:
                continue
            for media in operation.get("requestBody", {}).get("content", {}).values():
                _apply_declared(media.get("schema"), catalog)  # bodies declared inline
            for parameter in operation.get("parameters", ()):
                _declare_parameter(parameter, catalog)
                _forbid_nul(parameter.get("schema"))
                _header_is_a_string(parameter)
            operation["x-roles"] = access.who()
            operation["x-api-key-scopes"] = sorted(access.scopes or ())
            if path.startswith("/api/"):
                _document_errors(operation, access)
                _document_formats(operation, dependants.get((path, method)))
                _document_limits(operation, dependants.get((path, method)))
            else:  # pages, tiles, /ogc: a bad credential is refused there too
                operation.setdefault("responses", {}).setdefault(
                    "401",
                    {
                        "description": _BAD_CREDENTIAL["401"],
                        "content": {"application/json": {"schema": _ERROR_REF}},
                    },
                )
            sentence = access.sentence()
            description = operation.get("description", "")
            if "Who may call:" not in description:
                operation["description"] = f"{description}\n\n**{sentence}**".strip()
