"""Build the web screens: the map with Folium (skeleton, basemaps and tile layers, never
data), and the staff screens (workbench, dashboard, ledger) as plain pages.

Folium writes the Leaflet page: the map, one base layer per basemap, one vector-tile layer
per grid level, facilities and hazards, and the layer control. Every script, stylesheet and
font it links is ours (``assets``); Folium's CDN defaults are replaced. The behaviour (the
panel and its moves, search, filters, GCJ-02 shifting, field mode) lives in the ES modules
of ``web/src/map/``, which the page hands the Folium layers to; Folium's own script runs as a
module too, so that it runs after them. Grids, facilities and hazards reach the browser only
as vector tiles or small JSON answers fetched at the moment they are needed.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from html import escape as html_escape
from typing import Any

import folium
from branca.element import Element, MacroElement
from folium.plugins import VectorGridProtobuf
from folium.template import Template
from sqlalchemy import Connection, text

from gis_service.catalog.schemas import REPORT_CLASS_NAMES_ZH, SEVERITY_NAMES_ZH, Catalog
from gis_service.config import Settings
from gis_service.hazards.states import CLOCK_STATUSES, OPEN_STATUSES, STATUS_NAMES_ZH
from gis_service.orders.workflow import ORDER_MACHINE
from gis_service.tiles.tilesets import LAYERS
from gis_service.viewer import assets

# Grid levels as the map shows them: tile layer, names, outline colour, and the map zooms at
# which their names are drawn (a name is drawn only where it also fits inside the polygon).
GRID_LEVELS: tuple[dict[str, Any], ...] = (
    {"level": "street", "name": "街道", "color": "#1f3b73", "weight": 3, "label": [10, 13]},
    {"level": "community", "name": "社区", "color": "#2e7d32", "weight": 2, "label": [13, 15]},
    {"level": "grid", "name": "网格", "color": "#ef6c00", "weight": 1.6, "label": [15, 17]},
    {"level": "micro_grid", "name": "微网格", "color": "#6d4c41", "weight": 1, "label": [17, 22]},
    {"level": "special", "name": "专属网格", "color": "#c2185b", "weight": 1.6, "label": [16, 22]},
)  # fmt: skip

# Hazard severities on their own sequential scale, yellow to red: 紧急 is red; no green (an
# open hazard is never "fine") and no purple; facility colours come from layers/ and differ.
SEVERITY_COLORS = {"low": "#fbc02d", "medium": "#fb8c00", "high": "#f4511e", "critical": "#d50000"}

# Vector tiles are drawn 512 px wide one zoom below the map's (zoomOffset -1): a quarter of
# the requests of 256-px tiles, and the server's tiles are made for 512 px anyway.
TILE_SIZE = 512
ZOOM_OFFSET = -1
MAP_MAX_ZOOM = 20

# The page itself holds no data, but its view (the territory's extent) comes from the
# database; cache it briefly so a busy desk does not run the query on every page load.
BOUNDS_TTL_S = 300.0

_BOUNDS_SQL = text(
    """
    SELECT ST_XMin(e) AS xmin, ST_YMin(e) AS ymin, ST_XMax(e) AS xmax, ST_YMax(e) AS ymax
      FROM (SELECT ST_Extent(geom)::geometry AS e FROM grids
             WHERE level = 'street' AND valid_to IS NULL
               AND gis_valid_at(valid_from, valid_to, now())) s
    """
)

# The territory's outline (the union of the current streets), simplified to ~10 m: drawn on
# the "none" basemap so the map is readable with no tiles at all. A few kilobytes.
_OUTLINE_SQL = text(
    """
    SELECT ST_AsGeoJSON(ST_SimplifyPreserveTopology(ST_Union(geom), 0.0001), 6) AS geojson
      FROM grids
     WHERE level = 'street' AND valid_to IS NULL AND gis_valid_at(valid_from, valid_to, now())
    """
)

# Where a map with no grids at all opens: Zhengzhou.
FALLBACK_CENTER = (34.7466, 113.6253)
FALLBACK_ZOOM = 11


@dataclass(frozen=True)
class Basemap:
    """One basemap the switcher offers."""

    key: str
    name: str
    url: str | None
    datum: str
    attribution: str
    subdomains: str = "abc"
    max_native_zoom: int = 18


def basemaps(settings: Settings) -> list[Basemap]:
    """The basemaps to offer, in switcher order; tianditu needs a key, custom a URL."""
    offered = []
    for key in settings.basemap_choices:
        if key == "none":
            offered.append(Basemap("none", "无底图（仅行政边界）", None, "wgs84", ""))
        elif key == "osm":
            offered.append(
                Basemap("osm", "OpenStreetMap", settings.osm_url, "wgs84", "© OpenStreetMap")
            )
        elif key == "amap":
            offered.append(
                Basemap(
                    "amap", "高德地图", settings.amap_url, "gcj02", "© 高德地图 AutoNavi", "1234"
                )
            )
        elif key == "tianditu" and settings.tianditu_key:
            url = (
                "https://t{s}.tianditu.gov.cn/DataServer?T=vec_w&x={x}&y={y}&l={z}&tk="
                + settings.tianditu_key
            )
            offered.append(Basemap("tianditu", "天地图", url, "wgs84", "© 天地图", "01234567"))
        elif key == "custom" and settings.basemap_url:
            offered.append(
                Basemap(
                    "custom",
                    "自定义底图",
                    settings.basemap_url,
                    settings.basemap_datum,
                    settings.basemap_attribution,
                )
            )
    if not offered:
        offered.append(Basemap("none", "无底图（仅行政边界）", None, "wgs84", ""))
    return offered


def default_basemap(settings: Settings, offered: list[Basemap]) -> str:
    """The configured basemap if it is offered, else the first offered one."""
    keys = [b.key for b in offered]
    return settings.basemap if settings.basemap in keys else keys[0]


def territory_bounds(conn: Connection) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) of the current streets, or None when there are no grids."""
    row = conn.execute(_BOUNDS_SQL).mappings().first()
    if row is None or row["xmin"] is None:
        return None
    return float(row["xmin"]), float(row["ymin"]), float(row["xmax"]), float(row["ymax"])


class TimedCache:
    """One value, recomputed when older than ``ttl`` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._value: Any = None
        self._at = -math.inf

    def get(self, compute) -> Any:
        """The cached value, or a fresh one from ``compute()``."""
        now = time.monotonic()
        if now - self._at > self.ttl:
            self._value = compute()
            self._at = now
        return self._value


def outline_geojson(conn: Connection) -> str:
    """The territory's outline as a GeoJSON geometry (WGS84), or an empty collection."""
    row = conn.execute(_OUTLINE_SQL).first()
    if row is None or row[0] is None:
        return '{"type": "GeometryCollection", "geometries": []}'
    return row[0]


def initial_view(bounds: tuple[float, float, float, float] | None) -> tuple[list[float], int]:
    """Centre and zoom that show the whole territory in a typical 1280 × 720 window."""
    if bounds is None:
        return list(FALLBACK_CENTER), FALLBACK_ZOOM
    west, south, east, north = bounds

    def merc_y(lat: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    span_x = max((east - west) / 360.0, 1e-9)
    span_y = max((merc_y(north) - merc_y(south)) / (2 * math.pi), 1e-9)
    zoom = math.floor(min(math.log2(1280 / 256 / span_x), math.log2(720 / 256 / span_y)))
    return [(south + north) / 2, (west + east) / 2], max(3, min(17, zoom))


def base_config(settings: Settings, catalog: Catalog) -> dict[str, Any]:
    """What every screen's script needs to know: names and colours of levels, categories,
    states and severities (metadata only: no grid, facility or hazard)."""
    categories = sorted(catalog.hazard_categories.values(), key=lambda c: (c.report_class, c.code))
    return {
        "title": settings.map_title,
        "levels": [dict(lv) for lv in GRID_LEVELS],
        "hazardCategories": [
            {
                "code": c.code,
                "name": c.name_zh,
                "reportClass": c.report_class,
                "severity": c.default_severity,
            }
            for c in categories
        ],
        "reportClasses": REPORT_CLASS_NAMES_ZH,
        "statuses": STATUS_NAMES_ZH,
        "openStatuses": list(OPEN_STATUSES),
        # Overdue means past the deadline while its clock runs (as the hazard API says).
        "clockStatuses": list(CLOCK_STATUSES),
        "severities": {
            k: {"name": SEVERITY_NAMES_ZH[k], "color": SEVERITY_COLORS[k]}
            for k in SEVERITY_NAMES_ZH
        },
        # 三单制: the services one may order and the order machine (the desk's buttons)
        "services": {code: t.name_zh for code, t in catalog.services.items()},
        "orderStatuses": ORDER_MACHINE.statuses,
        "orderMoves": ORDER_MACHINE.table(),
    }


def client_config(
    settings: Settings, catalog: Catalog, bounds: tuple[float, float, float, float] | None
) -> dict[str, Any]:
    """What the map's script needs to know: the base config plus basemaps, tiles, icons."""
    offered = basemaps(settings)
    levels = []
    for lv in GRID_LEVELS:
        tile = LAYERS[f"grids_{lv['level']}"]
        levels.append({**lv, "layer": tile.id, "minzoom": tile.minzoom - ZOOM_OFFSET})
    return {
        **base_config(settings, catalog),
        "bounds": [[bounds[1], bounds[0]], [bounds[3], bounds[2]]] if bounds else None,
        "basemap": default_basemap(settings, offered),
        "basemaps": [
            {"key": b.key, "name": b.name, "datum": b.datum, "attribution": b.attribution}
            for b in offered
        ],
        "tile": {
            "size": TILE_SIZE,
            "zoomOffset": ZOOM_OFFSET,
            "maxNativeZoom": max(t.maxzoom for t in LAYERS.values()) - ZOOM_OFFSET,
            "layers": {
                t.id: {"url": f"/tiles/{t.id}/{{z}}/{{x}}/{{y}}.pbf", "minzoom": t.minzoom}
                for t in LAYERS.values()
            },
        },
        "maxZoom": MAP_MAX_ZOOM,
        "levels": levels,
        "facilityTypes": {
            code: {
                "name": f.name_zh,
                "icon": f.icon,
                "color": f.color,
                "geometry": f.geometry,
                "attributes": {
                    k: {"label": a.label_zh, "values": a.value_labels}
                    for k, a in f.attributes.items()
                },
            }
            for code, f in catalog.facility_types.items()
        },
        # From this zoom the facility tiles' points are drawn as clustered icons, not dots.
        "facilityMarkerZoom": 17,
    }


class _Call(MacroElement):
    """A line of script that hands Folium objects to gismap.js, by their JS names."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this.code }}
        {% endmacro %}
        """
    )

    def __init__(self, code: str) -> None:
        super().__init__()
        self._name = "GisMapCall"
        self.code = code


class _Assets(MacroElement):
    """Our own script and stylesheet, linked after the vendor files in the page head."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        {{ this.links }}
        {% endmacro %}
        """
    )

    def __init__(self, links: str) -> None:
        super().__init__()
        self._name = "GisMapAssets"
        self.links = links


def _tile_options(layer_id: str) -> str:
    """Options of a vector-tile layer, computed by the script (its styles are functions)."""
    return f"GM.tileOptions({json.dumps(layer_id)})"


def build_page(
    settings: Settings,
    catalog: Catalog,
    bounds: tuple[float, float, float, float] | None,
    ui_html: str,
) -> str:
    """The whole /map page as HTML: Folium's Leaflet map wired to gismap.js."""
    config = client_config(settings, catalog, bounds)
    center, zoom = initial_view(bounds)
    m = folium.Map(
        location=center,
        zoom_start=zoom,
        tiles=None,
        control_scale=True,
        prefer_canvas=True,
        zoom_control=False,
        max_zoom=MAP_MAX_ZOOM,
        min_zoom=3,
        font_size="14px",
    )
    # Replace Folium's CDN defaults (and its jQuery/Bootstrap, which we do not use).
    m.default_js = [("leaflet", assets.vendor_url(assets.VENDOR_JS[0]))]
    m.default_css = [(f"css{i}", assets.vendor_url(rel)) for i, rel in enumerate(assets.VENDOR_CSS)]
    root = m.get_root()
    root.title = settings.map_title
    links = "\n".join(
        [f'<script src="{assets.vendor_url(rel)}"></script>' for rel in assets.VENDOR_JS[1:]]
        + [
            f'<link rel="stylesheet" href="{assets.app_url(assets.BASE_CSS)}"/>',
            f'<link rel="stylesheet" href="{assets.app_url("css/map.css")}"/>',
            assets.module_head("map/main.js"),
            '<meta name="theme-color" content="#1f3b73"/>',
            '<link rel="icon" href="data:,"/>',
            '<link rel="manifest" href="/manifest.webmanifest"/>',
            f'<link rel="apple-touch-icon" href="{assets.APP_PREFIX}/icons/field-192.png"/>',
        ]
    )
    _Assets(links).add_to(m)
    # The config is metadata (names, colours, URLs); it holds no grid, facility or hazard.
    config_json = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")
    root.html.add_child(
        Element(f'<script id="gm-config" type="application/json">{config_json}</script>')
    )
    root.html.add_child(Element(ui_html))
    # Runs right after L.map(): panes, datum and view are set before any layer loads.
    _Call(f"GM.setup({m.get_name()});").add_to(m)

    bases: dict[str, str] = {}
    for b in basemaps(settings):
        if b.url is None:
            layer = folium.FeatureGroup(name=b.name, overlay=False, show=False)
        else:
            layer = folium.TileLayer(
                tiles=b.url,
                attr=b.attribution,
                name=b.name,
                overlay=False,
                show=False,
                subdomains=b.subdomains,
                max_native_zoom=b.max_native_zoom,
                max_zoom=MAP_MAX_ZOOM,
            )
        layer.add_to(m)
        bases[b.key] = layer.get_name()

    overlays: dict[str, str] = {}
    for lv in GRID_LEVELS:
        layer_id = f"grids_{lv['level']}"
        vg = VectorGridProtobuf(
            config["tile"]["layers"][layer_id]["url"],
            name=lv["name"],
            options=_tile_options(layer_id),
            overlay=True,
            show=True,
        )
        vg.default_js = []  # linked once, before gismap.js, by _Assets
        vg.add_to(m)
        overlays[layer_id] = vg.get_name()

    groups: dict[str, str] = {}
    group_objects: dict[str, folium.FeatureGroup] = {}
    for key, name, show in (
        ("labels", "名称标注", True),
        ("facilities", "部件", True),
        ("hazards", "未结隐患", True),
        ("heat", "隐患热力图", False),
    ):
        group = folium.FeatureGroup(name=name, overlay=True, show=show)
        group.add_to(m)
        groups[key] = group.get_name()
        group_objects[key] = group
    for layer_id, group_key in (("facilities", "facilities"), ("hazards", "hazards")):
        vg = VectorGridProtobuf(
            config["tile"]["layers"][layer_id]["url"],
            name=layer_id,
            options=_tile_options(layer_id),
            overlay=True,
            control=False,
        )
        vg.default_js = []
        vg.add_to(group_objects[group_key])
        overlays[layer_id] = vg.get_name()

    control = folium.LayerControl(position="topright", collapsed=True)
    control.add_to(m)

    def js_map(names: dict[str, str]) -> str:
        return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in names.items()) + "}"

    _Call(
        f"GM.init({{map: {m.get_name()}, control: {control.get_name()}, "
        f"bases: {js_map(bases)}, layers: {js_map(overlays)}, groups: {js_map(groups)}}});"
    ).add_to(m)

    html = root.render().replace("<html>", '<html lang="zh-CN">', 1)
    return _as_module(html)


_FOLIUM_SCRIPT = re.compile(r"(</body>\s*)<script>")


def _as_module(html: str) -> str:
    """Run Folium's script as a module: module scripts run in document order, so it runs
    after our modules (which define GM) have loaded."""
    out, n = _FOLIUM_SCRIPT.subn(r'\1<script type="module">', html, count=1)
    if n != 1:  # pragma: no cover - a Folium upgrade changed its template
        raise RuntimeError("Folium's page script was not found after </body>")
    return out


SCREENS: dict[str, dict[str, Any]] = {
    "desk": {"title": "工作台", "css": ["css/desk.css"], "js": [], "vcss": []},
    "dashboard": {
        "title": "统计",
        "css": ["css/dashboard.css"],
        "js": [assets.VENDOR_JS[0], assets.VENDOR_JS[3], assets.ECHARTS_JS],
        "vcss": [assets.VENDOR_CSS[0]],
    },
    "ledger": {"title": "台账", "css": ["css/ledger.css"], "js": [], "vcss": []},
    "people": {"title": "人员", "css": ["css/people.css"], "js": [], "vcss": []},
    "accounts": {"title": "账号", "css": ["css/desk.css", "css/people.css"], "js": [], "vcss": []},
}


def web_manifest(settings: Settings) -> str:
    """The web app manifest of the field app (W3C Web Application Manifest)."""
    icons = [
        {
            "src": f"{assets.APP_PREFIX}/icons/field-{px}.png",
            "sizes": f"{px}x{px}",
            "type": "image/png",
            "purpose": "any",
        }
        for px in (192, 512)
    ]
    return json.dumps(
        {
            "name": f"{settings.map_title} · 外勤",
            "short_name": "网格外勤",
            "description": "网格员外勤：今日任务、走访、巡查、隐患上报，离线可用。",
            "lang": "zh-CN",
            "start_url": "/map?mode=field",
            "scope": "/",
            "display": "standalone",
            "orientation": "portrait",
            "background_color": "#f4f6f9",
            "theme_color": "#1f3b73",
            "icons": icons,
        },
        ensure_ascii=False,
    )


def build_screen(settings: Settings, catalog: Catalog, screen: str, ui_html: str) -> str:
    """A staff screen (工作台, 统计, 台账, 人员, 账号) as HTML: the shared stylesheet, the
    screen's own, its modules and markup, and the base config. It holds no data."""
    spec = SCREENS[screen]
    config = {**base_config(settings, catalog), "screen": screen}
    config_json = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")
    head = "\n".join(
        [f'<link rel="stylesheet" href="{assets.vendor_url(rel)}"/>' for rel in assets.ICON_CSS]
        + [f'<link rel="stylesheet" href="{assets.vendor_url(rel)}"/>' for rel in spec["vcss"]]
        + [f'<script src="{assets.vendor_url(rel)}"></script>' for rel in spec["js"]]
        + [
            f'<link rel="stylesheet" href="{assets.app_url(rel)}"/>'
            for rel in (assets.BASE_CSS, *spec["css"])
        ]
        + [assets.module_head(f"{screen}/main.js")]
    )
    title = html_escape(f"{spec['title']} · {settings.map_title}")
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f'<title>{title}</title><meta name="theme-color" content="#1f3b73"/>'
        f'<link rel="icon" href="data:,"/>\n{head}\n</head>\n'
        f'<body class="gm-page gm-page-{screen}">\n'
        f'<script id="gm-config" type="application/json">{config_json}</script>\n'
        f"{ui_html}\n</body></html>"
    )
