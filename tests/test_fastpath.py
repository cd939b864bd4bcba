"""The fast paths (gis_service.http.fastpath) answer exactly as the ordinary routes do.

Two apps on one database, one with GIS_FAST_PATHS off: every request below, good and
hostile, goes to both, and status, headers, body and request-log line must be equal. The
good ones must really have been served past the router (else this compares a route with
itself).
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.config import Settings
from gis_service.db.engine import make_engine
from gis_service.geo.datums import Datum, from_wgs84
from gis_service.http.fastpath import FastPaths
from gis_service.http.observability import JsonFormatter
from tests.test_tiles import tile_of


@pytest.fixture(scope="module")
def clients(
    demo_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, TestClient]]:
    """(fast, ordinary): the same app with the fast paths on and off."""
    made = []
    for fast in (True, False):
        settings = Settings(
            database_url=demo_url,
            data_dir=tmp_path_factory.mktemp("fast" if fast else "slow"),
            load_demo=False,
            fast_paths=fast,
        )
        made.append(TestClient(create_app(settings)))
    with made[0] as fast_client, made[1] as slow_client:
        yield fast_client, slow_client


@pytest.fixture(scope="module")
def place(demo_url: str) -> dict[str, float]:
    """A point inside a micro-grid and a facility of the demo district."""
    engine = make_engine(demo_url, pool_size=1)
    found = text(
        "SELECT ST_X(p), ST_Y(p), ST_X(f), ST_Y(f) FROM (SELECT (SELECT ST_PointOnSurface(geom)"
        " FROM grids WHERE level = 'micro_grid' ORDER BY code LIMIT 1) p,"
        " (SELECT geom FROM facilities ORDER BY id LIMIT 1) f) s"
    )
    with engine.connect() as conn:
        lon, lat, flon, flat = conn.execute(found).one()
    engine.dispose()
    return {"lon": lon, "lat": lat, "flon": flon, "flat": flat}


def _in(datum: Datum, lon: float, lat: float) -> tuple[str, str]:
    x, y = from_wgs84(lon, lat, datum)
    return f"{float(x):.6f}", f"{float(y):.6f}"


def _bbox(datum: Datum, lon: float, lat: float, half: float) -> str:
    x0, y0 = _in(datum, lon - half, lat - half)
    x1, y1 = _in(datum, lon + half, lat + half)
    return f"{x0},{y0},{x1},{y1}"


def good_requests(place: dict[str, float]) -> list[tuple[str, dict[str, str]]]:
    """Requests the fast paths serve themselves."""
    out: list[tuple[str, dict[str, str]]] = []
    for datum in Datum:
        lon, lat = _in(datum, place["lon"], place["lat"])
        crs = "" if datum is Datum.wgs84 else f"&crs={datum.value}"
        out.append((f"/api/v1/locate?lon={lon}&lat={lat}{crs}", {}))
        out.append((f"/api/v1/locate?lat={lat}&lon={lon}{crs}", {"accept-encoding": "gzip"}))
        box = _bbox(datum, place["flon"], place["flat"], 0.002)
        out.append((f"/api/v1/facilities?bbox={box}&limit=5{crs}", {}))
        out.append((f"/api/v1/facilities?bbox={box}&limit=2&offset=1{crs}", {}))
    box = _bbox(Datum.wgs84, place["flon"], place["flat"], 0.01)
    out += [
        ("/api/v1/locate?lon=0&lat=0", {}),  # outside: 404 with the nearest grid
        ("/api/v1/locate?lon=-0&lat=-0.0", {}),
        ("/api/v1/facilities?limit=3", {}),
        (f"/api/v1/facilities?bbox={box}&limit=50", {"accept-encoding": "gzip"}),
        (f"/api/v1/facilities?bbox={box}&limit=100000", {}),  # clamped
        (f"/api/v1/facilities?bbox={box}&offset=1000000", {}),
        (f"/api/v1/facilities?bbox={box}&limit=5", {"accept": "text/csv"}),
        (f"/api/v1/facilities?bbox={quote(box)}", {"cookie": "gis_lsn=0"}),
        ("/api/v1/facilities?bbox=1,2,3", {}),  # the route's own parser refuses it
        ("/api/v1/facilities?bbox=113.7,34.7,113.6,34.8", {}),
        ("/api/v1/facilities?bbox=nan,1,2,3", {}),
        ("/api/v1/facilities?bbox=", {}),
    ]
    for layer in ("facilities", "grids", "hazards", "roads"):
        for z in (14, 16):
            x, y = tile_of(place["flon"], place["flat"], z)
            path = f"/tiles/{layer}/{z}/{x}/{y}.pbf"
            out += [
                (path, {}),
                (path, {"accept-encoding": "gzip"}),
                (path + "?anything=1", {}),  # the route takes no query: ignored
                (path, {"if-none-match": "*"}),
                (path, {"if-none-match": '"nope", W/"other"'}),
            ]
    out += [
        ("/tiles/facilities/14/0/0.pbf", {}),  # empty: 204
        ("/tiles/facilities/2/4/0.pbf", {}),  # outside the zoom's grid: 404
        ("/tiles/facilities/0/0/0.pbf", {}),  # below the layer's zooms: 204
    ]
    return out


HOSTILE: list[tuple[str, dict[str, str]]] = [
    ("/api/v1/locate", {}),
    ("/api/v1/locate?lon=113.6", {}),
    ("/api/v1/locate?lon=abc&lat=34.7", {}),
    ("/api/v1/locate?lon=200&lat=34.7", {}),
    ("/api/v1/locate?lon=113.6&lat=-91", {}),
    ("/api/v1/locate?lon=1e2&lat=34.7", {}),
    ("/api/v1/locate?lon=%2B113.6&lat=34.7", {}),
    ("/api/v1/locate?lon=%20113.6&lat=34.7", {}),
    ("/api/v1/locate?lon=0113.6&lat=34.7", {}),
    ("/api/v1/locate?lon=113.&lat=34.7", {}),
    ("/api/v1/locate?lon=.5&lat=34.7", {}),
    ("/api/v1/locate?lon=nan&lat=34.7", {}),
    ("/api/v1/locate?lon=inf&lat=34.7", {}),
    ("/api/v1/locate?lon=%EF%BC%91%EF%BC%91%EF%BC%93&lat=34.7", {}),  # full-width digits
    ("/api/v1/locate?lon=113.60000000000000000001&lat=34.7", {}),
    ("/api/v1/locate?lon=113.6&lon=113.7&lat=34.7", {}),
    ("/api/v1/locate?lon=113.6&lat=34.7&crs=WGS84", {}),
    ("/api/v1/locate?lon=113.6&lat=34.7&crs=", {}),
    ("/api/v1/locate?lon=113.6&lat=34.7&foo=1", {}),
    ("/api/v1/locate?lon=113.6&lat=34.7&at=2020-01-01", {}),
    ("/api/v1/locate?lon=113.6&lat=34.7&at=yesterday", {}),
    ("/api/v1/locate?lon=113.6&lat=34.7&api_key=nope", {}),
    ("/api/v1/locate?lon=113.6&lat=34.7", {"x-api-key": "nope"}),
    ("/api/v1/locate?lon=113.6&lat=34.7", {"authorization": "Bearer nope"}),
    ("/api/v1/locate?lon=113.6&lat=34.7", {"authorization": "Basic eDp5"}),
    ("/api/v1/locate?lon=113.6&lat=34.7", {"cookie": "gis_session=stale"}),
    ("/api/v1/locate?lon=113.6&lat=34.7", {"cookie": "gis_lsn=zz"}),
    ("/api/v1/locate?lon=113.6%00&lat=34.7", {}),
    ("/api/v1/locate/?lon=113.6&lat=34.7", {}),
    ("/api/v1/facilities?limit=0", {}),
    ("/api/v1/facilities?limit=-1", {}),
    ("/api/v1/facilities?limit=99999999999999999999", {}),
    ("/api/v1/facilities?limit=010", {}),
    ("/api/v1/facilities?offset=-1", {}),
    ("/api/v1/facilities?offset=1000001", {}),
    ("/api/v1/facilities?offset=1.5", {}),
    ("/api/v1/facilities?bbox=1,2,3,4&bbox=1,2,3,4", {}),
    ("/api/v1/facilities?bbox=1,2,3,4&crs=mars", {}),
    ("/api/v1/facilities?type=nope", {}),
    ("/api/v1/facilities?f=csv&limit=2", {}),
    ("/api/v1/facilities?limit=2&bogus=1", {}),
    ("/api/v1/facilities?limit=2&api_key=nope", {}),
    ("/tiles/facilities/23/0/0.pbf", {}),
    ("/tiles/facilities/-1/0/0.pbf", {}),
    ("/tiles/facilities/07/1/1.pbf", {}),
    ("/tiles/facilities/14/1e3/1.pbf", {}),
    ("/tiles/facilities/14/99999999/1.pbf", {}),
    ("/tiles/facilities/14/1/1.pbf?api_key=nope", {}),
    ("/tiles/facilities/14/1/1.pbf", {"if-none-match": ""}),
    ("/tiles/nope/14/1/1.pbf", {}),
    ("/tiles/facilities/14/1/1.pbf/", {}),
]


@pytest.fixture()
def access_log() -> Iterator[io.StringIO]:
    """The request log lines, as JSON text."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("gis.access")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old)


@pytest.fixture()
def slow_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the fast app handed to its ordinary router."""
    calls: list[str] = []
    ordinary = FastPaths.slow

    async def counted(self, scope, receive, send):
        calls.append(scope["path"])
        await ordinary(self, scope, receive, send)

    monkeypatch.setattr(FastPaths, "slow", counted)
    return calls


# Locate answers with the time it was asked ("at" : "2026-…"): the one part that may differ.
_NOW = re.compile(rb'"at" : "[^"]+"')


def _answer(client: TestClient, path: str, headers: dict[str, str], log: io.StringIO):
    start = log.tell()
    r = client.get(path, headers=headers)
    log.seek(start)
    lines = [json.loads(line) for line in log.read().splitlines()]
    requests = [{k: v for k, v in ln.items() if k not in ("ts", "duration_ms")} for ln in lines]
    body, stamped = _NOW.subn(b'"at" : "now"', r.content)
    # The time's length (microseconds without trailing zeros) moves the length by a byte.
    skip = {"content-length"} if stamped else set()
    for line in requests:
        if stamped:
            line.pop("bytes")
    kept = sorted((k, v) for k, v in r.headers.multi_items() if k not in skip)
    return r.status_code, kept, body, requests


def _compare(clients, requests, log) -> None:
    fast, slow = clients
    for path, headers in requests:
        slow.get(path, headers=headers)  # the tile cache warm for both
        expected = _answer(slow, path, headers, log)
        got = _answer(fast, path, headers, log)
        assert got == expected, f"{path} {headers}"


def test_plain_requests_are_served_fast_and_alike(
    clients, place, access_log: io.StringIO, slow_calls: list[str]
) -> None:
    requests = good_requests(place)
    _compare(clients, requests, access_log)
    assert slow_calls == [], "these should not have reached the router"
    statuses = {_answer(clients[0], p, h, access_log)[0] for p, h in requests}
    assert {200, 204, 404, 422} <= statuses  # found, empty, outside, refused: all compared


def test_an_etag_answers_304_alike(clients, place, access_log, slow_calls) -> None:
    x, y = tile_of(place["flon"], place["flat"], 16)
    path = f"/tiles/facilities/16/{x}/{y}.pbf"
    etag = clients[1].get(path).headers["etag"]
    requests = [
        (path, {"if-none-match": etag}),
        (path, {"if-none-match": f"W/{etag}"}),
        (path, {"if-none-match": f'"other", {etag}'}),
        (path, {"if-none-match": etag, "accept-encoding": "gzip"}),
    ]
    _compare(clients, requests, access_log)
    assert slow_calls == []
    assert _answer(clients[0], *requests[0], access_log)[0] == 304


def test_everything_else_is_answered_alike(clients, access_log, slow_calls) -> None:
    _compare(clients, HOSTILE, access_log)
    # The ones the fast paths cannot judge went to the ordinary route.
    assert "/api/v1/locate" in slow_calls and "/tiles/facilities/23/0/0.pbf" in slow_calls


def test_two_if_none_match_headers_take_the_ordinary_route(clients, place, slow_calls) -> None:
    x, y = tile_of(place["flon"], place["flat"], 16)
    path = f"/tiles/facilities/16/{x}/{y}.pbf"
    answers = [
        c.get(path, headers=[("if-none-match", '"a"'), ("if-none-match", '"b"')]) for c in clients
    ]
    assert answers[0].status_code == answers[1].status_code == 200
    assert answers[0].content == answers[1].content
    assert slow_calls == [path]


def test_head_and_other_methods_take_the_ordinary_route(clients, place, slow_calls) -> None:
    fast, slow = clients
    path = f"/api/v1/locate?lon={place['lon']:.6f}&lat={place['lat']:.6f}"
    for method in ("HEAD", "POST", "DELETE"):
        a, b = fast.request(method, path), slow.request(method, path)
        assert (a.status_code, a.headers.get("allow"), a.content) == (
            b.status_code,
            b.headers.get("allow"),
            b.content,
        )
    assert len(slow_calls) == 3


def test_the_document_is_the_same(clients) -> None:
    fast, slow = clients
    assert fast.get("/openapi.json").json() == slow.get("/openapi.json").json()
