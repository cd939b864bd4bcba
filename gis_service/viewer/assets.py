"""The browser assets of the map, all served by the service itself (no CDN).

Third-party libraries come from ``web/node_modules``, filled at set-up by ``npm ci`` from
``web/package-lock.json`` (``make setup``); only the folders listed in ``VENDOR_DIRS`` are
exposed. Our own script, stylesheet and HTML fragment live in ``web/src``.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from gis_service.config import PROJECT_ROOT

WEB_DIR = PROJECT_ROOT / "web"
SRC_DIR = WEB_DIR / "src"
NODE_MODULES = WEB_DIR / "node_modules"

STATIC_PREFIX = "/static"
VENDOR_PREFIX = f"{STATIC_PREFIX}/vendor"
APP_PREFIX = f"{STATIC_PREFIX}/app"

# The only folders of node_modules the service exposes: the built files, never sources.
VENDOR_DIRS = (
    "leaflet/dist/",
    "leaflet.vectorgrid/dist/",
    "leaflet.markercluster/dist/",
    "leaflet.heat/dist/",
    "@fortawesome/fontawesome-free/css/",
    "@fortawesome/fontawesome-free/webfonts/",
)

# Each file the page links, by role; checked at start of a page request so that a machine
# where `npm ci` never ran gets a page saying so instead of a blank map.
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
APP_JS = "gismap.js"
APP_CSS = "gismap.css"

# Versioned URLs (?v=…) may be cached for a week; a new lock file or source changes the URL.
CACHE_CONTROL = "public, max-age=604800"


def missing_vendor_files() -> list[str]:
    """The vendor files the page needs that are not installed (run `npm ci` in web/)."""
    return [rel for rel in (*VENDOR_JS, *VENDOR_CSS) if not (NODE_MODULES / rel).is_file()]


@lru_cache(maxsize=1)
def _version_of(paths: tuple[Path, ...], stamp: tuple[float, ...]) -> str:
    digest = hashlib.blake2b(digest_size=6)
    for path in paths:
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def asset_version() -> str:
    """A short hash of the lock file and our sources: changes whenever an asset may change."""
    paths = (WEB_DIR / "package-lock.json", SRC_DIR / APP_JS, SRC_DIR / APP_CSS)
    stamp = tuple(p.stat().st_mtime if p.exists() else 0.0 for p in paths)
    return _version_of(paths, stamp)


def vendor_url(rel: str) -> str:
    """The URL of a vendor file, versioned."""
    return f"{VENDOR_PREFIX}/{rel}?v={asset_version()}"


def app_url(rel: str) -> str:
    """The URL of one of our own files, versioned."""
    return f"{APP_PREFIX}/{rel}?v={asset_version()}"
