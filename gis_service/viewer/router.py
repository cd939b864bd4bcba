"""Routes of the web map: the page, the territory outline, and the static assets."""

from __future__ import annotations

import hashlib
import html

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.middleware.gzip import GZipMiddleware

from gis_service.auth.deps import PUBLIC_READ
from gis_service.http.deps import CatalogDep, Conn, SettingsDep
from gis_service.http.routes import PUBLIC, declare
from gis_service.http.static import CachedStaticFiles
from gis_service.viewer import assets, service

# The map is public, like the map data it shows: anyone may open it (writes go through the
# API, which checks its own permissions).
router = APIRouter(tags=["web map"], dependencies=[Depends(PUBLIC_READ)])

UI_TEMPLATE = assets.SRC_DIR / "ui.html"

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
