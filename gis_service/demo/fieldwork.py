"""The demo district's field work: fictional households and people under care (七必访) in
about a fifth of the micro-grids, a month of their visits, and a month of patrols in a tenth
of the grids (enough for every screen; the demo loads at first start and in tests). Pure
Python and seeded, like the rest of the demo; its own random stream, so the grids, people,
facilities and hazards stay exactly as before.

Most people are visited on time; about one in eight has been neglected lately, so the
workbench and the map have overdue visits to show.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import shapely

# (category code, share of people, birth years) — the codes of layers/care.yaml.
_CARE_MIX = (
    ("elderly_alone", 0.30, (1932, 1956)),
    ("hardship_family", 0.18, (1950, 1990)),
    ("disabled_family", 0.14, (1945, 1995)),
    ("veteran", 0.12, (1940, 1985)),
    ("child_in_difficulty", 0.09, (2008, 2020)),
    ("party_member_hardship", 0.09, (1938, 1970)),
    ("key_person", 0.08, (1960, 2000)),
)
_FINDINGS = {
    "elderly_alone": (
        "老人身体状况平稳，血压正常，已提醒按时服药。",
        "老人独自在家，冰箱食物充足，叮嘱注意防滑。",
        "老人反映腿脚不便，下楼困难，已联系志愿者定期帮忙买菜。",
        "检查燃气阀门和电热毯，无安全隐患。",
    ),
    "hardship_family": (
        "家庭收入无变化，低保金按时到账。",
        "孩子学费有困难，已告知教育救助申请流程。",
        "家中老人住院，已协助申请临时救助。",
    ),
    "disabled_family": (
        "辅助器具使用正常，轮椅刹车已检修。",
        "反映无障碍坡道破损，已记录。",
        "康复训练按计划进行，家属情绪稳定。",
    ),
    "veteran": (
        "走访慰问，了解近况，无特殊诉求。",
        "咨询优抚政策，已解答并留下联系方式。",
    ),
    "child_in_difficulty": (
        "孩子在校表现良好，监护人在家。",
        "监护人外出务工，由祖父母照看，生活正常。",
        "已联系学校老师了解学习情况。",
    ),
    "party_member_hardship": (
        "老党员身体尚可，送去慰问品。",
        "反映医药费负担较重，已协助申请帮扶。",
    ),
    "key_person": (
        "情绪稳定，按时服药，家属配合看护。",
        "近期无异常，与家属沟通良好。",
    ),
}
_NEEDS = ("daily_care", "medical", "companionship", "financial_aid", "housing_repair",
          "policy_advice")  # fmt: skip
_VISIT_DAYS = 35  # a month of visits, and the last one before it
_PATROL_DAYS = 30
_WALK_MPS = 1.2  # walking speed
_FIX_EVERY_S = 15.0  # a GPS fix every 15 s, as the phone app records


@dataclass
class DemoVisit:
    """One visit to a person under care."""

    at: datetime
    visitor_key: str
    findings: str
    needs: list[str]
    lon: float
    lat: float
    accuracy_m: float


@dataclass
class DemoCarePerson:
    """A fictional person under care."""

    name: str
    gender: str
    birth_year: int
    phone: str | None
    categories: list[str]
    care_since: datetime
    note: str | None = None
    visits: list[DemoVisit] = field(default_factory=list)


@dataclass
class DemoHousehold:
    """A fictional household in a micro-grid, with its people under care."""

    code: str
    micro_code: str
    address: str
    phone: str | None
    lon: float
    lat: float
    people: list[DemoCarePerson] = field(default_factory=list)


@dataclass
class DemoPatrol:
    """A patrol walked by a grid's staff: points (lon, lat, epoch seconds)."""

    ref: str
    walker_key: str
    grid_code: str
    points: list[tuple[float, float, float]]


@dataclass
class FieldWork:
    """The demo's field work."""

    households: list[DemoHousehold]
    patrols: list[DemoPatrol]

    def counts(self) -> dict[str, int]:
        """Row counts by kind."""
        return {
            "households": len(self.households),
            "care_people": sum(len(h.people) for h in self.households),
            "visits": sum(len(p.visits) for h in self.households for p in h.people),
            "patrols": len(self.patrols),
            "patrol_points": sum(len(p.points) for p in self.patrols),
        }


def _deg(metres: float, lat: float) -> tuple[float, float]:
    return metres / (111_320.0 * math.cos(math.radians(lat))), metres / 110_900.0


def _inside(geom: Any, rng: np.random.Generator) -> tuple[float, float]:
    """A point inside a polygon (rejection sampling in its box; a point on it failing that)."""
    x0, y0, x1, y1 = geom.bounds
    xs, ys = rng.uniform(x0, x1, 24), rng.uniform(y0, y1, 24)
    hit = np.flatnonzero(shapely.contains_xy(geom, xs, ys))
    if hit.size:
        return round(float(xs[hit[0]]), 7), round(float(ys[hit[0]]), 7)
    p = geom.representative_point()
    return round(p.x, 7), round(p.y, 7)


def _work_time(day: datetime, rng: np.random.Generator) -> datetime:
    """A moment of a working day, 09:00-17:30 Beijing time (UTC+8), on the day of ``day``."""
    local = day + timedelta(hours=8)
    start = local.replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(hours=8)
    return start + timedelta(seconds=float(rng.uniform(0, 8.5 * 3600)))


def _visits(
    person: DemoCarePerson,
    every: int,
    visitors: list[str],
    home: tuple[float, float],
    now: datetime,
    rng: np.random.Generator,
) -> None:
    """A month of visits (and the one before it), on time but for the neglected few. The
    number of visits and of random draws never depends on the clock, so the same seed gives
    the same rows at any hour (only their times move with ``now``)."""
    neglected = rng.random() < 0.12
    days_ago = _VISIT_DAYS + float(rng.uniform(0, every))
    while days_ago > 0.1:
        if neglected and days_ago < every * 1.6:
            break
        at = min(_work_time(now - timedelta(days=days_ago), rng), now - timedelta(hours=1))
        dx, dy = _deg(float(rng.uniform(0, 12)), home[1])
        cat = person.categories[0]
        needs = [n for n in _NEEDS if rng.random() < 0.12]
        person.visits.append(
            DemoVisit(
                at=at,
                visitor_key=visitors[int(rng.integers(len(visitors)))],
                findings=_FINDINGS[cat][int(rng.integers(len(_FINDINGS[cat])))],
                needs=needs,
                lon=round(home[0] + dx * float(rng.uniform(-1, 1)), 7),
                lat=round(home[1] + dy * float(rng.uniform(-1, 1)), 7),
                accuracy_m=round(float(rng.uniform(5, 30)), 1),
            )
        )
        days_ago -= every * float(rng.uniform(0.55, 0.95))


def _walk(
    stops: list[tuple[float, float]], start: datetime, rng: np.random.Generator
) -> list[tuple[float, float, float]]:
    """Points every 15 s at walking pace along the stops, with a few metres of GPS scatter."""
    line = shapely.LineString(stops)
    lat = stops[0][1]
    metres = line.length * 111_320.0 * math.cos(math.radians(lat))
    n = max(2, int(metres / (_WALK_MPS * _FIX_EVERY_S)) + 1)
    along = shapely.line_interpolate_point(line, np.linspace(0, 1, n), normalized=True)
    xy = shapely.get_coordinates(along)
    dx, dy = _deg(1.0, lat)
    scatter = rng.normal(0, 3, (n, 2)) * (dx, dy)
    xy = np.round(xy + scatter, 7)
    times = np.round(start.timestamp() + np.arange(n) * _FIX_EVERY_S, 1)
    return [(float(x), float(y), float(t)) for (x, y), t in zip(xy, times, strict=True)]


def generate_fieldwork(
    grids: list[Any], people: Any, categories: dict[str, int], now: datetime, seed: int
) -> FieldWork:
    """Households, people under care and their visits, and patrols, for the grid tree
    (``grids``: the demo's grid-level nodes with their micro-grid children); ``people`` names
    them uniquely; ``categories`` maps category code to its visit frequency in days."""
    rng = np.random.default_rng(seed + 14)
    mix = [c for c in _CARE_MIX if c[0] in categories]
    shares = np.asarray([c[1] for c in mix])
    shares = shares / shares.sum()
    households: list[DemoHousehold] = []
    serial = 0
    for grid in grids:
        staff = [f"{grid.code}:grid_leader:1", f"{grid.code}:grid_member:1"]
        for micro in grid.children:
            if not mix or rng.random() >= 0.18:
                continue
            visitors = [f"{micro.code}:micro_grid_member:1", *staff]
            for h in range(1 if rng.random() < 0.7 else 2):
                lon, lat = _inside(micro.geom, rng)
                unit, floor = int(rng.integers(1, 5)), int(rng.integers(1, 8))
                room = f"{floor}{int(rng.integers(1, 5)):02d}"
                community = grid.parent.name if grid.parent else ""
                home = DemoHousehold(
                    code=f"{micro.code}-H{h + 1:02d}",
                    micro_code=micro.code,
                    address=f"{community}{micro.name}{unit}单元{room}室",
                    phone=None,
                    lon=lon,
                    lat=lat,
                )
                for _ in range(1 if rng.random() < 0.75 else 2):
                    serial += 1
                    code, _, years = mix[int(rng.choice(len(mix), p=shares))]
                    cats = [code]
                    if rng.random() < 0.15:
                        other = mix[int(rng.choice(len(mix), p=shares))][0]
                        if other != code:
                            cats.append(other)
                    person = DemoCarePerson(
                        name=people.name(rng),
                        gender="female" if rng.random() < 0.55 else "male",
                        birth_year=int(rng.integers(years[0], years[1] + 1)),
                        # Clearly fictional: 100- is no Chinese mobile range.
                        phone=f"100-8{serial // 10000:03d}-{serial % 10000:04d}"
                        if rng.random() < 0.8
                        else None,
                        categories=cats,
                        care_since=now - timedelta(days=float(rng.uniform(120, 900))),
                    )
                    every = min(categories[c] for c in cats)
                    _visits(person, every, visitors, (lon, lat), now, rng)
                    home.people.append(person)
                households.append(home)
    patrols: list[DemoPatrol] = []
    for grid in grids:
        if rng.random() >= 0.1 or len(grid.children) < 2:
            continue
        walkers = [f"{grid.code}:grid_leader:1", f"{grid.code}:grid_member:1"]
        for _ in range(int(rng.integers(4, 9))):
            day = now - timedelta(days=float(rng.uniform(0.5, _PATROL_DAYS)))
            start = min(_work_time(day, rng), now - timedelta(hours=3))
            k = int(rng.integers(2, min(6, len(grid.children)) + 1))
            chosen = rng.choice(len(grid.children), size=k, replace=False)
            stops = [_inside(grid.children[int(i)].geom, rng) for i in sorted(chosen)]
            patrols.append(
                DemoPatrol(
                    ref=str(uuid.UUID(bytes=rng.bytes(16), version=4)),
                    walker_key=walkers[int(rng.integers(len(walkers)))],
                    grid_code=grid.code,
                    points=_walk(stops, start.astimezone(UTC), rng),
                )
            )
    return FieldWork(households, patrols)
