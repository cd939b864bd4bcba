"""The browser assets of the web screens, all served by the service itself (no CDN).

Third-party libraries come from ``web/node_modules``, filled at set-up by ``npm ci`` from
``web/package-lock.json`` (``make setup``); only the folders and files listed in
``VENDOR_DIRS`` are exposed. Our own code lives in ``web/src`` as plain ES modules, served as
they are (no bundler): ``lib/`` is shared by every screen (API client, error codes in
Chinese, session, search), and each screen has its folder (``map/``, ``desk/``,
``dashboard/``, ``ledger/``) with an entry module ``main.js`` and its markup ``ui.html``.

Each page carries an import map that gives every module a URL versioned by its own content
hash, and preloads the modules its entry imports: the browser fetches them all at once (no
import waterfall) and may cache each for a week, and a changed file changes only its URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from functools import lru_cache
from pathlib import Path

from gis_service.config import PROJECT_ROOT

WEB_DIR = PROJECT_ROOT / "web"
SRC_DIR = WEB_DIR / "src"
NODE_MODULES = WEB_DIR / "node_modules"

STATIC_PREFIX = "/static"
VENDOR_PREFIX = f"{STATIC_PREFIX}/vendor"
APP_PREFIX = f"{STATIC_PREFIX}/app"

# The only folders (or files) of node_modules the service exposes: built files, never sources.
VENDOR_DIRS = (
    "leaflet/dist/",
    "leaflet.vectorgrid/dist/",
    "leaflet.markercluster/dist/",
    "leaflet.heat/dist/",
    "@fortawesome/fontawesome-free/css/",
    "@fortawesome/fontawesome-free/webfonts/",
    "echarts/dist/echarts.min.js",
    "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui-dist/swagger-ui.css",
    "swagger-ui-dist/favicon-32x32.png",
)

# Each file the map page links, by role; checked at the start of a page request so that a
# machine where `npm ci` never ran gets a page saying so instead of a blank map.
VENDOR_JS = (
    "leaflet/dist/leaflet.js",
    "leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js",
    "leaflet.markercluster/dist/leaflet.markercluster.js",
    "leaflet.heat/dist/leaflet-heat.js",
)
VENDOR_CSS = (
    "leaflet/dist/leaflet.css",
    "leaflet.markercluster/dist/MarkerCluster.css",
    "leaflet.markercluster/dist/MarkerCluster.Default.css",
    "@fortawesome/fontawesome-free/css/fontawesome.min.css",
    "@fortawesome/fontawesome-free/css/solid.min.css",
)
ICON_CSS = VENDOR_CSS[3:]
ECHARTS_JS = "echarts/dist/echarts.min.js"
SWAGGER_JS = "swagger-ui-dist/swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui-dist/swagger-ui.css"
SWAGGER_ICON = "swagger-ui-dist/favicon-32x32.png"
ALL_VENDOR_FILES = (*VENDOR_JS, *VENDOR_CSS, ECHARTS_JS, SWAGGER_JS, SWAGGER_CSS)

BASE_CSS = "css/base.css"

# Versioned URLs (?v=…) may be cached for a week; a changed file changes its URL.
CACHE_CONTROL = "public, max-age=604800"

# `import … from './x.js'`, `export … from '../lib/y.js'` and `import './z.js'`.
_IMPORT = re.compile(
    r"""(?:^|[;\s])(?:import|export)\s(?:[^'";]*?\sfrom\s*)?['"](\.{1,2}/[^'"]+)['"]"""
)


def missing_vendor_files() -> list[str]:
    """The vendor files the screens need that are not installed (run `npm ci` in web/)."""
    return [rel for rel in ALL_VENDOR_FILES if not (NODE_MODULES / rel).is_file()]


def _src_files() -> list[Path]:
    out = []
    for folder, _dirs, files in os.walk(SRC_DIR):
        out.extend(Path(folder) / f for f in files if f.endswith((".js", ".css", ".html")))
    return sorted(out)


def _stamp() -> tuple[tuple[str, float], ...]:
    """Names and modification times of the lock file and our sources."""
    paths = [WEB_DIR / "package-lock.json", *_src_files()]
    return tuple((str(p), p.stat().st_mtime if p.exists() else 0.0) for p in paths)


@lru_cache(maxsize=4)
def _versions(stamp: tuple[tuple[str, float], ...]) -> dict[str, str]:
    """A short content hash of each source file (relative path → hash), and of all of them."""
    out: dict[str, str] = {}
    whole = hashlib.blake2b(digest_size=6)
    for name, _ in stamp:
        path = Path(name)
        data = path.read_bytes() if path.is_file() else b""
        whole.update(data)
        if path.is_relative_to(SRC_DIR):
            out[path.relative_to(SRC_DIR).as_posix()] = hashlib.blake2b(
                data, digest_size=6
            ).hexdigest()
    out[""] = whole.hexdigest()
    return out


def asset_version() -> str:
    """A short hash of the lock file and our sources: changes whenever an asset may change."""
    return _versions(_stamp())[""]


def vendor_url(rel: str) -> str:
    """The URL of a vendor file, versioned."""
    return f"{VENDOR_PREFIX}/{rel}?v={asset_version()}"


def app_url(rel: str) -> str:
    """The URL of one of our own files, versioned by its content."""
    version = _versions(_stamp()).get(rel, asset_version())
    return f"{APP_PREFIX}/{rel}?v={version}"


def _imports_of(rel: str) -> list[str]:
    """The modules a module imports statically (relative paths under web/src)."""
    text = (SRC_DIR / rel).read_text(encoding="utf-8")
    base = Path(rel).parent
    found = []
    for spec in _IMPORT.findall(text):
        found.append(os.path.normpath((base / spec).as_posix()).replace(os.sep, "/"))
    return found


def module_graph(entry: str) -> list[str]:
    """The entry module and everything it imports, directly or not (entry first)."""
    seen: list[str] = []
    todo = [entry]
    while todo:
        rel = todo.pop(0)
        if rel in seen or not (SRC_DIR / rel).is_file():
            continue
        seen.append(rel)
        todo.extend(_imports_of(rel))
    return seen


def module_head(entry: str) -> str:
    """The import map, the preloads and the entry module of a screen, for its <head>."""
    versions = _versions(_stamp())
    imports = {
        f"{APP_PREFIX}/{rel}": f"{APP_PREFIX}/{rel}?v={v}"
        for rel, v in sorted(versions.items())
        if rel.endswith(".js")
    }
    importmap = json.dumps({"imports": imports}, separators=(",", ":"))
    graph = module_graph(entry)
    preloads = "".join(f'<link rel="modulepreload" href="{app_url(rel)}"/>\n' for rel in graph[1:])
    return (
        f'<script type="importmap">{importmap}</script>\n{preloads}'
        f'<script type="module" src="{app_url(entry)}"></script>'
    )
