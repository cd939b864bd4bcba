"""The hazard tests' small district (tests/hazard_world.py) with what field work needs on top:
micro-grids under both grids, households and people under care in the west and east, and a
few helpers for tracks and GPX. Phones follow the demo's fictional 100-xxxx-xxxx pattern."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from sqlalchemy import text

from tests.support.hazard_world import World

CARE_SETUP = """
INSERT INTO grids (id, code, name, level, parent_id, geom, valid_from) VALUES
  (9006, '410103900001001001', '1号楼', 'micro_grid', 9004,
   ST_Multi(ST_MakeEnvelope(113.600, 34.700, 113.610, 34.710, 4326)), '2020-01-01'),
  (9007, '410103900001001002', '2号院', 'micro_grid', 9004,
   ST_Multi(ST_MakeEnvelope(113.600, 34.710, 113.610, 34.720, 4326)), '2020-01-01'),
  (9008, '410103900002001001', '3号楼', 'micro_grid', 9005,
   ST_Multi(ST_MakeEnvelope(113.610, 34.700, 113.620, 34.720, 4326)), '2020-01-01');
INSERT INTO households (id, code, grid_id, address, phone, geom) VALUES
  (7001, 'W-0001', 9006, '西社区1号楼1单元101室', '0371-7001',
   ST_SetSRID(ST_MakePoint(113.604, 34.704), 4326)),
  (7002, 'W-0002', 9007, '西社区2号院3单元502室', NULL,
   ST_SetSRID(ST_MakePoint(113.604, 34.714), 4326)),
  (7003, 'E-0001', 9008, '东社区3号楼2单元202室', NULL,
   ST_SetSRID(ST_MakePoint(113.615, 34.705), 4326));
INSERT INTO care_people (id, household_id, name, gender, birth_year, phone, categories,
                         care_since) VALUES
  (6001, 7001, '孙秀英', 'female', 1941, '100-8000-0001', '{elderly_alone}', current_date - 30),
  (6002, 7001, '孙建国', 'male', 1950, '100-8000-0002', '{veteran}', current_date - 10),
  (6003, 7002, '钱小明', 'male', 2012, NULL, '{child_in_difficulty,hardship_family}',
   current_date - 3),
  (6004, 7003, '赵桂兰', 'female', 1938, '100-8000-0004', '{disabled_family}',
   current_date - 60)
"""

# Who is who under care, and the grids they live in.
WEST_ELDER, WEST_VETERAN, WEST_CHILD, EAST_ELDER = 6001, 6002, 6003, 6004
NAMES = {6001: "孙秀英", 6002: "孙建国", 6003: "钱小明", 6004: "赵桂兰"}
PHONES = {6001: "100-8000-0001", 6002: "100-8000-0002", 6004: "100-8000-0004"}


def add_care(world: World) -> None:
    """Micro-grids, households and people under care, in the world's database."""
    with world.engine.begin() as conn:
        for statement in CARE_SETUP.split(";"):
            if statement.strip():
                conn.execute(text(statement))


def track(
    start: tuple[float, float] = (113.6020, 34.7030),
    step: tuple[float, float] = (0.0002, 0.0005),
    n: int = 30,
    begin: datetime | None = None,
    every_s: float = 15.0,
) -> list[list[float]]:
    """Points [lon, lat, t] walking in a straight line, one every ``every_s`` seconds."""
    t0 = (begin or datetime.now(UTC) - timedelta(hours=1)).timestamp()
    return [[start[0] + i * step[0], start[1] + i * step[1], t0 + i * every_s] for i in range(n)]


def patrol_body(points: list[list[float]] | None = None, **extra: object) -> dict:
    """A patrol upload with a fresh ref."""
    return {"ref": str(uuid4()), "points": points or track(), **extra}


def gpx_text(points: list[list[float]], name: str = "巡查") -> str:
    """A GPX 1.1 file of the points, as other GPS software writes it."""
    rows = "".join(
        f'<trkpt lat="{lat}" lon="{lon}"><ele>100</ele>'
        f"<time>{datetime.fromtimestamp(t, UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}</time></trkpt>"
        for lon, lat, t in points
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk><name>{name}</name><trkseg>{rows}</trkseg></trk></gpx>"
    )
