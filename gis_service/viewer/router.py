"""Routes of the web screens: the map, the workbench, the dashboard, the ledger, people and
accounts, the territory outline, and the static assets."""

from __future__ import annotations

import hashlib
import html

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import (
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.middleware.gzip import GZipMiddleware

from gis_service.auth.deps import PUBLIC_READ
from gis_service.catalog.schemas import Catalog
from gis_service.config import Settings
from gis_service.http.deps import CatalogDep, Conn, SettingsDep
from gis_service.http.routes import PUBLIC, declare
from gis_service.http.static import CachedStaticFiles
from gis_service.viewer import assets, service

# The map is public, like the map data it shows: anyone may open it (writes go through the
# API, which checks its own permissions).
router = APIRouter(tags=["web map"], dependencies=[Depends(PUBLIC_READ)])

UI_TEMPLATE = assets.SRC_DIR / "map" / "ui.html"

_MISSING_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>地图资源未安装</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto; line-height: 1.6">
<h1>地图前端资源未安装 · Map assets are not installed</h1>
<p>缺少以下文件 (missing): <code>{missing}</code></p>
<p>请在项目目录运行 <code>make setup</code>（或 <code>cd web &amp;&amp; npm ci</code>）后刷新。
Run <code>make setup</code> (or <code>cd web &amp;&amp; npm ci</code>) and reload.</p>
</body></html>"""


def _state(request: Request, name: str, ttl: float) -> service.TimedCache:
    cache = getattr(request.app.state, name, None)
    if cache is None:
        cache = service.TimedCache(ttl)
        setattr(request.app.state, name, cache)
    return cache


@router.get(
    "/map",
    response_class=HTMLResponse,
    summary="The web map (网格地图): grids, facilities and hazards, click a grid for its leader",
    responses={503: {"description": "The browser libraries are not installed (npm ci)."}},
)
def map_page(request: Request, conn: Conn, settings: SettingsDep, catalog: CatalogDep) -> Response:
    """The Folium/Leaflet web map. It embeds no data: tiles and JSON are fetched live."""
    missing = assets.missing_vendor_files()
    if missing:
        body = _MISSING_PAGE.format(missing=html.escape(", ".join(missing)))
        return HTMLResponse(body, status_code=503)
    bounds = _state(request, "viewer_bounds", service.BOUNDS_TTL_S).get(
        lambda: service.territory_bounds(conn)
    )
    # Folium takes a few tens of milliseconds: build once per extent and asset version.
    key = (bounds, assets.asset_version())
    cached = getattr(request.app.state, "viewer_page", None)
    if cached is None or cached[0] != key:
        ui = UI_TEMPLATE.read_text(encoding="utf-8")
        cached = (key, service.build_page(settings, catalog, bounds, ui))
        request.app.state.viewer_page = cached
    return HTMLResponse(cached[1], headers={"Cache-Control": "no-cache"})


def _screen(settings: Settings, catalog: Catalog, screen: str) -> Response:
    missing = assets.missing_vendor_files()
    if missing:
        body = _MISSING_PAGE.format(missing=html.escape(", ".join(missing)))
        return HTMLResponse(body, status_code=503)
    ui = (assets.SRC_DIR / screen / "ui.html").read_text(encoding="utf-8")
    page = service.build_screen(settings, catalog, screen, ui)
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


_SCREEN_RESPONSES = {503: {"description": "The browser libraries are not installed (npm ci)."}}


@router.get(
    "/desk",
    response_class=HTMLResponse,
    summary="The workbench (工作台): queues of the user's scope, beside the map",
    responses=_SCREEN_RESPONSES,
)
def desk_page(settings: SettingsDep, catalog: CatalogDep) -> Response:
    """The staff workbench. The page holds no data: it asks the user to log in and reads the
    queues from /api/v1/queues."""
    return _screen(settings, catalog, "desk")


@router.get(
    "/dashboard",
    response_class=HTMLResponse,
    summary="The dashboard (统计): charts of the user's scope and period",
    responses=_SCREEN_RESPONSES,
)
def dashboard_page(settings: SettingsDep, catalog: CatalogDep) -> Response:
    """Charts drawn with Apache ECharts from /api/v1/stats; the page holds no data."""
    return _screen(settings, catalog, "dashboard")


@router.get(
    "/ledger",
    response_class=HTMLResponse,
    summary="The ledger (台账): a printable list of a unit's hazards for a period",
    responses=_SCREEN_RESPONSES,
)
def ledger_page(settings: SettingsDep, catalog: CatalogDep) -> Response:
    """A print-ready ledger (A4) read from /api/v1/ledger; the page holds no data."""
    return _screen(settings, catalog, "ledger")


@router.get(
    "/people",
    response_class=HTMLResponse,
    summary="People (人员): a grid's people by role, replaced, added and ended on screen",
    responses=_SCREEN_RESPONSES,
)
def people_page(settings: SettingsDep, catalog: CatalogDep) -> Response:
    """The 人员 screen: the grid tree with leaders and gaps, a grid's people and history, and
    the forms that change them (through /api/v1/people and /api/v1/grids/…/assignments)."""
    return _screen(settings, catalog, "people")


@router.get(
    "/accounts",
    response_class=HTMLResponse,
    summary="Accounts (账号): accounts and API keys of the user's scope",
    responses=_SCREEN_RESPONSES,
)
def accounts_page(settings: SettingsDep, catalog: CatalogDep) -> Response:
    """The 账号 screen for admins and street staff: accounts linked to people, roles and
    scopes, disable, unlock, reset passwords; API keys (through /api/v1/users and /keys)."""
    return _screen(settings, catalog, "accounts")


@router.get(
    "/map/outline.geojson",
    summary="The territory's outline (union of the current streets), simplified, WGS84",
    responses={200: {"content": {"application/geo+json": {}}}},
)
def outline(request: Request, conn: Conn) -> Response:
    """A GeoJSON geometry of the governed territory, for the map's "none" basemap."""
    body = _state(request, "viewer_outline", service.BOUNDS_TTL_S).get(
        lambda: service.outline_geojson(conn)
    )
    etag = '"' + hashlib.blake2b(body.encode(), digest_size=12).hexdigest() + '"'
    headers = {"Cache-Control": "public, max-age=300", "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/geo+json", headers=headers)


@router.get(
    "/sw.js",
    summary="The field app's service worker (offline shell of the map; never caches the API)",
    responses={200: {"content": {"text/javascript": {}}}},
)
def service_worker() -> Response:
    """Served at the root so that its scope covers /map; versioned by the assets' hash, so a
    new release replaces the cached shell."""
    body = (assets.SRC_DIR / "sw.js").read_text(encoding="utf-8")
    body = body.replace("__ASSET_VERSION__", assets.asset_version())
    return Response(
        body,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@router.get(
    "/manifest.webmanifest",
    summary="The web app manifest: the field app installs on a phone's home screen",
    responses={200: {"content": {"application/manifest+json": {}}}},
)
def manifest(settings: SettingsDep) -> Response:
    """Name, start page (/map in field mode), colours and icons of the installable app."""
    body = service.web_manifest(settings)
    return Response(
        body, media_type="application/manifest+json", headers={"Cache-Control": "no-cache"}
    )


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    """The service's front door opens the map."""
    return RedirectResponse("/map")


# HEAD answers like GET (monitors and link checkers use it), without a second OpenAPI entry.
for _path, _endpoint in (
    ("/", root),
    ("/map", map_page),
    ("/desk", desk_page),
    ("/dashboard", dashboard_page),
    ("/ledger", ledger_page),
    ("/people", people_page),
    ("/accounts", accounts_page),
):
    router.add_api_route(_path, _endpoint, methods=["HEAD"], include_in_schema=False)


# The API documentation, with Swagger UI and ReDoc served from web/node_modules like every
# other asset: they work with no network (FastAPI's defaults load them from a CDN).
@router.get("/docs", include_in_schema=False)
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI of the OpenAPI document."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} · 接口文档",
        oauth2_redirect_url="/docs/oauth2-redirect",
        swagger_js_url=assets.vendor_url(assets.SWAGGER_JS),
        swagger_css_url=assets.vendor_url(assets.SWAGGER_CSS),
        swagger_favicon_url=assets.vendor_url(assets.SWAGGER_ICON),
        # No call to the public validator service: nothing leaves the machine.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get("/docs/oauth2-redirect", include_in_schema=False)
def swagger_ui_redirect() -> HTMLResponse:
    """Swagger UI's OAuth2 redirect page."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc", include_in_schema=False)
def redoc() -> RedirectResponse:
    """ReDoc's bundle loads its logo from the vendor's CDN; the local Swagger UI serves the
    same document with nothing leaving the machine."""
    return RedirectResponse("/docs")


def install(app: FastAPI) -> None:
    """Add the map routes and mount the assets (gzip-compressed, cacheable) under /static."""
    app.include_router(router)
    app.mount(
        assets.VENDOR_PREFIX,
        GZipMiddleware(
            CachedStaticFiles(
                directory=assets.NODE_MODULES,
                cache_control=assets.CACHE_CONTROL,
                allow=assets.VENDOR_DIRS,
            ),
            minimum_size=1024,
        ),
        name="vendor",
    )
    app.mount(
        assets.APP_PREFIX,
        GZipMiddleware(
            CachedStaticFiles(directory=assets.SRC_DIR, cache_control=assets.CACHE_CONTROL),
            minimum_size=1024,
        ),
        name="web",
    )
    for route in app.routes:
        if getattr(route, "name", None) in ("vendor", "web"):
            declare(route, PUBLIC)
