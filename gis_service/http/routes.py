"""Every route declares who may call it; this module finds and documents the declarations.

A route declares access with a ``require(...)`` dependency (on the route, on its router, or
at ``include_router``, or as a parameter). :func:`document_access` puts each route's
declaration into the OpenAPI document as ``x-roles`` / ``x-api-key-scopes`` and appends a
"Who may call: …" sentence to its description. Routes that are not API routes (the docs
pages, mounted static files) are declared with :func:`declare`. ``tests/test_permissions.py``
fails on any route without a declaration.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant

from gis_service.auth.access import Access

PUBLIC = Access(allow_anonymous=True)
# FastAPI's own pages: the docs and the schema are public.
BUILTIN_PUBLIC_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
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


def _annotate(app: FastAPI, schema: dict[str, Any]) -> None:
    """Add x-roles, x-api-key-scopes and 'Who may call: …' to every operation."""
    by_key: dict[tuple[str, str], Access] = {}
    for info in iter_routes(app):
        if info.access is None:
            continue
        for method in info.methods:
            by_key[(info.path, method.lower())] = info.access
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _HTTP_METHODS or not isinstance(operation, dict):
                continue
            access = by_key.get((path, method))
            if access is None:
                continue
            operation["x-roles"] = access.who()
            operation["x-api-key-scopes"] = sorted(access.scopes or ())
            sentence = access.sentence()
            description = operation.get("description", "")
            if "Who may call:" not in description:
                operation["description"] = f"{description}\n\n**{sentence}**".strip()
