"""The permission matrix: every route × every kind of caller × inside or outside their scope.

Routes are enumerated from the app itself, so a new route without a declaration, or without
a way here to fill its path parameters, fails these tests. For each route and caller the
declared access must be the enforced one (401 for anonymous, 403 for a role or key scope not
declared), nothing may answer 500, and no private field (a staff mobile phone or a reporter's
phone) may reach a caller whose scope does not cover it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_service.app import create_app
from gis_service.auth import admin as auth_admin
from gis_service.auth import service as auth_service
from gis_service.auth.access import Access
from gis_service.auth.deps import current_principal
from gis_service.auth.roles import ROLE_SCOPES
from gis_service.config import Settings
from gis_service.db.engine import make_engine
from gis_service.http.routes import iter_routes
from tests.support.authkit import (
    PASSWORD,
    Scopes,
    app_settings,
    bearer_for,
    find_scopes,
    key_for,
    make_user,
)
from tests.support.databases import DEMO, Databases

# ---- the routes, enumerated once at collection time -----------------------------------------
_APP = create_app(Settings(database_url="postgresql+psycopg2://nobody@/none", load_demo=False))
ROUTES = [r for r in iter_routes(_APP)]
CALLABLE = [
    (method, r.path)
    for r in ROUTES
    if r.is_api or r.methods
    for method in sorted(r.methods - {"HEAD"})
]

# Unsafe routes that anonymous visitors may call, on purpose.
ANONYMOUS_WRITES = {
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/tokens"),  # with username and password in the body
    ("POST", "/api/v1/hazards"),  # resident reports, rate-limited
    ("POST", "/api/v1/locate"),  # a batch read sent as a body
    ("POST", "/api/v1/receipts/{token}/callback"),  # the receipt link is the capability
    ("POST", "/api/v1/orders"),  # 群众点单, rate-limited like reports
}

# Callers of the matrix: users of each role (bound to the grid that fits the role) and keys.
ROLE_ROOT = {
    "admin": None,
    "street_staff": "street",
    "community_staff": "community",
    "grid_leader": "grid",
    "field_staff": "grid",
    "viewer": "community",
}
KEYS = {
    "key_read": (["read"], None),
    "key_report": (["report"], None),
    "key_staff": (["read", "read_private", "report", "write"], "community"),
}
CALLERS = ["anonymous", *ROLE_ROOT, *KEYS, "key_revoked"]

PHONE = re.compile(r"100-\d{4}-\d{4}")
# A reporter's name or phone with a value (the OpenAPI schema names the fields, no values).
REPORTER_VALUE = re.compile(
    r'"reporter_(?:name|phone)"\s*:\s*"[^"]|"reporter"\s*:\s*\{[^}]*"(?:name|phone)"\s*:\s*"[^"]'
)


def test_every_route_declares_who_may_call() -> None:
    missing = sorted({f"{sorted(r.methods)} {r.path}" for r in ROUTES if r.access is None})
    assert not missing, (
        "These routes declare nobody: add a require(...) dependency (gis_service.auth.deps) "
        f"or gis_service.http.routes.declare for non-API routes: {missing}"
    )


def test_anonymous_writes_are_deliberate() -> None:
    loose = sorted(
        (m, r.path)
        for r in ROUTES
        if r.access is not None and r.access.allow_anonymous
        for m in r.methods - {"GET", "HEAD", "OPTIONS"}
        if (m, r.path) not in ANONYMOUS_WRITES
        and not (r.path.startswith("/open311/") and "requests" in r.path)
    )
    assert not loose, f"anonymous visitors may write through {loose}; is that intended?"


def test_openapi_lists_roles_for_every_operation() -> None:
    schema = _APP.openapi()
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                assert "x-roles" in op, f"{method.upper()} {path} has no x-roles"
                assert "Who may call:" in op.get("description", ""), f"{method} {path}"


# ---- the world -------------------------------------------------------------------------------
@dataclass
class World:
    """The database, the app and everything the requests need."""

    engine: Engine
    client: TestClient
    settings: Settings
    scopes: Scopes
    users: dict[str, dict]
    keys: dict[str, tuple[dict, str]]
    revoked_key: str
    throwaway_user: dict
    throwaway_key: dict
    points: dict[str, tuple[float, float]]
    tile: dict[str, tuple[int, int, int]]
    category: str
    hazard_collection: str
    allowed_phones: dict[str, set[str] | None]
    public_codes: dict[str, str]
    calls: dict[str, int]
    registry: dict[tuple[str, str], int]
    # An account and a key of another street: what "outside" means for users and keys.
    outside_user: dict = field(default_factory=dict)
    outside_key: dict = field(default_factory=dict)
    care: dict[str, dict[str, int]] = field(default_factory=dict)
    care_names: dict[str, set[str]] = field(default_factory=dict)
    all_care_names: set[str] = field(default_factory=set)

    def headers(self, caller: str) -> dict[str, str]:
        """Fresh credentials of a caller (a route may log out or revoke the ones it gets)."""
        if caller == "anonymous":
            return {}
        if caller in self.users:
            return bearer_for(self.engine, self.settings, self.users[caller]["id"])
        if caller == "key_revoked":
            return {"X-API-Key": self.revoked_key}
        return {"X-API-Key": self.keys[caller][1]}

    def access_of(self, caller: str, access: Access) -> tuple[bool, int]:
        """(allowed by the declaration, the status when refused)."""
        if caller == "anonymous":
            return access.allow_anonymous, 401
        if caller == "key_revoked":
            return False, 401
        if caller in self.users:
            return access.user_allowed(self.users[caller]["role"]), 403
        return access.key_allowed(self.keys[caller][0]["scopes"]), 403


@pytest.fixture(scope="module")
def world(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = databases.new("perm", DEMO)
    engine = make_engine(url, pool_size=2)
    scopes = find_scopes(engine)
    root = {"street": scopes.street, "community": scopes.community, "grid": scopes.grid}
    users = {
        role: make_user(
            engine,
            role,
            grid=root[where] if where else None,
            person_id=scopes.grid_leader_person if role == "grid_leader" else None,
        )
        for role, where in ROLE_ROOT.items()
    }
    keys = {
        name: key_for(engine, scopes_, grid=root[where] if where else None)
        for name, (scopes_, where) in KEYS.items()
    }
    revoked, revoked_secret = key_for(engine, ["read", "report"])
    throwaway_key, _ = key_for(engine, ["read"])
    with engine.connect() as conn:
        auth_admin.revoke_key(conn, None, revoked["id"], None)
        points = {
            name: tuple(
                conn.execute(
                    text(
                        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p "
                        "FROM grids WHERE id = :g) x"
                    ),
                    {"g": gid},
                ).one()
            )
            for name, gid in (("inside", scopes.grid), ("outside", scopes.other_grid))
        }
        category = conn.execute(
            text("SELECT code FROM hazard_categories WHERE active ORDER BY code LIMIT 1")
        ).scalar_one()
        calls = {
            v: conn.execute(
                text(
                    "INSERT INTO whistle_calls (hazard_id, department_id, party_name,"
                    " report_limit, act_limit, report_due_at, act_due_at, grid_path)"
                    " SELECT h.id, (SELECT id FROM departments ORDER BY id LIMIT 1), '矩阵',"
                    " '{}', '{}', now(), now(), h.grid_path FROM hazards h WHERE h.id = :id"
                    " RETURNING id"
                ),
                {"id": hid},
            ).scalar_one()
            for v, hid in (("inside", scopes.inside_hazard), ("outside", scopes.outside_hazard))
        }
        registry = {}
        for v, gid in (("inside", scopes.grid), ("outside", scopes.other_grid)):
            registry[("volunteers", v)] = conn.execute(
                text(
                    "INSERT INTO volunteers (name, skills, grid_id, grid_path)"
                    " SELECT '矩阵志愿者', '{}', id, path FROM grids WHERE id = :g RETURNING id"
                ),
                {"g": gid},
            ).scalar_one()
            registry[("partner_units", v)] = conn.execute(
                text(
                    "INSERT INTO partner_units (name, grid_id, grid_path)"
                    " SELECT '矩阵单位' || :v, id, path FROM grids WHERE id = :g RETURNING id"
                ),
                {"g": gid, "v": v},
            ).scalar_one()
            registry[("orders", v)] = conn.execute(
                text(
                    "INSERT INTO service_orders (public_code, service_type, description, geom,"
                    " grid_id, grid_path)"
                    " SELECT 'FW-MATRIX-' || :v, 'wheelchair_delivery', '矩阵', "
                    " ST_PointOnSurface(geom), id, path"
                    " FROM grids WHERE id = :g RETURNING id"
                ),
                {"g": gid, "v": v},
            ).scalar_one()
        conn.commit()
        public_codes = {
            v: conn.execute(
                text("SELECT public_code FROM hazards WHERE id = :id"), {"id": hid}
            ).scalar_one()
            for v, hid in (("inside", scopes.inside_hazard), ("outside", scopes.outside_hazard))
        }
    settings = app_settings(url, tmp_path_factory.mktemp("perm-data"))
    client = TestClient(create_app(settings))
    client.__enter__()
    collections = client.get("/ogc/collections").json()["collections"]
    hazard_collection = next(c["id"] for c in collections if "hazard" in c["id"])
    w = World(
        engine=engine,
        client=client,
        settings=settings,
        scopes=scopes,
        users=users,
        keys=keys,
        revoked_key=revoked_secret,
        throwaway_user=make_user(engine, "viewer", grid=scopes.community),
        throwaway_key=throwaway_key,
        outside_user=make_user(engine, "viewer", grid=scopes.other_street),
        outside_key=key_for(engine, ["read"], grid=scopes.other_street)[0],
        points=points,
        tile={k: _tile(*v, 16) for k, v in points.items()},
        category=category,
        hazard_collection=hazard_collection,
        allowed_phones={},
        public_codes=public_codes,
        calls=calls,
        registry=registry,
    )
    w.care = _care_objects(w)
    w.allowed_phones = _allowed_phones(w)
    w.care_names, w.all_care_names = _care_names(w)
    # A demo name that the API documentation uses as an example is no leak.
    public_text = json.dumps(_APP.openapi(), ensure_ascii=False)
    w.all_care_names = {n for n in w.all_care_names if f'"{n}"' not in public_text}
    yield w
    client.__exit__(None, None, None)
    engine.dispose()


def _tile(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    import math

    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


# A person under care, a visit and a patrol inside G1 and in the other street, made here so
# that the matrix has them whatever the demo drew.
_CARE_SQL = """
    WITH m AS (SELECT id, geom FROM grids WHERE parent_id = :grid AND level = 'micro_grid'
                ORDER BY id LIMIT 1),
    h AS (INSERT INTO households (code, grid_id, address, geom)
          SELECT :code, m.id, '矩阵测试地址', ST_PointOnSurface(m.geom) FROM m RETURNING id),
    p AS (INSERT INTO care_people (household_id, name, phone, categories)
          SELECT h.id, :name, :phone, '{elderly_alone}' FROM h RETURNING id, household_id),
    v AS (INSERT INTO visits (person_id, household_id, grid_id, grid_path, visitor_name,
                              principal, visited_at, findings)
          SELECT p.id, p.household_id, m.id, g.path, '矩阵', 'system', now(), '矩阵走访'
            FROM p, m JOIN grids g ON g.id = m.id RETURNING id),
    t AS (INSERT INTO patrols (ref, principal, walker_name, grid_id, grid_path, source,
                               started_at, ended_at, received_at, track, points, length_m,
                               micro_grids)
          SELECT gen_random_uuid(), 'system', '矩阵', m.id, g.path, 'app', now() - interval '1h',
                 now() - interval '50 min', now(),
                 ST_SetSRID(ST_MakeLine(ST_MakePointM(ST_X(a), ST_Y(a), 1),
                                        ST_MakePointM(ST_X(b), ST_Y(b), 2)), 4326), 2, 10,
                 ARRAY[m.id]
            FROM m JOIN grids g ON g.id = m.id,
                 LATERAL (SELECT (ST_Dump(ST_GeneratePoints(m.geom, 2, 7))).geom) x (a),
                 LATERAL (SELECT ST_PointOnSurface(m.geom)) y (b)
           LIMIT 1 RETURNING id)
    SELECT (SELECT id FROM p) AS person, (SELECT household_id FROM p) AS household,
           (SELECT id FROM v) AS visit, (SELECT id FROM t) AS patrol, (SELECT id FROM m) AS micro
"""


def _care_objects(w: World) -> dict[str, dict[str, int]]:
    out = {}
    with w.engine.begin() as conn:
        for variant, grid, n in (("inside", w.scopes.grid, 1), ("outside", w.scopes.other_grid, 2)):
            row = conn.execute(
                text(_CARE_SQL),
                {
                    "grid": grid,
                    "code": f"MATRIX-{variant}",
                    "name": f"矩阵{'甲乙'[n - 1]}某",
                    "phone": f"100-8999-000{n}",
                },
            ).one()
            out[variant] = dict(row._mapping)
            lon, lat = conn.execute(
                text(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids "
                    "WHERE id = :m) s"
                ),
                {"m": row.micro},
            ).one()
            out[variant]["point"] = (lon, lat)  # type: ignore[assignment]
    return out


def _care_names(w: World) -> tuple[dict[str, set[str]], set[str]]:
    """Per caller: the names of people under care it may read; and all of them."""
    sql = text(
        """
        SELECT p.name FROM care_people p JOIN households h ON h.id = p.household_id
          JOIN grids g ON g.id = h.grid_id
         WHERE CAST(:scope AS bigint[]) IS NULL OR g.path && CAST(:scope AS bigint[])
        """
    )
    # A fictional name the demo also gave a staff member or a volunteer is no probe: those
    # are listed under their own rules.
    others = text(
        "SELECT name FROM people UNION SELECT name FROM volunteers"
        " UNION SELECT name FROM partner_units"
    )
    with w.engine.connect() as conn:
        every = set(conn.execute(sql, {"scope": None}).scalars())
        every -= set(conn.execute(others).scalars())
        out: dict[str, set[str]] = {"anonymous": set(), "key_revoked": set()}
        for role, user in w.users.items():
            root = user["grid_id"]
            out[role] = (
                every if root is None else set(conn.execute(sql, {"scope": [root]}).scalars())
            )
        for name, (key, _) in w.keys.items():
            root = key["grid_id"]
            if "read_private" not in key["scopes"]:
                out[name] = set()
            else:
                out[name] = (
                    every if root is None else set(conn.execute(sql, {"scope": [root]}).scalars())
                )
    return out, every


def _allowed_phones(w: World) -> dict[str, set[str] | None]:
    """Per caller: the private phones it may see (None = all of them)."""
    out: dict[str, set[str] | None] = {"anonymous": set(), "key_revoked": set()}
    sql = text(
        """
        SELECT p.mobile_phone FROM people p
          JOIN grid_assignments a ON a.person_id = p.id
          JOIN grids g ON g.id = a.grid_id
         WHERE g.path && CAST(:scope AS bigint[]) AND p.mobile_phone IS NOT NULL
        UNION
        SELECT reporter_phone FROM hazards
         WHERE (grid_path && CAST(:scope AS bigint[])
                OR assignee_person_id = CAST(:person AS bigint))
           AND reporter_phone IS NOT NULL
        UNION
        SELECT p.phone FROM care_people p JOIN households h ON h.id = p.household_id
          JOIN grids g ON g.id = h.grid_id
         WHERE g.path && CAST(:scope AS bigint[]) AND p.phone IS NOT NULL
        """
    )
    with w.engine.connect() as conn:

        def phones(root: int, person: int | None) -> set[str]:
            return set(conn.execute(sql, {"scope": [root], "person": person}).scalars())

        for role, user in w.users.items():
            out[role] = (
                None if user["grid_id"] is None else phones(user["grid_id"], user["person_id"])
            )
        for name, (key, _) in w.keys.items():
            if "read_private" not in key["scopes"]:
                out[name] = set()
            else:
                out[name] = None if key["grid_id"] is None else phones(key["grid_id"], None)
    return out


# ---- filling in requests -----------------------------------------------------------------------
def _fresh_token_id(w: World, user: dict) -> int:
    with w.engine.connect() as conn, conn.begin():
        return auth_service.issue_token(conn, w.settings, user["id"], "bearer")[0]


def _hazard_version(w: World, hazard_id: int) -> int:
    with w.engine.connect() as conn:
        return conn.execute(
            text("SELECT version FROM hazards WHERE id = :id"), {"id": hazard_id}
        ).scalar_one()


PathFiller = Callable[[World, str, str], str | int]
PATH_PARAMS: dict[str, PathFiller] = {
    "grid_id": lambda w, v, c: w.scopes.grid if v == "inside" else w.scopes.other_grid,
    "hazard_id": lambda w, v, c: (
        w.scopes.inside_hazard if v == "inside" else w.scopes.outside_hazard
    ),
    "facility_id": lambda w, v, c: (
        w.scopes.inside_facility if v == "inside" else w.scopes.outside_facility
    ),
    "collection_id": lambda w, v, c: w.hazard_collection,
    "feature_id": lambda w, v, c: (
        w.scopes.inside_hazard if v == "inside" else w.scopes.outside_hazard
    ),
    "layer": lambda w, v, c: "hazards_open",
    "queue": lambda w, v, c: "to_accept",
    "z": lambda w, v, c: w.tile[v][0],
    "x": lambda w, v, c: w.tile[v][1],
    "y": lambda w, v, c: w.tile[v][2],
    "photo_id": lambda w, v, c: uuid.uuid4().hex,
    "user_id": lambda w, v, c: (w.throwaway_user if v == "inside" else w.outside_user)["id"],
    "key_id": lambda w, v, c: (w.throwaway_key if v == "inside" else w.outside_key)["id"],
    "person_id": lambda w, v, c: _fresh_person(w, v),
    "assignment_id": lambda w, v, c: _fresh_assignment(w, v),
    "token_id": lambda w, v, c: _token_of(w, v, c),
    # Open311 GeoReport v2
    "fmt": lambda w, v, c: "json",
    "code": lambda w, v, c: w.category,
    "request_id": lambda w, v, c: w.public_codes[v],
    "token": lambda w, v, c: uuid.uuid4().hex,
    # 吹哨 calls on the inside and outside hazards
    "call_id": lambda w, v, c: w.calls[v],
    # field work (issue 14): a person under care (not a grid worker: /people/{person_id})
    "care_person_id": lambda w, v, c: w.care[v]["person"],
    "household_id": lambda w, v, c: w.care[v]["household"],
    "visit_id": lambda w, v, c: w.care[v]["visit"],
    "patrol_id": lambda w, v, c: w.care[v]["patrol"],
    # 三单制: an order, a volunteer and a partner unit inside and outside the scope
    "order_id": lambda w, v, c: w.registry[("orders", v)],
    "volunteer_id": lambda w, v, c: w.registry[("volunteers", v)],
    "partner_id": lambda w, v, c: w.registry[("partner_units", v)],
}


def _token_of(w: World, variant: str, caller: str) -> int:
    """inside: one of the caller's own tokens; outside: somebody else's."""
    if variant == "inside" and caller in w.users:
        return _fresh_token_id(w, w.users[caller])
    other = "field_staff" if caller == "viewer" else "viewer"
    return _fresh_token_id(w, w.users[other])


def _fresh_person(w: World, variant: str) -> int:
    """A new person kept by the inside grid, or by a grid of the other street."""
    grid = w.scopes.grid if variant == "inside" else w.scopes.other_grid
    with w.engine.begin() as conn:
        return conn.execute(
            text("INSERT INTO people (name, grid_id) VALUES (:n, :g) RETURNING id"),
            {"n": f"矩阵{uuid.uuid4().hex[:6]}", "g": grid},
        ).scalar_one()


def _fresh_assignment(w: World, variant: str) -> int:
    """A new volunteer on the inside grid, or on a grid of the other street."""
    grid = w.scopes.grid if variant == "inside" else w.scopes.other_grid
    person = _fresh_person(w, variant)
    with w.engine.begin() as conn:
        return conn.execute(
            text(
                "INSERT INTO grid_assignments (grid_id, person_id, role)"
                " VALUES (:g, :p, 'volunteer') RETURNING id"
            ),
            {"g": grid, "p": person},
        ).scalar_one()


# Routes whose path carries an object that lies inside or outside a caller's scope.
SCOPED_PARAMS = {
    "grid_id", "hazard_id", "facility_id", "feature_id", "token_id", "x", "request_id",
    "call_id", "order_id", "volunteer_id", "partner_id",
    "user_id", "key_id", "person_id", "assignment_id",
    "care_person_id", "household_id", "visit_id", "patrol_id",
}  # fmt: skip


def _query(w: World, method: str, path: str, variant: str) -> dict[str, Any]:
    lon, lat = w.points[variant]
    if path == "/api/v1/locate" and method == "GET":
        return {"lon": lon, "lat": lat}
    if path == "/api/v1/facilities/nearest":
        return {"lon": lon, "lat": lat}
    return {}


def _body(w: World, method: str, path: str, variant: str) -> Any:
    lon, lat = w.points[variant]
    tag = uuid.uuid4().hex[:8]
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/api/v1/locate"): {"points": [[lon, lat]]},
        ("POST", "/api/v1/hazards"): {
            "category": w.category,
            "lon": lon,
            "lat": lat,
            "description": f"权限矩阵测试 {tag}",
            "reporter_phone": "100-7777-0000",
        },
        ("POST", "/api/v1/hazards/{hazard_id}/actions"): lambda hid: {
            "action": "comment",
            "note": f"matrix {tag}",
            "version": _hazard_version(w, hid),
        },
        ("POST", "/api/v1/auth/login"): {
            "username": w.throwaway_user["username"],
            "password": "correct horse battery staple",
        },
        ("POST", "/api/v1/auth/tokens"): {},
        ("POST", "/api/v1/users"): {
            "username": f"matrix-{tag}",
            "display_name": "矩阵",
            "password": "correct horse battery staple",
            "role": "viewer",
            "grid": w.scopes.community,
        },
        ("POST", "/api/v1/keys"): {
            "name": f"matrix {tag}",
            "scopes": ["read"],
            "grid": w.scopes.community,
        },
        ("PATCH", "/api/v1/users/{user_id}"): {"display_name": f"矩阵{tag}", "reason": "matrix"},
        ("POST", "/api/v1/users/{user_id}/password"): {"password": PASSWORD, "reason": "matrix"},
        ("POST", "/api/v1/people"): {"name": f"矩阵{tag}", "grid": w.scopes.grid, "reason": "m"},
        ("PATCH", "/api/v1/people/{person_id}"): {"notes": f"matrix {tag}", "reason": "matrix"},
        ("POST", "/api/v1/grids/{grid_id}/assignments"): {
            "person": {"name": f"矩阵{tag}"},
            "role": "volunteer",
            "reason": "matrix",
        },
        ("PUT", "/api/v1/grids/{grid_id}/leader"): {
            "person": {"name": f"矩阵{tag}", "mobile_phone": "13800000000"},
            "reason": "matrix",
        },
        ("POST", "/api/v1/assignments/{assignment_id}/end"): {"reason": "matrix"},
        ("POST", "/api/v1/visits"): {
            "person_id": w.care[variant]["person"],
            "findings": f"矩阵走访 {tag}",
        },
        ("POST", "/api/v1/patrols"): _matrix_track(w, variant),
    }
    body = bodies.get((method, path), {} if method in ("POST", "PUT", "PATCH") else None)
    if callable(body):
        hid = w.scopes.inside_hazard if variant == "inside" else w.scopes.outside_hazard
        body = body(hid)
    return body


def _matrix_track(w: World, variant: str) -> dict[str, Any]:
    """A short walk inside the variant's micro-grid, with a fresh ref."""
    import time

    lon, lat = w.care[variant]["point"]  # type: ignore[misc]
    t = time.time() - 600
    points = [[lon, lat, t], [lon + 0.00001, lat + 0.00001, t + 15]]
    return {"ref": str(uuid.uuid4()), "points": points}


def _url(w: World, path: str, variant: str, caller: str) -> str:
    names = re.findall(r"{(\w+)(?::\w+)?}", path)
    out = path
    for name in names:
        filler = PATH_PARAMS.get(name)
        if filler is None:
            pytest.fail(
                f"No filler for the path parameter {name!r} of {path}: add one to PATH_PARAMS "
                "in tests/test_permissions.py so the permission matrix covers the route."
            )
        out = re.sub(r"{" + name + r"(?::\w+)?}", str(filler(w, variant, caller)), out)
    return out


# Callers that the declaration admits but the route itself refuses, by design.
EXPECTED_REFUSALS: dict[tuple[str, str, str], int] = {
    ("POST", "/api/v1/auth/tokens", "anonymous"): 401,  # no credentials in the body
    **{("POST", "/api/v1/auth/tokens", k): 403 for k in KEYS},  # keys mint no user tokens
}


def _leaks(w: World, caller: str, body: str) -> list[str]:
    allowed = w.allowed_phones[caller]
    problems = []
    if allowed is not None:
        found = set(PHONE.findall(body)) - allowed - {"100-7777-0000"}
        if found:
            problems.append(f"private phones {sorted(found)[:5]}")
    if allowed is not None and not allowed and REPORTER_VALUE.search(body):
        problems.append("a reporter field")
    # People under care: no name outside the caller's area, as a JSON string or in a GPX.
    hidden = w.all_care_names - w.care_names.get(caller, set())
    named = sorted(n for n in hidden if f'"{n}"' in body or f">{n}<" in body)
    if named:
        problems.append(f"people under care {named[:5]}")
    return problems


def _route(method: str, path: str):
    return next(r for r in ROUTES if r.path == path and method in r.methods)


def _resolves_principal(route) -> bool:
    """True when the route looks at the caller's credentials at all."""
    stack = [route.dependant.dependencies] if route.dependant is not None else []
    while stack:
        for dep in stack.pop():
            # Some routes resolve the caller lazily, only when credentials are presented.
            if dep.call is current_principal or getattr(dep.call, "gis_resolves_caller", False):
                return True
            stack.append(dep.dependencies)
    return False


@pytest.mark.parametrize(("method", "path"), CALLABLE, ids=[f"{m} {p}" for m, p in CALLABLE])
def test_matrix(world: World, method: str, path: str) -> None:
    route = _route(method, path)
    access = route.access
    assert access is not None, f"{method} {path} declares nobody"
    if not route.is_api and path.startswith("/static"):
        pytest.skip("static files")
    names = set(re.findall(r"{(\w+)", path))
    variants = (
        ["inside", "outside"] if names & SCOPED_PARAMS or path.endswith("/hazards") else ["inside"]
    )
    resolves = _resolves_principal(route)
    failures: list[str] = []
    for variant in variants:
        for caller in CALLERS:
            url = _url(world, path, variant, caller)
            headers = world.headers(caller)
            r = world.client.request(
                method,
                url,
                headers=headers,
                params=_query(world, method, path, variant),
                json=_body(world, method, path, variant),
            )
            where = f"{caller} {variant}: {method} {url} → {r.status_code} {r.text[:200]}"
            if r.status_code >= 500:
                failures.append(f"server error: {where}")
                continue
            allowed, refusal = world.access_of(caller, access)
            if caller == "key_revoked" and not resolves:
                allowed = access.allow_anonymous
            expected = EXPECTED_REFUSALS.get((method, path, caller))
            if expected is not None:
                if r.status_code != expected:
                    failures.append(f"expected {expected}: {where}")
            elif not allowed:
                if r.status_code != refusal:
                    failures.append(f"declared refusal {refusal} not enforced: {where}")
            elif r.status_code == 401:
                failures.append(f"declared caller got 401: {where}")
            elif method == "GET" and r.status_code == 403 and _code(r) == "forbidden":
                failures.append(f"declared caller got 403: {where}")
            failures += [f"{p} leaked: {where}" for p in _leaks(world, caller, r.text)]
            if variant == "outside" and allowed and r.status_code < 300:
                failures += _outside_checks(world, method, path, caller, r)
    assert not failures, "\n".join(failures[:20])


def _code(r) -> str | None:
    try:
        return r.json().get("code")
    except ValueError:
        return None


def _outside_checks(w: World, method: str, path: str, caller: str, r) -> list[str]:
    """A write outside the caller's scope must not succeed; an admin's may."""
    if method == "GET" or caller == "admin":
        return []
    user = w.users.get(caller)
    key = w.keys.get(caller, (None,))[0]
    root = (user or key or {}).get("grid_id")
    if root is None:
        return []  # the whole territory
    if path in {"/api/v1/hazards"}:
        return []  # anyone may report anywhere
    return [f"a write outside the scope succeeded ({r.status_code}): {caller} {method} {path}"]


# ---- private fields are visible inside the scope (the other half of the rule) -----------------
def _bearer(w: World, role: str) -> dict[str, str]:
    return w.headers(role)


def test_staff_in_scope_see_mobile_phones(world: World) -> None:
    summary = f"/api/v1/grids/{world.scopes.grid}/summary"
    anon = world.client.get(summary)
    assert anon.status_code == 200 and not PHONE.findall(anon.text)
    assert all("mobile_phone" not in p for p in anon.json()["people"])
    staff = world.client.get(summary, headers=_bearer(world, "community_staff")).json()
    assert any(p.get("mobile_phone") for p in staff["people"])
    outside = f"/api/v1/grids/{world.scopes.other_grid}/summary"
    other = world.client.get(outside, headers=_bearer(world, "community_staff")).json()
    assert all("mobile_phone" not in p for p in other["people"])
    admin = world.client.get(outside, headers=_bearer(world, "admin")).json()
    assert any(p.get("mobile_phone") for p in admin["people"])
    lon, lat = world.points["inside"]
    located = world.client.get(
        "/api/v1/locate", params={"lon": lon, "lat": lat}, headers=_bearer(world, "grid_leader")
    ).json()
    finest = located["chain"][-1]
    street = located["chain"][0]
    assert any(p.get("mobile_phone") for p in finest["people"]) or not finest["people"]
    assert all("mobile_phone" not in p for p in street["people"])  # above the leader's grid


def test_staff_in_scope_see_the_reporter(world: World) -> None:
    with world.engine.connect() as conn:
        phone = conn.execute(
            text("SELECT reporter_phone FROM hazards WHERE id = :id"),
            {"id": world.scopes.inside_hazard},
        ).scalar_one()
    url = f"/api/v1/hazards/{world.scopes.inside_hazard}"
    assert phone in world.client.get(url, headers=_bearer(world, "community_staff")).text
    assert phone in world.client.get(url, headers=_bearer(world, "key_staff")).text
    for caller in ("anonymous", "key_read"):
        r = world.client.get(url, headers=world.headers(caller))
        assert r.status_code == 200 and phone not in r.text
    outside = f"/api/v1/hazards/{world.scopes.outside_hazard}"
    r = world.client.get(outside, headers=_bearer(world, "community_staff"))
    assert r.status_code in (200, 404) and not _leaks(world, "community_staff", r.text)


def test_writes_outside_scope_are_403(world: World) -> None:
    hid = world.scopes.outside_hazard
    for caller in ("street_staff", "community_staff", "grid_leader", "key_staff"):
        r = world.client.post(
            f"/api/v1/hazards/{hid}/actions",
            json={"action": "comment", "note": "nope", "version": _hazard_version(world, hid)},
            headers=world.headers(caller),
        )
        assert r.status_code in (403, 404), (caller, r.status_code, r.text)
    r = world.client.post(
        f"/api/v1/hazards/{hid}/actions",
        json={"action": "comment", "note": "admin", "version": _hazard_version(world, hid)},
        headers=world.headers("admin"),
    )
    assert r.status_code == 200, r.text


def test_revoked_or_bogus_credentials_are_401_everywhere(world: World) -> None:
    for headers in (
        {"X-API-Key": world.revoked_key},
        {"Authorization": "Bearer gst_not-a-token"},
        {"Authorization": "Token abc"},
    ):
        for url in ("/api/v1/grids?limit=1", "/health", "/ogc/collections", "/api/v1/auth/me"):
            assert world.client.get(url, headers=headers).status_code == 401, (headers, url)


def test_role_scopes_are_consistent() -> None:
    # every staff role reads private fields in scope; only admins administer
    assert all("read_private" in s for s in ROLE_SCOPES.values())
    assert [r for r, s in ROLE_SCOPES.items() if "admin" in s] == ["admin"]
    assert "write" not in ROLE_SCOPES["viewer"]
    assert "dispatch" not in ROLE_SCOPES["grid_leader"]


def test_routes_enumerated(world: World) -> None:
    # sanity: the matrix covers the routes it should
    paths = {p for _, p in CALLABLE}
    for must in ("/api/v1/grids", "/api/v1/hazards/{hazard_id}", "/api/v1/users", "/health"):
        assert must in paths
    assert Path(__file__).exists()


# ---- people and accounts: nobody reaches past their subtree, role or scopes -----------------
def _audit_count(w: World, object_type: str, object_id: Any) -> int:
    with w.engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM audit_log WHERE object_type = :t AND object_id = :i"),
            {"t": object_type, "i": str(object_id)},
        ).scalar_one()


def test_accounts_grant_no_more_than_one_holds(world: World) -> None:
    street = world.headers("street_staff")
    tag = uuid.uuid4().hex[:6]
    base = {"display_name": "新账号", "password": PASSWORD, "role": "community_staff"}

    def create(headers: dict, **fields: Any) -> Any:
        body = {**base, "username": f"g-{uuid.uuid4().hex[:8]}", **fields}
        return world.client.post("/api/v1/users", json=body, headers=headers)

    ok = create(street, grid=world.scopes.community)
    assert ok.status_code == 201, ok.text
    assert _audit_count(world, "user", ok.json()["id"]) == 1
    refused = {
        "admin role": create(street, role="admin"),
        "whole territory": create(street, role="street_staff", grid=None),
        "other street": create(street, grid=world.scopes.other_street),
    }
    assert refused["admin role"].json()["code"] == "role_too_high"
    assert refused["other street"].json()["code"] == "scope_too_wide"
    assert all(r.status_code in (403, 422) for r in refused.values()), refused
    community = world.headers("community_staff")
    assert create(community, role="viewer", grid=world.scopes.grid).status_code == 403
    # Keys: scopes one holds, bound inside one's subtree.
    keys = [
        {"name": f"k{tag}", "scopes": ["open311"], "grid": world.scopes.community},
        {"name": f"k{tag}", "scopes": ["read"]},
        {"name": f"k{tag}", "scopes": ["read"], "grid": world.scopes.other_street},
    ]
    for body in keys:
        r = world.client.post("/api/v1/keys", json=body, headers=street)
        assert r.status_code == 403 and r.json()["code"] == "scope_too_wide", (body, r.text)
    key = world.client.post(
        "/api/v1/keys",
        json={"name": f"k{tag}", "scopes": ["read", "report"], "grid": world.scopes.grid},
        headers=street,
    )
    assert key.status_code == 201 and _audit_count(world, "api_key", key.json()["id"]) == 1
    listed = world.client.get("/api/v1/keys", headers=street).json()["keys"]
    assert {k["id"] for k in listed} >= {key.json()["id"]}
    assert all(k["grid_id"] is not None for k in listed)
    assert world.outside_key["id"] not in {k["id"] for k in listed}
    # Changing an account: inside only, never above one's role, never oneself.
    uid = ok.json()["id"]
    r = world.client.patch(f"/api/v1/users/{uid}", json={"role": "admin"}, headers=street)
    assert r.status_code == 403 and r.json()["code"] == "role_too_high"
    r = world.client.patch(
        f"/api/v1/users/{uid}", json={"grid": world.scopes.other_street}, headers=street
    )
    assert r.status_code == 403 and r.json()["code"] == "scope_too_wide"
    r = world.client.patch(
        f"/api/v1/users/{uid}", json={"role": "viewer", "reason": "降级"}, headers=street
    )
    assert r.status_code == 200 and r.json()["role"] == "viewer"
    assert _audit_count(world, "user", uid) == 2
    # Disable, enable, unlock and reset the password: each one audit row, with the reason.
    for n, action in enumerate(("disable", "enable", "unlock", "password"), start=3):
        r = world.client.post(
            f"/api/v1/users/{uid}/{action}", json={"reason": "核对"}, headers=street
        )
        assert r.status_code == 200, (action, r.text)
        assert _audit_count(world, "user", uid) == n, action
    assert r.json()["password"]  # the temporary one, shown once
    me = world.users["street_staff"]["id"]
    r = world.client.patch(f"/api/v1/users/{me}", json={"role": "viewer"}, headers=street)
    assert r.status_code == 409 and r.json()["code"] == "own_account"
    outside = world.outside_user["id"]
    for method, url, body in (
        ("GET", f"/api/v1/users/{outside}", None),
        ("PATCH", f"/api/v1/users/{outside}", {"display_name": "x"}),
        ("POST", f"/api/v1/users/{outside}/disable", {}),
        ("POST", f"/api/v1/users/{outside}/password", {}),
        ("DELETE", f"/api/v1/keys/{world.outside_key['id']}", None),
    ):
        r = world.client.request(method, url, json=body, headers=street)
        assert r.status_code == 404, (method, url, r.text)
    admin = world.users["admin"]["id"]
    r = world.client.post(f"/api/v1/users/{admin}/disable", json={}, headers=street)
    assert r.status_code == 404
    users = world.client.get("/api/v1/users", headers=street).json()["users"]
    assert outside not in {u["id"] for u in users} and admin not in {u["id"] for u in users}


def test_accounts_link_a_person_of_their_scope_once(world: World) -> None:
    street = world.headers("street_staff")
    leader = world.scopes.grid_leader_person
    with world.engine.connect() as conn:
        outsider = conn.execute(
            text(
                "SELECT person_id FROM grid_assignments WHERE grid_id = :g AND is_primary"
                " ORDER BY valid_from DESC LIMIT 1"
            ),
            {"g": world.scopes.other_grid},
        ).scalar_one()
        free = conn.execute(
            text(
                "SELECT a.person_id FROM grid_assignments a JOIN grids g ON g.id = a.grid_id"
                " WHERE g.path @> ARRAY[CAST(:c AS bigint)] AND a.valid_to IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM users u WHERE u.person_id = a.person_id)"
                " AND NOT EXISTS (SELECT 1 FROM grid_assignments b JOIN grids h"
                "   ON h.id = b.grid_id WHERE b.person_id = a.person_id"
                "   AND NOT h.path @> ARRAY[CAST(:c AS bigint)])"
                " ORDER BY a.person_id LIMIT 1"
            ),
            {"c": world.scopes.community},
        ).scalar_one()

    def create(person: int, grid: int) -> Any:
        body = {
            "username": f"p-{uuid.uuid4().hex[:8]}",
            "display_name": "有人",
            "password": PASSWORD,
            "role": "field_staff",
            "grid": grid,
            "person_id": person,
        }
        return world.client.post("/api/v1/users", json=body, headers=street)

    r = create(leader, world.scopes.grid)  # the grid_leader user of the world has them
    assert r.status_code == 409 and r.json()["code"] == "person_already_linked", r.text
    r = create(outsider, world.scopes.grid)
    assert r.status_code == 404, r.text  # a person of another street is not even visible
    r = create(free, world.scopes.community)
    assert r.status_code == 201, r.text
    assert r.json()["person_id"] == free
    r = create(free, world.scopes.community)
    assert r.status_code == 409 and r.json()["code"] == "person_already_linked"


def test_people_changes_are_audited_and_stay_in_scope(world: World) -> None:
    street = world.headers("street_staff")
    grid = world.scopes.grid

    def total() -> int:
        with world.engine.connect() as conn:
            return conn.execute(
                text("SELECT count(*) FROM audit_log WHERE reason = 'audit-check'")
            ).scalar_one()

    writes = [
        ("POST", "/api/v1/people", {"name": "审计", "grid": grid}, 1),
        ("PATCH", f"/api/v1/people/{_fresh_person(world, 'inside')}", {"notes": "x"}, 1),
        (
            "POST",
            f"/api/v1/grids/{grid}/assignments",
            {"person": {"name": "审计"}, "role": "volunteer"},
            2,  # the new person and the assignment
        ),
        ("PUT", f"/api/v1/grids/{grid}/leader", {"person": {"name": "审计"}}, 3),
        ("POST", f"/api/v1/assignments/{_fresh_assignment(world, 'inside')}/end", {}, 1),
    ]
    for method, url, body, rows in writes:
        before = total()
        r = world.client.request(
            method, url, json={**body, "reason": "audit-check"}, headers=street
        )
        assert r.status_code < 300, (url, r.text)
        assert total() == before + rows, (method, url)
    # The same writes one street over change nothing and write nothing.
    other = world.scopes.other_grid
    before = total()
    for method, url, body in (
        ("POST", "/api/v1/people", {"name": "越权", "grid": other}),
        ("PATCH", f"/api/v1/people/{_fresh_person(world, 'outside')}", {"notes": "x"}),
        (
            "POST",
            f"/api/v1/grids/{other}/assignments",
            {"person": {"name": "越权"}, "role": "volunteer"},
        ),
        ("PUT", f"/api/v1/grids/{other}/leader", {"person": {"name": "越权"}}),
        ("POST", f"/api/v1/assignments/{_fresh_assignment(world, 'outside')}/end", {}),
    ):
        r = world.client.request(
            method, url, json={**body, "reason": "audit-check"}, headers=street
        )
        assert r.status_code in (403, 404), (url, r.text)
    assert total() == before
    with world.engine.connect() as conn:
        strays = conn.execute(text("SELECT count(*) FROM people WHERE name = '越权'")).scalar_one()
    assert strays == 0


# ---- writes into another scope: imports, reassign and dispatch (issue 11) ----------------------
# Run last in this module: the reassign test redraws the tree (as an admin may).
def _code_of(w: World, grid_id: int) -> str:
    with w.engine.connect() as conn:
        return conn.execute(text("SELECT code FROM grids WHERE id = :id"), {"id": grid_id}).scalar()


def _export_geojson(w: World, root: str) -> dict:
    r = w.client.get(
        "/api/v1/exports/grids",
        params={"format": "geojson", "root": root},
        headers=w.headers("admin"),
    )
    assert r.status_code == 200, r.text
    return r.json()


def _import(w: World, caller: str, name: str, data: bytes, **form: Any):
    return w.client.post(
        "/api/v1/imports",
        headers=w.headers(caller),
        files={"file": (name, data)},
        data={k: str(v).lower() if isinstance(v, bool) else v for k, v in form.items()},
    )


def _other_community(w: World) -> tuple[int, str]:
    with w.engine.connect() as conn:
        row = conn.execute(
            text("SELECT id, code FROM grids WHERE id = :g"),
            {"g": _path_of(w, w.scopes.other_grid)[1]},
        ).one()
    return row.id, row.code


def _path_of(w: World, grid_id: int) -> list[int]:
    with w.engine.connect() as conn:
        return list(
            conn.execute(text("SELECT path FROM grids WHERE id = :id"), {"id": grid_id}).scalar()
        )


def _grid_state(w: World, code: str) -> tuple:
    with w.engine.connect() as conn:
        return tuple(
            conn.execute(
                text(
                    "SELECT id, name, parent_id, valid_to FROM grids WHERE code = :c"
                    " AND valid_to IS NULL"
                ),
                {"c": code},
            ).one()
        )


def _findings(r) -> set[str]:
    return {f["kind"] for f in r.json().get("details", {}).get("findings", [])}


def test_imports_cannot_write_another_scope(world: World) -> None:
    """Every caller: redrawing, renaming, re-parenting or retiring another street's grids, or
    rewriting its people, through POST /imports is refused (403 without the import right, 422
    'outside_scope' with it); nothing changes. Only an admin's passes."""
    _, community = _other_community(world)
    own_street = _code_of(world, world.scopes.street)
    doc = _export_geojson(world, community)
    target = doc["features"][0]["properties"]["code"]
    before = _grid_state(world, target)
    renamed = json.loads(json.dumps(doc))
    for f in renamed["features"]:
        f["properties"]["name"] = "被接管 " + str(f["properties"]["name"])
    reparented = json.loads(json.dumps(doc))
    reparented["features"] = [
        f for f in reparented["features"] if f["properties"]["code"] == target
    ]
    reparented["features"][0]["properties"]["parent_code"] = own_street
    micro = json.loads(json.dumps(doc))
    micro["features"] = [f for f in micro["features"] if f["properties"]["level"] == "micro_grid"][
        :1
    ]
    with world.engine.connect() as conn:
        person = conn.execute(
            text(
                """
                SELECT p.name, p.work_phone, g.code FROM people p
                  JOIN grid_assignments a ON a.person_id = p.id AND a.valid_to IS NULL
                  JOIN grids g ON g.id = a.grid_id
                 WHERE g.path && CAST(:s AS bigint[]) AND p.work_phone IS NOT NULL
                   AND p.mobile_phone IS NOT NULL
                 ORDER BY p.id LIMIT 1
                """
            ),
            {"s": [world.scopes.other_street]},
        ).one()
    own_grid = _code_of(world, world.scopes.grid)
    people_other = (
        f"name,phone,mobile,grid\n{person.name},{person.work_phone},13800000000,{person.code}\n"
    )
    people_link = (
        f"name,phone,mobile,grid\n{person.name},{person.work_phone},13800000000,{own_grid}\n"
    )
    attempts = {
        "rename": ("g.geojson", json.dumps(renamed).encode(), {"update": True}),
        "re-parent": ("g.geojson", json.dumps(reparented).encode(), {"update": True}),
        "retire (dry run)": (
            "g.geojson",
            json.dumps(micro).encode(),
            {"update": True, "retire_missing": True, "check": True},
        ),
        "people of another street": (
            "p.csv",
            people_other.encode(),
            {"layer": "people", "update": True},
        ),
        "another street's person into my grid": (
            "p.csv",
            people_link.encode(),
            {"layer": "people", "update": True},
        ),
    }
    failures = []
    for caller in CALLERS:
        if caller == "admin":
            continue
        allowed, refusal = world.access_of(caller, _route("POST", "/api/v1/imports").access)
        for what, (name, data, form) in attempts.items():
            r = _import(world, caller, name, data, **form)
            where = f"{caller} {what}: {r.status_code} {r.text[:300]}"
            if not allowed:
                if r.status_code != refusal:
                    failures.append(f"expected {refusal}: {where}")
            elif r.status_code != 422 or "outside_scope" not in _findings(r):
                failures.append(f"expected 422 outside_scope: {where}")
    assert not failures, "\n".join(failures)
    assert _grid_state(world, target) == before
    with world.engine.connect() as conn:
        mobile = conn.execute(
            text("SELECT mobile_phone FROM people WHERE name = :n AND work_phone = :p"),
            {"n": person.name, "p": person.work_phone},
        ).scalar()
    assert mobile != "13800000000"
    # The admin's scope is the whole territory: the same dry run passes.
    r = _import(world, "admin", "g.geojson", json.dumps(renamed).encode(), update=True, check=True)
    assert r.status_code == 200 and r.json()["status"] == "checked", r.text


def test_imports_in_own_scope_pass_and_are_audited(world: World) -> None:
    """A street's own grid redrawn by its street staff imports, with an audit row written in
    the import's transaction."""
    own = _code_of(world, world.scopes.grid)
    doc = _export_geojson(world, own)
    doc["features"] = [f for f in doc["features"] if f["properties"]["code"] == own]
    doc["features"][0]["properties"]["name"] = "本街道改名"
    r = _import(world, "street_staff", "own.geojson", json.dumps(doc).encode(), update=True)
    assert r.status_code == 200 and r.json()["status"] == "imported", r.text
    run_id = r.json()["run_id"]
    with world.engine.connect() as conn:
        same = conn.execute(
            text(
                """
                SELECT a.xmin = r.xmin FROM audit_log a, import_runs r
                 WHERE a.object_type = 'import_run' AND a.object_id = CAST(:id AS text)
                   AND r.id = :id
                """
            ),
            {"id": run_id},
        ).scalar()
    assert same is True


def _accepted_hazard(w: World, grid_id: int) -> int:
    """A fresh hazard inside ``grid_id``, accepted by an admin (so it may be dispatched)."""
    with w.engine.connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids"
                " WHERE id = :g) x"
            ),
            {"g": grid_id},
        ).one()
    r = w.client.post(
        "/api/v1/hazards",
        json={"category": w.category, "lon": lon, "lat": lat, "description": "派遣测试"},
        headers=w.headers("admin"),
    )
    assert r.status_code == 201, r.text
    hid = r.json()["id"]
    r = w.client.post(
        f"/api/v1/hazards/{hid}/actions",
        json={"action": "accept", "version": _hazard_version(w, hid)},
        headers=w.headers("admin"),
    )
    assert r.status_code == 200, r.text
    return hid


def test_dispatch_only_to_people_in_scope(world: World) -> None:
    """Every caller: dispatching a hazard of their own area to a person who works elsewhere is
    refused (that person would read the reporter's phone); to one of their own people it
    passes when the role may dispatch at all."""
    with world.engine.connect() as conn:
        outsider = conn.execute(
            text(
                """
                SELECT a.person_id FROM grid_assignments a JOIN grids g ON g.id = a.grid_id
                 WHERE g.path && CAST(:s AS bigint[]) AND a.valid_to IS NULL
                   AND NOT EXISTS (SELECT 1 FROM grid_assignments b JOIN grids h ON h.id = b.grid_id
                                    WHERE b.person_id = a.person_id AND b.valid_to IS NULL
                                      AND h.path && CAST(:mine AS bigint[]))
                 ORDER BY a.person_id LIMIT 1
                """
            ),
            {"s": [world.scopes.other_street], "mine": [world.scopes.street]},
        ).scalar_one()
        # Someone working in the community now (earlier tests of this module replace
        # leaders, so the leader found when the world was built may have left).
        insider = conn.execute(
            text(
                """
                SELECT a.person_id FROM grid_assignments a JOIN grids g ON g.id = a.grid_id
                 WHERE g.path && CAST(:c AS bigint[])
                   AND gis_valid_at(a.valid_from, a.valid_to, now())
                 ORDER BY a.is_primary DESC, a.person_id LIMIT 1
                """
            ),
            {"c": [world.scopes.community]},
        ).scalar_one()
    access = _route("POST", "/api/v1/hazards/{hazard_id}/actions").access
    failures = []
    for caller in CALLERS:
        hid = _accepted_hazard(world, world.scopes.grid)
        allowed, refusal = world.access_of(caller, access)
        for person, ok in ((outsider, caller == "admin"), (insider, True)):
            r = world.client.post(
                f"/api/v1/hazards/{hid}/actions",
                json={
                    "action": "dispatch",
                    "assignee_person_id": person,
                    "version": _hazard_version(world, hid),
                },
                headers=world.headers(caller),
            )
            where = f"{caller} → person {person}: {r.status_code} {r.text[:200]}"
            may_dispatch = caller in ("admin", "street_staff", "community_staff")
            if not allowed:
                if r.status_code != refusal:
                    failures.append(f"expected {refusal}: {where}")
            elif ok and may_dispatch:
                if r.status_code != 200:
                    failures.append(f"expected 200: {where}")
            elif r.status_code != 403:
                failures.append(f"expected 403: {where}")
            elif person == outsider and may_dispatch and _code(r) != "assignee_outside_scope":
                failures.append(f"expected assignee_outside_scope: {where}")
    assert not failures, "\n".join(failures)


def test_reassign_cannot_pull_hazards_from_another_scope(world: World) -> None:
    """An admin moves another street's community under the caller's street; the hazards there
    now lie in the caller's street by their new grid, but were routed to the other street:
    every caller but the admin moves none of them (403 without the dispatch right). The
    admin's reassignment moves them, each with an audit row in the same transaction."""
    from gis_service.interchange.load import ImportOptions, run_import
    from gis_service.interchange.mapping import build_mapping

    cid, community = _other_community(world)
    own_street = _code_of(world, world.scopes.street)
    doc = _export_geojson(world, community)
    doc["features"] = [f for f in doc["features"] if f["properties"]["code"] == community]
    doc["features"][0]["properties"]["parent_code"] = own_street
    path = Path(world.settings.data_path) / "reparent.geojson"
    path.write_text(json.dumps(doc))
    report = run_import(
        world.engine,
        path,
        ImportOptions(layer="grids", update=True, mapping=build_mapping("grids")),
    )
    assert report.status == "imported", report.text()
    with world.engine.connect() as conn:
        pulled = set(
            conn.execute(
                text(
                    "SELECT public_code FROM hazards WHERE status NOT IN ('closed', 'rejected')"
                    " AND grid_path && CAST(:c AS bigint[])"
                ),
                {"c": [cid]},
            ).scalars()
        )
    assert pulled, "the moved community has no open hazard to test with"
    access = _route("POST", "/api/v1/grids/reassign").access
    failures = []
    for caller in CALLERS:
        if caller == "admin":
            continue
        allowed, refusal = world.access_of(caller, access)
        for method in ("GET", "POST"):
            r = world.client.request(
                method, "/api/v1/grids/reassign", headers=world.headers(caller)
            )
            where = f"{caller} {method}: {r.status_code} {r.text[:200]}"
            if not allowed:
                if r.status_code != refusal:
                    failures.append(f"expected {refusal}: {where}")
                continue
            listed = {h["public_code"] for h in r.json()["hazards"]}
            if listed & pulled:
                failures.append(f"offered or moved hazards of another street: {where}")
    assert not failures, "\n".join(failures)
    with world.engine.connect() as conn:
        still = conn.execute(
            text(
                "SELECT count(*) FROM hazards WHERE public_code = ANY (CAST(:c AS text[]))"
                " AND grid_path && CAST(:s AS bigint[])"
            ),
            {"c": sorted(pulled), "s": [world.scopes.street]},
        ).scalar()
    assert still == 0
    r = world.client.post("/api/v1/grids/reassign", headers=world.headers("admin"))
    assert r.status_code == 200 and r.json()["applied"] >= len(pulled), r.text
    with world.engine.connect() as conn:
        unaudited = conn.execute(
            text(
                """
                SELECT count(*) FROM hazards h
                 WHERE h.public_code = ANY (CAST(:c AS text[]))
                   AND NOT EXISTS (SELECT 1 FROM audit_log a
                                    WHERE a.object_type = 'hazard' AND a.object_id = h.id::text
                                      AND a.action = 'hazard.reassign' AND a.xmin = h.xmin)
                """
            ),
            {"c": sorted(pulled)},
        ).scalar()
    assert unaudited == 0
