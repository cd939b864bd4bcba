"""A corpus of hostile input sent to every route: no response may be a server error.

The operations come from the app's own OpenAPI document, so a new route is covered the day
it is added. Each parameter (path, query, header) and each field of a JSON or form body gets
the families that used to crash a route with a 500 (issue 11, finding 7): NUL bytes, numbers
beyond bigint or a double, dates beyond the calendar, CQL2 cut short or too large, JSON
nested 50,000 deep or holding an unpaired surrogate, unreadable uploads and file names such
as '.' and '..'. The other values of a request are valid, so the hostile one reaches as far
into the route as it can. Every refusal must be the usual JSON (or Open311) error.
"""

from __future__ import annotations

import io
import json
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_service.app import create_app
from gis_service.config import Settings
from gis_service.db.engine import make_engine
from tests.support.authkit import app_settings, bearer_for, find_scopes, key_for, make_user
from tests.support.databases import DEMO, Databases

NUL = "a\x00b"
STRINGS = [NUL, "x" * 5000, "' OR '1'='1' --", "\x0b\x0c\x1b", "😀\u200b", "%"]
INTEGERS = ["99999999999999999999", "-99999999999999999999", "9223372036854775808", "-1", "0"]
NUMBERS = ["1e400", "-1e400", "nan", "inf", "1e-400", "99999999999999999999"]
DATES = [
    "0000-01-01",
    "9999-12-31",
    "10000-01-01",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T00:00:00",
    "0000-01-01T00:00:00Z/2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00 08:00",
    "2026-02-30",
    "../..",
]
AREAS = ["150,-90,-150,90", "1e400,0,1,1", "nan,nan,nan,nan", "1,2,3", "-180,-90,180,90", "1,,2"]
FILTERS = [
    "code=" + "9" * 400,
    "BBOX(1,2,3,",
    "S_INTERSECTS(geometry,BBOX(150,-90,-150,90))",
    "(" * 500 + "true" + ")" * 500,
    "NOT " * 2000 + "true",
    "name LIKE '\\'",
    "'unterminated",
    "S_INTERSECTS(geometry, POLYGON((0 0, 1 0, 1 1)))",
    "S_INTERSECTS(geometry, POINT(1e400 0))",
    "code IN (" + ",".join(["'a'"] * 3000) + ")",
    "code = TIMESTAMP('0000-01-01T00:00:00Z')",
    "name > DATE('10000-01-01')",
]
DATE_NAMES = {"at", "since", "until", "datetime", "start_date", "end_date", "valid_from"}
AREA_NAMES = {"bbox", "near"}
DEEP = "[" * 50_000 + "]" * 50_000

_APP = create_app(Settings(database_url="postgresql+psycopg2://nobody@/none", load_demo=False))
_DOC = _APP.openapi()
OPERATIONS = [
    (method.upper(), path)
    for path, item in _DOC["paths"].items()
    for method in item
    if method in ("get", "post", "put", "patch", "delete")
]


@dataclass
class World:
    client: TestClient
    engine: Engine
    settings: Settings
    admin_id: int
    path_values: dict[str, Any]
    open311_key: str
    failures: list[str] = field(default_factory=list)
    _token: dict[str, str] = field(default_factory=dict)

    def headers(self, fresh: bool = False) -> dict[str, str]:
        """The admin's bearer token; a fresh one where the request may revoke it."""
        if fresh or not self._token:
            self._token = bearer_for(self.engine, self.settings, self.admin_id)
        return self._token


@pytest.fixture(scope="module")
def world(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = databases.new("hostile", DEMO)
    engine = make_engine(url, pool_size=2)
    settings = app_settings(url, tmp_path_factory.mktemp("hostile-data"))
    scopes = find_scopes(engine)
    admin = make_user(engine, "admin")
    viewer = make_user(engine, "viewer", grid=scopes.community)
    key, _ = key_for(engine, ["read"])
    _, open311_key = key_for(engine, ["open311", "read"])
    with engine.connect() as conn:
        public_code = conn.execute(
            text("SELECT public_code FROM hazards WHERE id = :id"), {"id": scopes.inside_hazard}
        ).scalar_one()
        category = conn.execute(
            text("SELECT code FROM hazard_categories WHERE active ORDER BY code LIMIT 1")
        ).scalar_one()
        assignment = conn.execute(
            text(
                "SELECT id, person_id FROM grid_assignments WHERE grid_id = :g"
                " AND valid_to IS NULL ORDER BY id LIMIT 1"
            ),
            {"g": scopes.grid},
        ).one()
    path_values = {
        "grid_id": scopes.grid,
        "hazard_id": scopes.inside_hazard,
        "facility_id": scopes.inside_facility,
        "collection_id": "grids_grid",
        "feature_id": scopes.grid,
        "layer": "grids_grid",
        "z": 14,
        "x": 13364,
        "y": 6501,
        "photo_id": uuid.uuid4().hex,
        "user_id": viewer["id"],
        "key_id": key["id"],
        "token_id": 1,
        "fmt": "json",
        "code": category,
        "request_id": public_code,
        "token": "rc_" + uuid.uuid4().hex,  # well formed, so the body is read; no such case
        "call_id": 1,
        "order_id": 1,
        "volunteer_id": 1,
        "partner_id": 1,
        "category": category,
        "grid_code": scopes.grid,
        "person_id": assignment.person_id,
        "assignment_id": assignment.id,
    }
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield World(client, engine, settings, admin["id"], path_values, open311_key)
    engine.dispose()


# ---- what a valid request looks like -----------------------------------------------------------
def _path(w: World, path: str, override: dict[str, str] | None = None) -> str:
    out = path
    for name, value in w.path_values.items():
        if name == "layer" and path.startswith("/api/v1/exports"):
            value = "grids"
        out = out.replace("{" + name + "}", str((override or {}).get(name, value)))
    for name, value in (override or {}).items():
        out = out.replace("{" + name + "}", value)
    return out


def _base_query(w: World, method: str, path: str) -> dict[str, str]:
    if path in ("/api/v1/locate", "/api/v1/facilities/nearest") and method == "GET":
        return {"lon": "113.6468", "lat": "34.7275"}
    if path.startswith("/api/v1/exports"):
        return {"root": _grid_code(w), "format": "geojson"}
    if path == "/api/v1/grids/check":
        return {"root": _grid_code(w)}  # one grid, not the whole territory, per request
    return {}


def _grid_code(w: World) -> str:
    with w.engine.connect() as conn:
        return conn.execute(
            text("SELECT code FROM grids WHERE id = :id"), {"id": w.path_values["grid_id"]}
        ).scalar_one()


def _version(w: World) -> int:
    with w.engine.connect() as conn:
        return conn.execute(
            text("SELECT version FROM hazards WHERE id = :id"), {"id": w.path_values["hazard_id"]}
        ).scalar_one()


def _base_body(w: World, method: str, path: str) -> dict[str, Any] | None:
    cat = w.path_values["category"]
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/api/v1/locate"): {"points": [[113.6468, 34.7275]]},
        ("POST", "/api/v1/hazards"): {
            "category": cat,
            "lon": 113.6468,
            "lat": 34.7275,
            "description": "hostile",
            "reporter_name": "名",
            "address": "地址",
            "facility_code": "F1",
        },
        ("POST", "/api/v1/hazards/{hazard_id}/actions"): {
            "action": "comment",
            "note": "hostile",
            "version": None,
        },
        ("POST", "/api/v1/auth/login"): {"username": "nobody", "password": "wrong password"},
        ("POST", "/api/v1/auth/tokens"): {"name": "hostile", "ttl_days": 1},
        ("POST", "/api/v1/users"): {
            "username": f"h-{uuid.uuid4().hex[:6]}",
            "display_name": "名",
            "password": "correct horse battery staple",
            "role": "viewer",
            "grid": w.path_values["grid_id"],
        },
        ("PATCH", "/api/v1/users/{user_id}"): {"display_name": "名", "reason": "hostile"},
        ("POST", "/api/v1/users/{user_id}/password"): {
            "password": "correct horse battery staple",
            "reason": "hostile",
        },
        ("POST", "/api/v1/users/{user_id}/disable"): {"reason": "hostile"},
        ("POST", "/api/v1/users/{user_id}/enable"): {"reason": "hostile"},
        ("POST", "/api/v1/users/{user_id}/unlock"): {"reason": "hostile"},
        ("POST", "/api/v1/people"): {
            "name": "名",
            "work_phone": "0371-6612 3456",
            "mobile_phone": "138 0371 0001",
            "party_member": True,
            "notes": "hostile",
            "grid": w.path_values["grid_id"],
            "reason": "hostile",
        },
        ("PATCH", "/api/v1/people/{person_id}"): {
            "notes": "hostile",
            "grid": w.path_values["grid_id"],
            "active": True,
            "reason": "hostile",
        },
        ("POST", "/api/v1/grids/{grid_id}/assignments"): {
            "person_id": w.path_values["person_id"],
            "role": "building_head",
            "valid_from": "2026-12-01",
            "valid_to": "2027-01-01",
            "reason": "hostile",
        },
        ("PUT", "/api/v1/grids/{grid_id}/leader"): {
            "person": {"name": "名"},
            "valid_from": "2026-12-01",
            "reason": "hostile",
        },
        ("POST", "/api/v1/assignments/{assignment_id}/end"): {
            "valid_to": "2026-12-01",
            "reason": "hostile",
        },
        ("POST", "/api/v1/keys"): {"name": "hostile", "scopes": ["read"]},
        ("POST", "/api/v1/receipts/{token}/callback"): {"rating": "satisfied", "comment": "好"},
        ("POST", "/api/v1/hazards/{hazard_id}/whistles"): {
            "parties": [{"department": "erqi_urban_management"}],
            "report_in": "2 工作时",
            "act": "3 工作日",
            "note": "hostile",
        },
        ("POST", "/api/v1/orders"): {
            "service_type": "home_certification",
            "lon": 113.6468,
            "lat": 34.7275,
            "description": "hostile",
            "address": "地址",
            "resident_name": "名",
        },
        ("POST", "/api/v1/orders/{order_id}/actions"): {
            "action": "comment",
            "note": "hostile",
            "version": 1,
        },
        ("POST", "/api/v1/volunteers"): {"name": "hostile", "grid": w.path_values["grid_id"]},
        ("PATCH", "/api/v1/volunteers/{volunteer_id}"): {"note": "hostile"},
        ("POST", "/api/v1/partners"): {
            "name": f"hostile {uuid.uuid4().hex[:6]}",
            "grid": w.path_values["grid_id"],
        },
        ("PATCH", "/api/v1/partners/{partner_id}"): {"note": "hostile"},
        ("POST", "/api/v1/whistles/{call_id}/actions"): {
            "action": "progress",
            "note": "hostile",
            "version": 1,
        },
    }
    body = bodies.get((method, path))
    if body is not None and "version" in body:
        body = {**body, "version": _version(w)}
    return body


# ---- sending and judging -------------------------------------------------------------------------
def _send(w: World, label: str, method: str, url: str, **kw: Any) -> None:
    # Logging out, revoking a token or disabling a user may end the token it was sent with.
    fresh = any(word in url for word in ("logout", "tokens/", "disable"))
    headers = {**w.headers(fresh), **kw.pop("headers", {})}
    try:
        r = w.client.request(method, url, headers=headers, **kw)
    except UnicodeEncodeError:
        return  # a header httpx will not send (non-ASCII): no server sees it
    if r.status_code >= 500:
        w.failures.append(f"{r.status_code} {label}: {method} {url[:160]} → {r.text[:200]}")
        return
    if r.status_code >= 400 and not r.headers.get("content-type", "").startswith(
        ("application/json", "text/xml", "application/problem+json")
    ):
        w.failures.append(f"non-JSON error {r.status_code} {label}: {method} {url[:160]}")


def _values_for(param: dict[str, Any]) -> list[str]:
    name = param["name"]
    schema = param.get("schema", {})
    types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
    if name in DATE_NAMES:
        return [*DATES, NUL]
    if name in AREA_NAMES:
        return [*AREAS, NUL]
    if name == "filter":
        return [*FILTERS, NUL]
    if "integer" in types:
        return [*INTEGERS, "1e400", NUL]
    if "number" in types:
        return [*NUMBERS, NUL]
    if "boolean" in types:
        return ["maybe", NUL]
    return STRINGS


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_hostile_parameters(world: World, method: str, path: str) -> None:
    """Every path, query and header parameter of every operation."""
    world.failures.clear()
    op = _DOC["paths"][path][method.lower()]
    base_query = _base_query(world, method, path)
    body = _base_body(world, method, path)
    for param in op.get("parameters", []):
        name, where = param["name"], param["in"]
        for value in _values_for(param):
            label = f"{where} {name}={value[:40]!r}"
            query = dict(base_query)
            headers: dict[str, str] = {}
            url = _path(world, path)
            if where == "query":
                query[name] = value
            elif where == "path":
                if "/" in value or value in ("..", "%"):
                    continue  # another route, not this parameter
                url = _path(world, path, {name: quote(value, safe="")})
            elif where == "header":
                headers[name] = value
            _send(world, label, method, url, params=query, headers=headers, json=body)
    assert not world.failures, "\n".join(world.failures[:20])


JSON_OPERATIONS = [
    (m, p)
    for m, p in OPERATIONS
    if "application/json" in _DOC["paths"][p][m.lower()].get("requestBody", {}).get("content", {})
]


@pytest.mark.parametrize(
    ("method", "path"), JSON_OPERATIONS, ids=[f"{m} {p}" for m, p in JSON_OPERATIONS]
)
def test_hostile_json_bodies(world: World, method: str, path: str) -> None:
    """Every field of every JSON body, and the body as a whole."""
    world.failures.clear()
    url = _path(world, path)
    base = _base_body(world, method, path)
    assert base is not None, f"add a valid body of {method} {path} to _base_body"
    raw_bodies = [
        DEEP.encode(),
        ('{"a": ' + DEEP + "}").encode(),
        b'{"description": "\\ud800"}',
        b'{"username": "a\\u0000b", "password": "x"}',
        b'{"a": "\x00"}',
        b"\xff\xfe{}",
        b'{"a": 1e400}',
        b"[]",
        b"null",
    ]
    for raw in raw_bodies:
        _send(
            world,
            f"body {raw[:30]!r}",
            method,
            url,
            content=raw,
            headers={"content-type": "application/json"},
        )
    for key in base:
        for value in [NUL, "x" * 100_000, 10**20, -(10**20), 1e308, {"n": NUL}, [NUL], None, True]:
            _send(world, f"field {key}={str(value)[:30]!r}", method, url, json={**base, key: value})
        deep = json.dumps({**base, key: "@"}).replace('"@"', DEEP)
        _send(
            world,
            f"field {key} nested 50,000 deep",
            method,
            url,
            content=deep.encode(),
            headers={"content-type": "application/json"},
        )
    assert not world.failures, "\n".join(world.failures[:20])


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims a size (the pixels are one compressed row, repeated by nobody)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    ihdr_chunk = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data = zlib.compress(b"\x00" * (width * 3 + 1))
    idat = b"IDAT" + data
    idat_chunk = struct.pack(">I", len(data)) + idat + struct.pack(">I", zlib.crc32(idat))
    end = b"IEND"
    return (
        b"\x89PNG\r\n\x1a\n"
        + ihdr_chunk
        + idat_chunk
        + struct.pack(">I", 0)
        + end
        + struct.pack(">I", zlib.crc32(end))
    )


def test_hostile_forms_and_uploads(world: World, tmp_path: Path) -> None:
    """Multipart reports and moves with hostile photos and names; Open311 forms; imports of
    unreadable files, odd names, unknown codecs and CRSs."""
    world.failures.clear()
    cat = world.path_values["category"]
    report = {"category": cat, "lon": "113.6468", "lat": "34.7275", "description": "hostile"}
    photos = {
        "bomb": _png_header(30_000, 30_000),
        "garbage": b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,
        "empty": b"",
        "text": b"hello",
    }
    for what, data in photos.items():
        for name in ("p.png", NUL + ".png", ".", "..", "x" * 400 + ".png"):
            _send(
                world,
                f"photo {what} {name[:20]!r}",
                "POST",
                "/api/v1/hazards",
                data=report,
                files={"photos": (name, data, "image/png")},
            )
    for key in report:
        _send(world, f"form {key}", "POST", "/api/v1/hazards", data={**report, key: NUL}, files={})
    hid = world.path_values["hazard_id"]
    _send(
        world,
        "action form NUL note",
        "POST",
        f"/api/v1/hazards/{hid}/actions",
        data={"action": "comment", "note": NUL, "version": str(_version(world))},
        files={"photos": ("p.png", photos["bomb"], "image/png")},
    )
    form311 = {"service_code": cat, "lat": "34.7275", "long": "113.6468", "description": "x"}
    for key in [*form311, "first_name", "email", "attribute[severity]", "api_key"]:
        for value in (NUL, "x" * 5000, "1e400", "\x0b"):
            _send(
                world,
                f"open311 {key}={value[:10]!r}",
                "POST",
                "/open311/v2/requests.xml",
                data={"api_key": world.open311_key, **form311, key: value},
                headers={"Authorization": ""},
            )
    unclosed = json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"code": "X1", "name": "x", "level": "street"},
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [[[113.6, 34.7], [113.61, 34.7], [113.61, 34.71]]],
                    },
                }
            ],
        }
    ).encode()
    empty = b'{"type": "FeatureCollection", "features": []}'
    # "Billion laughs": nine levels of nine aliases each.
    levels = ["a: &a [" + ", ".join(["lol"] * 9) + "]"]
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        levels.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    billion = "\n".join([*levels, "code: *i"])
    uploads = [
        ("g.geojson", unclosed, {}),
        (".", empty, {}),
        ("..", empty, {}),
        ("x" * 400 + ".geojson", empty, {}),
        ("g.geojson", b"\x00\x01garbage", {}),
        ("g.zip", b"PK\x03\x04garbage", {}),
        ("g.geojson", empty, {"encoding": "no-such-codec"}),
        ("g.csv", "名称,lon,lat\n甲,1,2\n".encode("gbk"), {"encoding": "utf-16"}),
        ("g.geojson", empty, {"crs": "EPSG:99999999999999999999"}),
        ("g.geojson", empty, {"crs": NUL}),
        ("g.geojson", empty, {"valid_from": "10000-01-01"}),
        ("g.geojson", empty, {"valid_from": "0001-01-01T00:00:00+14:00"}),
        ("g.geojson", empty, {"mapping": billion}),
        ("g.geojson", empty, {"mapping": "[" * 10_000}),
        ("g.geojson", empty, {"fields": "code"}),
        ("g.geojson", empty, {"layer": "nope"}),
        ("g.geojson", empty, {"check": "maybe"}),
    ]
    for name, data, form in uploads:
        _send(
            world,
            f"import {name[:20]!r} {form}",
            "POST",
            "/api/v1/imports",
            files={"file": (name, io.BytesIO(data))},
            data={"check": "true", **form},
        )
    # Idempotency keys and versions in headers
    for header, value in (
        ("Idempotency-Key", "k" * 5000),
        ("Idempotency-Key", "短短短短短短短短"),
        ("If-Match", '"99999999999999999999"'),
        ("If-Match", 'W/"1"'),
        ("If-Match", '"-1"'),
        ("X-Forwarded-For", "not-an-ip, 999.1.1.1"),
        ("Authorization", "Bearer " + "x" * 10_000),
        ("X-API-Key", "k" * 10_000),
    ):
        url = f"/api/v1/hazards/{hid}/actions" if header == "If-Match" else "/api/v1/hazards"
        body = (
            {"action": "comment", "note": "h"}
            if header == "If-Match"
            else {
                "category": cat,
                "lon": 113.6468,
                "lat": 34.7275,
                "description": "hostile",
            }
        )
        _send(world, f"header {header}", "POST", url, json=body, headers={header: value})
    assert not world.failures, "\n".join(world.failures[:20])
