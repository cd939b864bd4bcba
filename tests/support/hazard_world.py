"""A small hand-made district for the hazard tests: two communities with one grid each that
share a boundary, their leaders, a few manholes, and one user of every role with a bearer
token. Built once per session as a template; each test module works in a copy of its own."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_service.app import create_app
from gis_service.auth.admin import create_user
from gis_service.auth.service import issue_token
from gis_service.config import Settings
from gis_service.db.engine import make_engine
from tests.support.databases import CATALOG, Databases, Template

# The street is the square 113.60..113.62 × 34.70..34.72; the communities (and their grids)
# are its west and east halves, sharing the meridian 113.61.
WEST = (113.600, 34.700, 113.610, 34.720)
EAST = (113.610, 34.700, 113.620, 34.720)
STREET = (113.600, 34.700, 113.620, 34.720)
BOUNDARY_LON = 113.610
# A manhole in the west grid, and a point 5 m east of it.
MANHOLE = (113.605, 34.705)
NEAR_MANHOLE = (113.605055, 34.705)
PASSWORD = "hazard-world-pass-1"


def _box(b: tuple[float, float, float, float]) -> str:
    return f"ST_Multi(ST_MakeEnvelope({b[0]}, {b[1]}, {b[2]}, {b[3]}, 4326))"


@dataclass
class World:
    """Ids of what was built, and a client with a token per role."""

    url: str
    engine: Engine
    client: TestClient
    settings: Settings
    grids: dict[str, int] = field(default_factory=dict)
    people: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str | None) -> dict[str, str]:
        """Headers of one user (None: anonymous)."""
        return {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}

    def scalar(self, sql: str, **params: object) -> object:
        """One value from the database."""
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def report(self, who: str | None = "field", **fields: object) -> dict:
        """POST a JSON report and return the body (asserting success)."""
        body = {
            "category": "clutter",
            "lon": 113.603,
            "lat": 34.703,
            "description": "院内乱堆乱放杂物",
            **fields,
        }
        r = self.client.post("/api/v1/hazards", json=body, headers=self.auth(who))
        assert r.status_code in (200, 201), r.text
        return r.json()

    def act(
        self, hazard_id: int, action: str, who: str = "admin", version: int | None = None, **kw
    ):
        """POST one move with If-Match from a fresh GET (unless ``version`` is given)."""
        if version is None:
            version = self.client.get(f"/api/v1/hazards/{hazard_id}").json()["properties"][
                "version"
            ]
        return self.client.post(
            f"/api/v1/hazards/{hazard_id}/actions",
            json={"action": action, **kw},
            headers={**self.auth(who), "If-Match": f'"{version}"'},
        )


SETUP = """
INSERT INTO grids (id, code, name, level, parent_id, geom, valid_from) VALUES
  (9001, '410103900', '测试街道', 'street', NULL, {street}, '2020-01-01'),
  (9002, '410103900001', '西社区', 'community', 9001, {west}, '2020-01-01'),
  (9003, '410103900002', '东社区', 'community', 9001, {east}, '2020-01-01'),
  (9004, '410103900001001', '西一网格', 'grid', 9002, {west}, '2020-01-01'),
  (9005, '410103900002001', '东一网格', 'grid', 9003, {east}, '2020-01-01');
INSERT INTO people (id, name, work_phone) VALUES
  (8001, '街道主任', '0371-1000'), (8002, '西社区书记', '0371-2000'),
  (8003, '东社区书记', '0371-3000'), (8004, '西网格长', '0371-4000'),
  (8005, '东网格长', '0371-5000'), (8006, '西网格员', '0371-6000');
INSERT INTO grid_assignments (grid_id, person_id, role, is_primary, valid_from) VALUES
  (9001, 8001, 'director', true, '2020-01-01'),
  (9002, 8002, 'party_secretary', true, '2020-01-01'),
  (9003, 8003, 'party_secretary', true, '2020-01-01'),
  (9004, 8004, 'grid_leader', true, '2020-01-01'),
  (9005, 8005, 'grid_leader', true, '2020-01-01'),
  (9004, 8006, 'grid_member', false, '2020-01-01');
INSERT INTO facilities (code, type_code, name, geom) VALUES
  ('4101030301000001', 'sewage_cover', '污水井', ST_SetSRID(ST_MakePoint({mx}, {my}), 4326)),
  ('4101030301000002', 'sewage_cover', '远处污水井',
   ST_SetSRID(ST_MakePoint(113.615, 34.715), 4326)),
  ('9101030301000003', 'bench', '座椅', ST_SetSRID(ST_MakePoint(113.6051, 34.7051), 4326));
""".format(street=_box(STREET), west=_box(WEST), east=_box(EAST), mx=MANHOLE[0], my=MANHOLE[1])

# username → (role, scope grid, person)
USERS = {
    "admin": ("admin", None, None),
    "street": ("street_staff", 9001, 8001),
    "west_community": ("community_staff", 9002, 8002),
    "east_community": ("community_staff", 9003, 8003),
    "west_leader": ("grid_leader", 9004, 8004),
    "east_leader": ("grid_leader", 9005, 8005),
    "field": ("field_staff", 9004, 8006),
    "viewer": ("viewer", 9001, None),
}


def _build(engine: Engine) -> dict[str, str]:
    """The district and one user of every role, each with a bearer token (by username)."""
    with engine.begin() as conn:
        for statement in SETUP.split(";"):
            if statement.strip():
                conn.execute(text(statement))
    settings = Settings(database_url=engine.url.render_as_string(False), load_demo=False)
    tokens: dict[str, str] = {}
    with engine.connect() as conn:
        for username, (role, grid, person) in USERS.items():
            user = create_user(
                conn,
                None,
                username=username,
                display_name=username,
                password=PASSWORD,
                role=role,
                grid=grid,
                person_id=person,
            )
            with conn.begin():
                _, token, *_ = issue_token(conn, settings, user["id"], "bearer")
            tokens[username] = token
    return tokens


WORLD = Template("hazard_world", CATALOG, _build)
"""The hand-made district with its users and their tokens; ``built(WORLD)`` is the tokens."""


@contextmanager
def build_world(
    databases: Databases, tmp_path: Path, prefix: str, **settings_kw: object
) -> Iterator[World]:
    """A copy of the world's database and a client on it; drop it all afterwards."""
    url = databases.new(prefix, WORLD)
    engine = make_engine(url, pool_size=4)
    settings = _settings(url, tmp_path, **settings_kw)
    with TestClient(create_app(settings)) as client:
        yield World(
            url=url,
            engine=engine,
            client=client,
            settings=settings,
            grids={
                "street": 9001,
                "west": 9002,
                "east": 9003,
                "west_grid": 9004,
                "east_grid": 9005,
            },
            people={
                "street": 8001,
                "west_secretary": 8002,
                "east_secretary": 8003,
                "west_leader": 8004,
                "east_leader": 8005,
                "field": 8006,
            },
            tokens=dict(databases.built(WORLD)),
        )
    engine.dispose()
    databases.drop(url)


def _settings(url: str, tmp_path: Path, **kw: object) -> Settings:
    base = {
        "database_url": url,
        "data_dir": tmp_path,
        "load_demo": False,
        "anon_reports_per_hour": 1000,
    }
    return Settings(**{**base, **kw})


def jpeg_with_gps(size: tuple[int, int] = (64, 48), color: str = "red") -> bytes:
    """A JPEG whose EXIF holds a GPS position (Zhengzhou) and a camera model."""
    import piexif
    from PIL import Image

    exif = {
        "0th": {piexif.ImageIFD.Make: b"TestCam", piexif.ImageIFD.Model: b"GPS-Phone"},
        "GPS": {
            piexif.GPSIFD.GPSLatitudeRef: b"N",
            piexif.GPSIFD.GPSLatitude: ((34, 1), (42, 1), (1234, 100)),
            piexif.GPSIFD.GPSLongitudeRef: b"E",
            piexif.GPSIFD.GPSLongitude: ((113, 1), (36, 1), (5678, 100)),
        },
    }
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG", exif=piexif.dump(exif))
    return out.getvalue()


def png_bytes(size: tuple[int, int] = (20, 10)) -> bytes:
    """A small PNG."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGBA", size, (0, 128, 255, 200)).save(out, "PNG")
    return out.getvalue()
