"""The demo district: a seeded, fictional grid hierarchy over the real 二七区 boundary.

Pure Python (shapely 2 + NumPy), no database. The same seed gives the same grids, names,
codes, people, facilities and hazards; only the timestamps move with ``now``.

The tessellation is exact. Every level is first cut approximately (seeded points, Lloyd
relaxation, Voronoi cells clipped to the parent), then the boundaries of the finest cells are
noded once on a 1e-7° grid (~1 cm) and polygonised into faces. Every grid of every level is
the union of its faces, so siblings share bit-identical edges, children union exactly to their
parent and nothing overlaps.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.ops import substring

from gis_service.demo.fieldwork import FieldWork, generate_fieldwork

# 3: the working history (callbacks, exceptions, 吹哨, partner units) of demo/history.py;
# 4: households, people under care, a month of visits and patrols (demo/fieldwork.py)
GENERATOR_VERSION = "4"
DIVISION_CODE = "410103"  # 二七区, Zhengzhou (GB/T 2260)
GRID_SIZE = 1e-7  # degrees, ~1 cm: the precision every grid vertex is snapped to
HAZARD_PREFIX = "DEMO-"
HISTORY_DAYS = 90

# Metres per degree near the district (34.7°N); good to a fraction of a percent here.
_M_PER_DEG_LAT = 110_900.0
_M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(34.7))


# ---- the data the generator hands to the loader -------------------------------------------
@dataclass
class DemoGrid:
    """One grid of any level (street, community, grid, micro_grid, special)."""

    code: str
    name: str
    level: str
    parent_code: str | None
    geom: MultiPolygon
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoPerson:
    """A fictional person; ``key`` links assignments, hazards and events to them."""

    key: str
    name: str
    work_phone: str
    mobile_phone: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoAssignment:
    """A person's role on a grid."""

    grid_code: str
    person_key: str
    role: str
    is_primary: bool


@dataclass
class DemoFacility:
    """A facility (部件): a point or a short line inside one micro-grid."""

    code: str
    type_code: str
    name: str
    status: str
    geom: Point | LineString
    attributes: dict[str, Any] = field(default_factory=dict)


class DemoEvent(NamedTuple):
    """One step of a hazard's workflow."""

    action: str
    from_status: str | None
    to_status: str | None
    at: datetime
    actor_person_key: str | None
    note: str
    actor_name: str | None = None


@dataclass
class DemoHazard:
    """A hazard report with timestamps and events consistent with its status."""

    public_code: str
    category_code: str
    description: str
    severity: str
    status: str
    source: str
    lon: float
    lat: float
    facility_code: str | None
    reporter_name: str | None
    reporter_phone: str | None
    reported_at: datetime
    accepted_at: datetime | None = None
    dispatched_at: datetime | None = None
    due_at: datetime | None = None
    resolved_at: datetime | None = None
    verified_at: datetime | None = None
    closed_at: datetime | None = None
    assignee_person_key: str | None = None
    assignee_department_code: str | None = None
    address: str | None = None
    location_accuracy_m: float | None = None
    micro_grid_code: str | None = None
    events: list[DemoEvent] = field(default_factory=list)

    @property
    def updated_at(self) -> datetime:
        """The time of the last event."""
        return self.events[-1].at if self.events else self.reported_at


@dataclass
class DemoData:
    """Everything the demo district holds."""

    seed: int
    generated_at: datetime
    valid_from: datetime
    grids: list[DemoGrid]
    people: list[DemoPerson]
    assignments: list[DemoAssignment]
    facilities: list[DemoFacility]
    hazards: list[DemoHazard]
    fieldwork: FieldWork = field(default_factory=lambda: FieldWork([], []))

    def counts(self) -> dict[str, int]:
        """Row counts by kind, as recorded in service_meta."""
        levels = defaultdict(int)
        for g in self.grids:
            levels[g.level] += 1
        return {
            "streets": levels["street"],
            "communities": levels["community"],
            "grids": levels["grid"],
            "micro_grids": levels["micro_grid"],
            "special_grids": levels["special"],
            "people": len(self.people),
            "assignments": len(self.assignments),
            "facilities": len(self.facilities),
            "hazards": len(self.hazards),
            "hazard_events": sum(len(h.events) for h in self.hazards),
            **self.fieldwork.counts(),
        }


# ---- the plan: which streets exist and how big they are -----------------------------------
@dataclass(frozen=True)
class _StreetPlan:
    name: str
    anchor: tuple[float, float] | None  # a fixed Voronoi site (the real streets are urban)
    communities: int | None  # None: random 4-8
    grids: int | None  # total over the street; None: 5-9 per community
    micro_grids: int | None  # total over the street; None: 3-7 per grid
    special: int
    named_communities: tuple[str, ...] = ()
    unmanaged: int | None = None  # exact count of 无主管楼院, else about a quarter of compounds
    population: int | None = None  # residents, where the seed articles give it


# The three real names come from the seed articles, with their sizes where the articles give
# them; the anchors put them in the dense northern part of the district. All else is synthetic.
_STREETS = (
    _StreetPlan("铭功路街道", (113.646, 34.755), 8, 45, 190, 4, unmanaged=57),
    _StreetPlan(
        "嵩山路街道", (113.633, 34.738), 19, 170, 940, 36, ("星苑社区",), population=148_000
    ),
    _StreetPlan("五里堡街道", (113.655, 34.735), 7, None, None, 3, ("五里堡南社区",)),
    _StreetPlan("演示一街道", None, None, None, None, 3),
    _StreetPlan("演示二街道", None, None, None, None, 2),
    _StreetPlan("演示三街道", None, None, None, None, 3),
    _StreetPlan("演示四街道", None, None, None, None, 2),
    _StreetPlan("演示五街道", None, None, None, None, 3),
    _StreetPlan("演示六街道", None, None, None, None, 2),
)

_CN_DIGITS = "零一二三四五六七八九"
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
_GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红建国志文斌辉鹏宇浩凯"
    "晨欣怡思雨佳琪嘉颖婷雪梅海波俊峰亮成龙新春光荣晓东云飞慧丹宁安福德永利"
)
_SPECIAL_KINDS = (  # (unit type, name suffix, weight)
    ("school", "中学", 0.2),
    ("school", "小学", 0.25),
    ("hospital", "医院", 0.1),
    ("company", "有限公司", 0.35),
    ("industrial_park", "产业园", 0.1),
)
_COMPANY_WORDS = "宏远华信恒达天成瑞丰中原金水博创嘉和启明同兴"


def _cn_number(n: int) -> str:
    """1 → 一, 12 → 十二, 23 → 二十三 (enough for ordinal names up to 99)."""
    if n < 10:
        return _CN_DIGITS[n]
    tens, ones = divmod(n, 10)
    head = "" if tens == 1 else _CN_DIGITS[tens]
    return head + "十" + (_CN_DIGITS[ones] if ones else "")


# ---- geometry helpers ---------------------------------------------------------------------
def _metres_to_deg(m: float) -> float:
    """A length in metres as degrees of longitude, the larger of the two at this latitude, so
    a margin of ``m`` metres is at least ``m`` metres in every direction."""
    return m / _M_PER_DEG_LON


def _sample_points(poly: Polygon | MultiPolygon, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniformly random points strictly inside ``poly`` (rejection sampling)."""
    x0, y0, x1, y1 = poly.bounds
    shapely.prepare(poly)
    out: list[np.ndarray] = []
    have = 0
    while have < n:
        xs = rng.uniform(x0, x1, 4 * n + 16)
        ys = rng.uniform(y0, y1, 4 * n + 16)
        ok = shapely.contains_xy(poly, xs, ys)
        pts = np.column_stack([xs[ok], ys[ok]])
        out.append(pts)
        have += len(pts)
    return np.concatenate(out)[:n]


def _voronoi_cells(poly: Polygon | MultiPolygon, sites: np.ndarray) -> list[Any]:
    """Voronoi cells of ``sites`` clipped to ``poly``, in site order."""
    envelope = shapely.buffer(shapely.envelope(poly), 0.01)
    vor = shapely.voronoi_polygons(shapely.multipoints(sites), extend_to=envelope, ordered=True)
    return list(shapely.intersection(np.asarray(vor.geoms), poly))


def _merge_detached(cells: list[Any]) -> list[Any]:
    """Give each cell's smaller detached parts to the sibling they share most edge with, so a
    concave parent doesn't leave a cell in scattered pieces."""
    cells = list(cells)
    for i in range(len(cells)):
        parts = sorted(shapely.get_parts(cells[i]), key=lambda p: -p.area)
        if len(parts) <= 1:
            continue
        keep = [parts[0]]
        for part in parts[1:]:
            probe = part.buffer(1e-9)
            best, best_len = None, 0.0
            for j, other in enumerate(cells):
                if j == i or not probe.intersects(other):
                    continue
                shared = part.boundary.intersection(other.buffer(1e-9)).length
                if shared > best_len:
                    best, best_len = j, shared
            if best is None:
                keep.append(part)
            else:
                cells[best] = shapely.union(cells[best], part)
        cells[i] = shapely.union_all(keep)
    return cells


def _tessellate(
    poly: Polygon | MultiPolygon,
    n: int,
    rng: np.random.Generator,
    anchors: Sequence[tuple[float, float] | None] | None = None,
    iterations: int = 3,
) -> list[Any]:
    """Cut ``poly`` into ``n`` roughly even cells (approximate; made exact later)."""
    if n == 1:
        return [poly]
    sites = _sample_points(poly, n, rng)
    fixed = np.zeros(n, dtype=bool)
    for i, anchor in enumerate(anchors or ()):
        if anchor is not None:
            sites[i] = anchor
            fixed[i] = True
    for _ in range(iterations):
        # Lloyd relaxation: move each free site to its cell's centroid for even sizes.
        cells = _voronoi_cells(poly, sites)
        cents = shapely.centroid(cells)
        inside = shapely.contains(poly, cents)
        cents = np.where(inside, cents, shapely.point_on_surface(cells))
        moved = shapely.get_coordinates(cents)
        sites = np.where(fixed[:, None], sites, moved)
    return _merge_detached(_voronoi_cells(poly, sites))


def _reading_order(cells: list[Any]) -> list[int]:
    """Indices of ``cells`` north to south in ~300 m bands, west to east within a band."""
    cents = shapely.get_coordinates(shapely.centroid(cells))
    keys = [(-round(y / 0.003), x) for x, y in cents]
    return sorted(range(len(cells)), key=lambda i: keys[i])


def _as_multipolygon(geom: Any) -> MultiPolygon:
    """Polygon parts of ``geom`` as a MultiPolygon."""
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and not p.is_empty]
    return MultiPolygon(parts)


def _allocate(total: int, weights: Sequence[float], minimum: int) -> list[int]:
    """Split ``total`` into integers ≥ ``minimum`` roughly proportional to ``weights``
    (largest remainder, ties by position, so it is deterministic)."""
    n = len(weights)
    rest = total - n * minimum
    if rest < 0:
        raise ValueError(f"cannot split {total} into {n} parts of at least {minimum}")
    w = np.asarray(weights, dtype=float)
    share = w / w.sum() * rest
    base = np.floor(share).astype(int)
    left = rest - int(base.sum())
    order = sorted(range(n), key=lambda i: (-(share[i] - base[i]), i))
    for i in order[:left]:
        base[i] += 1
    return [int(b) + minimum for b in base]


# ---- the node tree built while cutting ----------------------------------------------------
@dataclass
class _Node:
    level: str
    code: str
    name: str
    parent: _Node | None
    approx: Any
    attributes: dict[str, Any] = field(default_factory=dict)
    children: list[_Node] = field(default_factory=list)
    geom: MultiPolygon | None = None
    street: _StreetPlan | None = None


def _build_tree(boundary: MultiPolygon, rng: np.random.Generator) -> list[_Node]:
    """Streets → communities → grids → micro-grids, cut approximately, codes and names set."""
    streets: list[_Node] = []
    cells = _tessellate(boundary, len(_STREETS), rng, anchors=[s.anchor for s in _STREETS])
    community_serial = 0  # synthetic community names run across the district: 演示社区01…
    for si, (plan, cell) in enumerate(zip(_STREETS, cells, strict=True)):
        street = _Node("street", f"{DIVISION_CODE}{si + 1:03d}", plan.name, None, cell)
        street.street = plan
        streets.append(street)
        n_comm = plan.communities or int(rng.integers(4, 9))
        comm_cells = _tessellate(cell, n_comm, rng)
        comm_cells = [comm_cells[i] for i in _reading_order(comm_cells)]
        # Real community names go to randomly chosen slots, the rest are numbered.
        named_slots = rng.choice(n_comm, size=len(plan.named_communities), replace=False)
        names: dict[int, str] = dict(zip(named_slots.tolist(), plan.named_communities, strict=True))
        areas = [c.area for c in comm_cells]
        if plan.grids is not None:
            grid_counts = _allocate(plan.grids, areas, 3)
        else:
            grid_counts = [int(rng.integers(5, 10)) for _ in comm_cells]
        for ci, (ccell, n_grid) in enumerate(zip(comm_cells, grid_counts, strict=True)):
            if ci in names:
                cname = names[ci]
            else:
                community_serial += 1
                cname = f"演示社区{community_serial:02d}"
            comm = _Node("community", f"{street.code}{ci + 1:03d}", cname, street, ccell)
            street.children.append(comm)
            grid_cells = _tessellate(ccell, n_grid, rng)
            comm.children = [
                _Node("grid", f"{comm.code}{gi + 1:03d}", f"第{gi + 1}网格", comm, grid_cells[k])
                for gi, k in enumerate(_reading_order(grid_cells))
            ]
        grids = [g for c in street.children for g in c.children]
        if plan.micro_grids is not None:
            micro_counts = _allocate(plan.micro_grids, [g.approx.area for g in grids], 2)
        else:
            micro_counts = [int(rng.integers(3, 8)) for _ in grids]
        for grid, n_micro in zip(grids, micro_counts, strict=True):
            micro_cells = _tessellate(grid.approx, n_micro, rng, iterations=2)
            grid.children = [
                _Node("micro_grid", f"{grid.code}{mi + 1:03d}", "", grid, micro_cells[k])
                for mi, k in enumerate(_reading_order(micro_cells))
            ]
    return streets


def _make_exact(boundary: MultiPolygon, streets: list[_Node]) -> None:
    """Node all finest boundaries once, polygonise, and build every level from the faces."""
    micros = [m for s in streets for c in s.children for g in c.children for m in g.children]
    approx = [m.approx for m in micros]
    lines = shapely.union_all(
        [shapely.boundary(boundary), *shapely.boundary(approx)], grid_size=GRID_SIZE
    )
    faces = np.asarray(
        [f for f in shapely.get_parts(shapely.polygonize(shapely.get_parts(lines))) if f.area > 0]
    )
    # Faces outside the district (none expected) are dropped.
    faces = faces[shapely.contains(boundary, shapely.point_on_surface(faces))]
    # Each face goes to the approximate micro-grid it overlaps most.
    tree = shapely.STRtree(approx)
    fi, mi = tree.query(faces, predicate="intersects")
    overlap = shapely.area(shapely.intersection(faces[fi], np.asarray(approx, dtype=object)[mi]))
    label = np.full(len(faces), -1)
    best = np.full(len(faces), -1.0)
    for f, m, a in zip(fi, mi, overlap, strict=True):
        if a > best[f]:
            best[f], label[f] = a, m
    # A sliver face (under ~1 m², where two near-coincident edges didn't snap together) joins
    # the neighbouring face it shares most edge with, whatever its level: all levels are built
    # from the same labels, so the hierarchy stays consistent.
    tiny = shapely.area(faces) < 1e-10
    if tiny.any():
        face_tree = shapely.STRtree(faces)
        for f in np.flatnonzero(tiny):
            cand = [c for c in face_tree.query(faces[f], predicate="touches") if not tiny[c]]
            if cand:
                shared = [
                    shapely.intersection(faces[f].boundary, faces[c].boundary).length for c in cand
                ]
                label[f] = label[cand[int(np.argmax(shared))]]
    by_micro: dict[int, list[int]] = defaultdict(list)
    for f, m in enumerate(label):
        by_micro[int(m)].append(f)
    missing = [i for i in range(len(micros)) if i not in by_micro]
    if missing:
        raise RuntimeError(f"{len(missing)} micro-grids got no face; try another seed")

    def union(face_ids: list[int]) -> MultiPolygon:
        if len(face_ids) == 1:
            return _as_multipolygon(faces[face_ids[0]])
        return _as_multipolygon(shapely.coverage_union_all(faces[face_ids]))

    index = {id(m): i for i, m in enumerate(micros)}

    def faces_of(node: _Node) -> list[int]:
        if node.level == "micro_grid":
            return by_micro[index[id(node)]]
        return [f for child in node.children for f in faces_of(child)]

    for street in streets:
        street.geom = union(faces_of(street))
        for comm in street.children:
            comm.geom = union(faces_of(comm))
            for grid in comm.children:
                grid.geom = union(faces_of(grid))
                for micro in grid.children:
                    micro.geom = union(faces_of(micro))


# ---- attributes and names -----------------------------------------------------------------
def _micro_names_and_attributes(streets: list[_Node], rng: np.random.Generator) -> None:
    """Name micro-grids (buildings 楼 and compounds 院), mark 无主管楼院, add sizes."""
    for street in streets:
        plan = street.street
        assert plan is not None
        micros = [m for c in street.children for g in c.children for m in g.children]
        is_compound = rng.random(len(micros)) < 0.35
        if plan.unmanaged is not None:
            # Exactly this many unmanaged compounds: first make sure there are enough compounds.
            short = plan.unmanaged - int(is_compound.sum())
            if short > 0:
                is_compound[rng.choice(np.flatnonzero(~is_compound), size=short, replace=False)] = (
                    True
                )
            compounds = np.flatnonzero(is_compound)
            unmanaged = set(rng.choice(compounds, size=plan.unmanaged, replace=False).tolist())
        else:
            unmanaged = {i for i in np.flatnonzero(is_compound) if rng.random() < 0.25}
        i = 0
        for comm in street.children:
            # Building and compound numbers run through the community, as house numbers do.
            next_building, next_compound = 1, int(rng.integers(1, 30))
            for grid in comm.children:
                for micro in grid.children:
                    floors = int(rng.choice([3, 5, 6, 7, 11, 18, 24, 28, 33]))
                    if is_compound[i]:
                        micro.name = f"{next_compound}号院"
                        next_compound += int(rng.integers(1, 4))
                        buildings = int(rng.integers(2, 9))
                        households = int(buildings * floors * rng.integers(2, 5))
                        kind = "compound"
                    else:
                        micro.name = f"{next_building}号楼"
                        next_building += 1
                        buildings = 1
                        households = int(floors * rng.integers(2, 7))
                        kind = "building"
                    micro.attributes = {
                        "kind": kind,
                        "households": households,
                        "population": int(households * rng.uniform(2.2, 3.1)),
                        "building": {
                            "count": buildings,
                            "floors": floors,
                            "built_year": int(rng.integers(1978, 2021)),
                            "property_company": None if i in unmanaged else "演示物业服务有限公司",
                        },
                        "unmanaged_compound": i in unmanaged,
                    }
                    i += 1
        if plan.population:
            # Scale the street's micro-grids to the population the seed article gives.
            factor = plan.population / sum(m.attributes["population"] for m in micros)
            for m in micros:
                for key in ("population", "households"):
                    m.attributes[key] = max(1, round(m.attributes[key] * factor))
        for comm in street.children:
            for grid in comm.children:
                _sum_attributes(grid)
            _sum_attributes(comm)
        _sum_attributes(street)


def _sum_attributes(node: _Node) -> None:
    """Population, households and counts of a grid from its children."""
    kids = [c.attributes for c in node.children]
    node.attributes = {
        "population": sum(a["population"] for a in kids),
        "households": sum(a["households"] for a in kids),
        # A micro-grid flags itself; coarser grids count their flagged micro-grids.
        "unmanaged_compounds": sum(
            int(a["unmanaged_compound"]) if "unmanaged_compound" in a else a["unmanaged_compounds"]
            for a in kids
        ),
    }


def _place_story(streets: list[_Node]) -> _Node | None:
    """The seed story's compound: 五里堡南社区's 51号院, an unmanaged compound."""
    for street in streets:
        for comm in street.children:
            if comm.name != "五里堡南社区":
                continue
            micros = [m for g in comm.children for m in g.children]
            # The community's own 51号院 if the numbering produced one (names stay unique).
            named = [m for m in micros if m.name == "51号院"]
            target = named[0] if named else max(micros, key=lambda m: m.geom.area)
            target.name = "51号院"
            # An old compound with no property company and ageing pipes, as in the article.
            target.attributes.update(
                kind="compound",
                households=48,
                population=131,
                unmanaged_compound=True,
                address="大学北路51号院",
                building={"count": 4, "floors": 6, "built_year": 1986, "property_company": None},
            )
            for grid in comm.children:
                _sum_attributes(grid)
            _sum_attributes(comm)
            _sum_attributes(street)
            return target
    return None


def _special_grids(streets: list[_Node], rng: np.random.Generator) -> list[DemoGrid]:
    """Special grids (专属网格): small rectangles wholly inside one community each."""
    out: list[DemoGrid] = []
    ordinal: dict[str, int] = defaultdict(int)
    for street in streets:
        plan = street.street
        assert plan is not None
        comms = street.children
        weights = np.asarray([c.geom.area for c in comms])
        serial: dict[str, int] = defaultdict(int)
        taken: dict[str, list[Polygon]] = defaultdict(list)
        for _ in range(plan.special):
            kind_p = np.asarray([w for _, _, w in _SPECIAL_KINDS])
            unit_type, suffix, _ = _SPECIAL_KINDS[int(rng.choice(len(kind_p), p=kind_p))]
            geom = None
            for _attempt in range(200):
                # Bigger communities host more units; a failed try may pick another one.
                comm = comms[int(rng.choice(len(comms), p=weights / weights.sum()))]
                half_w = rng.uniform(35, 110)  # metres
                half_h = rng.uniform(30, 90)
                margin = _metres_to_deg(math.hypot(half_w, half_h) + 5)
                ((cx, cy),) = _sample_points(comm.geom, 1, rng)
                if shapely.distance(comm.geom.boundary, Point(cx, cy)) <= margin:
                    continue
                rect = shapely.box(
                    -half_w / _M_PER_DEG_LON,
                    -half_h / _M_PER_DEG_LAT,
                    half_w / _M_PER_DEG_LON,
                    half_h / _M_PER_DEG_LAT,
                )
                rect = affinity.rotate(rect, float(rng.uniform(-30, 30)), origin=(0, 0))
                rect = affinity.translate(rect, cx, cy)
                rect = shapely.set_precision(rect, GRID_SIZE)
                if (
                    rect.is_valid
                    and comm.geom.contains(rect)
                    and not any(rect.intersects(t) for t in taken[comm.code])
                ):
                    geom = rect
                    break
            if geom is None:
                raise RuntimeError(f"no room for a special grid in {street.name}")
            taken[comm.code].append(geom)
            serial[comm.code] += 1
            ordinal[suffix] += 1
            n = ordinal[suffix]
            if unit_type == "school":
                name = f"演示第{_cn_number(n)}{suffix}"
            elif unit_type == "hospital":
                name = f"演示第{_cn_number(n)}人民医院"
            else:
                pairs = len(_COMPANY_WORDS) // 2
                word = _COMPANY_WORDS[(n - 1) % pairs * 2 :][:2]
                lap = "" if n <= pairs else _cn_number((n - 1) // pairs + 1)
                infix = "科技" if unit_type == "company" else ""
                name = f"演示{word}{lap}{infix}{suffix}"
            out.append(
                DemoGrid(
                    code=f"{comm.code}9{serial[comm.code]:02d}",
                    name=name,
                    level="special",
                    parent_code=comm.code,
                    geom=MultiPolygon([geom]),
                    attributes={
                        "unit_type": unit_type,
                        "staff": int(rng.integers(40, 1500)),
                    },
                )
            )
    return out


# ---- people -------------------------------------------------------------------------------
class _People:
    """Fictional people with unique names and clearly fictional phone numbers."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.people: list[DemoPerson] = []
        self.by_key: dict[str, DemoPerson] = {}
        self._names: set[str] = set()

    def name(self, rng: np.random.Generator | None = None) -> str:
        """A unique two- or three-character Chinese name (drawn from ``rng``, default ours)."""
        rng = rng or self.rng
        while True:
            surname = _SURNAMES[int(rng.integers(len(_SURNAMES)))]
            size = 1 if rng.random() < 0.3 else 2
            given = "".join(_GIVEN[int(i)] for i in rng.integers(len(_GIVEN), size=size))
            if surname + given not in self._names:
                self._names.add(surname + given)
                return surname + given

    def add(self, key: str, **attributes: Any) -> DemoPerson:
        """Create a person (work phone 0371-555xxxxx; mobile 100-xxxx-xxxx, not a real range)."""
        n = len(self.people) + 1
        person = DemoPerson(
            key=key,
            name=self.name(),
            work_phone=f"0371-555{n:05d}",
            mobile_phone=f"100-{n // 10000:04d}-{n % 10000:04d}",
            attributes=attributes,
        )
        self.people.append(person)
        self.by_key[key] = person
        return person


_ROLES: dict[str, tuple[tuple[str, bool], ...]] = {
    "street": (("party_secretary", True), ("director", False)),
    "community": (("party_secretary", True), ("director", False), ("community_police", False)),
    "grid": (("grid_leader", True), ("grid_member", False)),
    "micro_grid": (("micro_grid_member", True), ("building_head", False)),
    "special": (("special_grid_leader", True),),
}


def _staff(grids: list[DemoGrid], people: _People) -> list[DemoAssignment]:
    """Every grid's people: exactly one primary, plus deputies by level."""
    out: list[DemoAssignment] = []
    for g in grids:
        roles = list(_ROLES[g.level])
        if g.level == "grid" and people.rng.random() < 0.5:
            roles.append(("grid_member", False))  # busy grids have two members
        counts: dict[str, int] = defaultdict(int)
        for role, primary in roles:
            counts[role] += 1
            key = f"{g.code}:{role}:{counts[role]}"
            people.add(key, party_member=bool(primary or people.rng.random() < 0.4))
            out.append(DemoAssignment(g.code, key, role, primary))
    return out


# ---- facilities ---------------------------------------------------------------------------
def _facility_types(catalog: Any) -> list[Any]:
    types = getattr(catalog, "facility_types", {}) or {}
    return [types[k] for k in sorted(types)]


def _per_micro_grid(ft: Any) -> float:
    demo = getattr(ft, "demo", None)
    value = getattr(demo, "per_micro_grid", None) if demo is not None else None
    if value is None and isinstance(demo, dict):
        value = demo.get("per_micro_grid")
    return 0.5 if value is None else float(value)


def _line_in(
    inner: Polygon | MultiPolygon, kind: str, rng: np.random.Generator
) -> LineString | None:
    """A short line inside ``inner``: walls and fences follow its edge, pipes run straight."""
    if kind in ("wall", "fence"):
        rings = [p.exterior for p in shapely.get_parts(inner)]
        ring = max(rings, key=lambda r: r.length)
        length_deg = _metres_to_deg(float(rng.uniform(15, 45)))
        if ring.length <= length_deg * 1.2:
            return None
        start = float(rng.uniform(0, ring.length - length_deg))
        line = substring(ring, start, start + length_deg)
        line = shapely.set_precision(line, GRID_SIZE)
        return line if isinstance(line, LineString) and line.length > 0 else None
    for _ in range(10):
        ((x, y),) = _sample_points(inner, 1, rng)
        length = float(rng.uniform(15, 60))
        angle = float(rng.uniform(0, math.pi))
        dx, dy = (
            length * math.cos(angle) / _M_PER_DEG_LON,
            length * math.sin(angle) / _M_PER_DEG_LAT,
        )
        line = shapely.set_precision(LineString([(x, y), (x + dx, y + dy)]), GRID_SIZE)
        if isinstance(line, LineString) and line.length > 0 and inner.contains(line):
            return line
    return None


def _line_kind(ft: Any) -> str:
    code = str(getattr(ft, "code", ""))
    name = str(getattr(ft, "name_zh", ""))
    if "wall" in code or "墙" in name:
        return "wall"
    if "fence" in code or "栏" in name:
        return "fence"
    return "pipe"


_FACILITY_STATUSES = ("in_service", "damaged", "under_repair", "planned")
_FACILITY_STATUS_P = (0.88, 0.06, 0.04, 0.02)


def _facilities(
    micros: list[_Node], catalog: Any, rng: np.random.Generator
) -> list[tuple[DemoFacility, _Node]]:
    """Facilities of each catalogue type, Poisson per micro-grid, kept ≥ 3 m from its edge."""
    inner = shapely.buffer([m.geom for m in micros], -_metres_to_deg(3.0))
    out: list[tuple[DemoFacility, _Node]] = []
    for ft in _facility_types(catalog):
        rate = _per_micro_grid(ft)
        if rate <= 0:
            continue
        counts = rng.poisson(rate, size=len(micros))
        class_code = str(getattr(ft, "class_code", "0000"))
        type_name = str(getattr(ft, "name_zh", ft.code))
        is_line = getattr(ft, "geometry", "point") == "line"
        placed: list[tuple[Any, _Node, int]] = []
        for micro, area, n in zip(micros, inner, counts, strict=True):
            if n == 0 or area.is_empty:
                continue
            if is_line:
                lines = [_line_in(area, _line_kind(ft), rng) for _ in range(int(n))]
                geoms: list[Any] = [g for g in lines if g is not None]
            else:
                # Rounded to the grid precision, which keeps them ≥ 3 m inside the micro-grid.
                geoms = list(shapely.points(np.round(_sample_points(area, int(n), rng), 7)))
            placed.extend((g, micro, k) for k, g in enumerate(geoms, start=1))
        codes = [f"{DIVISION_CODE}{class_code}{i:06d}" for i in range(1, len(placed) + 1)]
        statuses = rng.choice(len(_FACILITY_STATUSES), size=len(placed), p=_FACILITY_STATUS_P)
        attributes = _facility_attributes(ft, codes, rng)
        for (geom, micro, k), code, status, attrs in zip(
            placed, codes, statuses, attributes, strict=True
        ):
            facility = DemoFacility(
                code=code,
                type_code=str(ft.code),
                name=f"{micro.name}{k}号{type_name}",
                status=_FACILITY_STATUSES[int(status)],
                geom=geom,
                attributes=attrs,
            )
            out.append((facility, micro))
    return out


# Plausible values for the numeric attributes the catalogue declares, by attribute name:
# (low, high) draws uniformly (integers when both are ints), a list is a choice.
_ATTRIBUTE_VALUES: dict[str, tuple[float, float] | list[float]] = {
    "built_year": (1980, 2020),
    "install_year": (1995, 2025),
    "installed_year": (2010, 2025),
    "diameter_mm": [200, 300, 400, 500, 600],
    "pipe_diameter_mm": [300, 400, 500, 600],
    "size_mm": [600, 700, 800],
    "depth_m": (1.0, 4.0),
    "height_m": (0.9, 3.0),
    "power_kw": [7, 30, 60, 120],
    "ports": (4, 13),
    "connectors": (1, 3),
    "charging_ports": (4, 21),
    "parking_spaces": (10, 61),
    "fire_extinguishers": (1, 5),
    "pieces": (3, 13),
    "seats": (2, 9),
    "stalls": (2, 9),
}


def _facility_attributes(ft: Any, codes: list[str], rng: np.random.Generator) -> list[dict]:
    """Values for the attributes the type declares, for ``codes`` facilities at once (drawn
    column by column, which is much faster); free text other than the component ID is left
    out rather than invented."""
    columns: dict[str, list[Any]] = {}
    n = len(codes)
    specs = getattr(ft, "attributes", {}) or {}
    for name in sorted(specs):
        kind = getattr(specs[name], "type", None)
        values = getattr(specs[name], "values", None)
        known = _ATTRIBUTE_VALUES.get(name)
        if name == "component_id":
            columns[name] = codes
        elif kind == "enum" and values:
            columns[name] = [str(values[i]) for i in rng.integers(len(values), size=n)]
        elif kind == "boolean":
            columns[name] = (rng.random(n) < 0.7).tolist()
        elif kind == "integer":
            if isinstance(known, list):
                columns[name] = [int(known[i]) for i in rng.integers(len(known), size=n)]
            else:
                low, high = known or (1, 11)
                columns[name] = rng.integers(int(low), int(high), size=n).tolist()
        elif kind == "number":
            if isinstance(known, list):
                columns[name] = [float(known[i]) for i in rng.integers(len(known), size=n)]
            else:
                low, high = known or (0.5, 5.0)
                columns[name] = np.round(rng.uniform(low, high, size=n), 1).tolist()
    return [{k: col[i] for k, col in columns.items()} for i in range(n)]


# ---- hazards ------------------------------------------------------------------------------
# Descriptions by category code ({p}: the place, {f}: the facility type), in the words of the
# seed articles where they have them. A category not listed gets a plain generic sentence.
_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "sewer_blockage": (
        "{p}下水道堵塞，污水外溢",
        "{p}排污管道堵塞，一楼卫生间返水",
        "{p}折角井淤积，污水漫到路面",
        "{p}户管窨井堵塞，院内污水横流，气味很大",
    ),
    "waterlogging": ("{p}雨后积水严重，没过脚踝", "{p}门口低洼处积水，居民出行困难"),
    "manhole_cover_sunken": ("{p}{f}下沉，车辆经过有异响", "{p}{f}下沉约5厘米，容易绊倒行人"),
    "manhole_cover_missing": ("{p}{f}缺失，存在跌落风险", "{p}{f}破损松动，踩上去晃动"),
    "wall_damage": ("{p}围墙倾斜，墙体裂缝扩大", "{p}围墙局部开裂，有砖块掉落"),
    "road_collapse": ("{p}路面塌陷，形成约半米深坑", "{p}路面下沉开裂，疑似下方管道渗漏"),
    "solar_heater_leak": ("{p}楼顶太阳能热水器漏水，顺外墙流下", "{p}太阳能管道漏水，楼道墙面渗水"),
    "flying_wire_charging": (
        "{p}有居民从窗户拉线给电动车充电（飞线充电）",
        "{p}楼道内私拉电线给电动车充电",
    ),
    "charger_fault": ("{p}{f}故障，无法充电", "{p}{f}外壳破损，线头外露"),
    "charger_installation_request": (
        "{p}居民反映电动车充电难，希望增设充电桩",
        "{p}居民联名申请安装电动自行车充电桩",
    ),
    "clutter": ("{p}院内乱堆乱放杂物", "{p}院内堆放建筑垃圾，长期无人清理"),
    "corridor_clutter": ("{p}楼道乱堆乱放杂物，堵塞消防通道", "{p}楼道内停放电动车、堆放纸箱"),
    "graffiti": ("{p}墙面小广告乱贴乱画", "{p}单元门口张贴大量小广告"),
    "parking_disorder": ("{p}车辆乱停乱放，堵塞消防通道", "{p}非机动车占用盲道停放"),
    "door_access_fault": ("{p}单元门禁损坏，外来人员随意进出", "{p}门禁刷卡失灵，居民进出不便"),
    "neighbour_dispute": ("{p}两户居民因养犬问题发生争执", "{p}邻里因噪音问题发生纠纷，需要调解"),
    "dog_nuisance": ("{p}有人遛狗不拴绳，居民担心安全", "{p}犬只夜间吠叫扰民"),
    "camera_fault": ("{p}{f}离线，画面无信号", "{p}{f}被树枝遮挡"),
    "gas_leak": ("{p}附近闻到明显燃气味", "{p}{f}周边有燃气味，疑似管道泄漏"),
    "public_facility_damage": ("{p}{f}损坏，存在安全隐患", "{p}{f}松动，需要维修"),
    "illegal_construction": ("{p}楼顶私搭乱建彩钢房", "{p}一楼住户违规扩建院墙"),
    "illegal_activity_clue": ("{p}有人疑似从事非法集资宣传", "{p}出租屋人员频繁进出，情况可疑"),
    "mass_incident_risk": (
        "{p}部分居民因物业问题聚集，情绪激动",
        "{p}多名居民反映同一问题，拟集体上访",
    ),
}

_STATUS_WEIGHTS = {
    "reported": 28,
    "accepted": 20,
    "rejected": 14,
    "dispatched": 32,
    "in_progress": 32,
    "resolved": 24,
    "verified": 20,
    "closed": 110,
}
_PATH = ("reported", "accepted", "dispatched", "in_progress", "resolved", "verified", "closed")
_SOURCES = (
    ("patrol", 0.4),
    ("resident", 0.25),
    ("hotline", 0.2),
    ("camera", 0.1),
    ("superior", 0.05),
)
_SEVERITIES = ("low", "medium", "high", "critical")
_SOURCE_NOTES = {
    "patrol": "网格员巡查发现上报",
    "resident": "居民随手拍上报",
    "hotline": "12345热线转办",
    "camera": "视频监控发现上报",
    "superior": "上级交办",
}
_NOTES = {
    "report": "上报",
    "accept": "情况属实，予以立案",
    "reject": "经核实不属于本辖区职责范围，不予立案",
    "dispatch": "派遣处置",
    "escalate": "社区吹哨、部门报到：需专业力量处置，已通知{d}",
    "start": "已到现场，开始处置",
    "resolve": "处置完毕，已反馈",
    "fail_verification": "核查未通过，现场仍有问题，退回重新处置",
    "verify": "现场核查，处置到位",
    "close": "居民满意，结案",
}


def _categories(catalog: Any) -> list[Any]:
    cats = getattr(catalog, "hazard_categories", {}) or {}
    return [cats[k] for k in sorted(cats)]


def _weight(cat: Any) -> float:
    demo = getattr(cat, "demo", None)
    value = getattr(demo, "weight", None) if demo is not None else None
    if value is None and isinstance(demo, dict):
        value = demo.get("weight")
    return 1.0 if value is None else float(value)


def _templates(cat: Any) -> tuple[str, ...]:
    code = str(getattr(cat, "code", ""))
    name = str(getattr(cat, "name_zh", "")) or code
    return _DESCRIPTIONS.get(code, (f"{{p}}发现{name}问题，请尽快处理",))


def _is_sewer(cat: Any) -> bool:
    code = str(getattr(cat, "code", "")).lower()
    return "sewer" in code or "下水" in str(getattr(cat, "name_zh", ""))


def _departments(catalog: Any) -> dict[str, Any]:
    deps = getattr(catalog, "departments", {}) or {}
    if isinstance(deps, dict):
        return deps
    return {getattr(d, "code", str(d)): d for d in deps}


class _HazardMaker:
    """Builds hazards one by one from a shared random stream."""

    def __init__(
        self,
        catalog: Any,
        micros: list[_Node],
        facilities: list[tuple[DemoFacility, _Node]],
        people: _People,
        now: datetime,
        rng: np.random.Generator,
    ) -> None:
        self.rng = rng
        self.now = now
        self.people = people
        self.micros = micros
        self.cats = _categories(catalog)
        self.departments = _departments(catalog)
        by_type: dict[str, list[tuple[DemoFacility, _Node]]] = defaultdict(list)
        for fac, micro in facilities:
            by_type[fac.type_code].append((fac, micro))
        self.by_type = by_type
        self.type_names = {
            str(ft.code): str(getattr(ft, "name_zh", ft.code)) for ft in _facility_types(catalog)
        }
        self.inner = {id(m): shapely.buffer(m.geom, -_metres_to_deg(2.0)) for m in micros}
        self.residents = 0
        self.serial = 0

    def _resident(self) -> tuple[str, str]:
        self.residents += 1
        n = self.residents
        return self.people.name(), f"100-9{n // 1000:03d}-{n % 1000:04d}"

    def _location(
        self, cat: Any, micro: _Node | None
    ) -> tuple[float, float, _Node, DemoFacility | None]:
        rng = self.rng
        types = [t for t in getattr(cat, "facility_types", []) or [] if self.by_type.get(t)]
        if types:
            pool = [x for t in types for x in self.by_type[t]]
            if micro is not None:
                local = [x for x in pool if x[1] is micro]
                pool = (
                    local or [x for x in pool if x[1].parent.parent is micro.parent.parent] or pool
                )
            fac, fmicro = pool[int(rng.integers(len(pool)))]
            if isinstance(fac.geom, LineString):
                base = fac.geom.interpolate(float(rng.uniform(0, 1)), normalized=True)
            else:
                base = fac.geom
            # Reports land within a couple of metres of the facility (GPS scatter).
            r, a = float(rng.uniform(0, 1.5)), float(rng.uniform(0, 2 * math.pi))
            pt = Point(
                base.x + r * math.cos(a) / _M_PER_DEG_LON,
                base.y + r * math.sin(a) / _M_PER_DEG_LAT,
            )
            if not fmicro.geom.contains(pt):
                pt = base
            return round(pt.x, 7), round(pt.y, 7), fmicro, fac
        target = micro or self.micros[int(rng.integers(len(self.micros)))]
        area = self.inner[id(target)]
        if area.is_empty:
            area = target.geom
        ((x, y),) = _sample_points(area, 1, rng)
        return round(float(x), 7), round(float(y), 7), target, None

    def make(
        self, status: str, cat: Any, micro: _Node | None = None, rework: bool = False
    ) -> DemoHazard:
        """One hazard of ``cat`` in ``status``, optionally in a given micro-grid."""
        rng = self.rng
        lon, lat, m, fac = self._location(cat, micro)
        grid, comm = m.parent, m.parent.parent
        street = comm.parent
        key = self.people.by_key
        member = f"{m.code}:micro_grid_member:1"
        leader = f"{grid.code}:grid_leader:1"
        grid_member = f"{grid.code}:grid_member:1"
        director = f"{comm.code}:director:1"
        secretary = f"{comm.code}:party_secretary:1"
        source = str(rng.choice([s for s, _ in _SOURCES], p=[p for _, p in _SOURCES]))
        if source == "patrol":
            reporter_key = grid_member if rng.random() < 0.6 else member
            reporter_name, reporter_phone = key[reporter_key].name, key[reporter_key].mobile_phone
        elif source in ("resident", "hotline"):
            reporter_key = None
            reporter_name, reporter_phone = self._resident()
        elif source == "camera":
            reporter_key, reporter_name, reporter_phone = None, "视频巡查", None
        else:
            reporter_key, reporter_name, reporter_phone = (
                None,
                "区网格化服务管理中心",
                "0371-55500000",
            )
        default_sev = str(getattr(cat, "default_severity", "medium"))
        sev_i = _SEVERITIES.index(default_sev) if default_sev in _SEVERITIES else 1
        sev_i = int(np.clip(sev_i + rng.choice([-1, 0, 0, 0, 1]), 0, 3))
        sla = float(getattr(cat, "sla_hours", 72) or 72)
        dept = getattr(cat, "default_department", None)
        dept = dept if dept in self.departments else None
        dept_name = str(getattr(self.departments.get(dept), "name_zh", dept or ""))
        # Who handles it: the grid leader or the micro-grid member, or the category's
        # department, either directly or after the community blows the whistle (社区吹哨、
        # 部门报到). A community-level department is the community itself: no whistle.
        external = dept is not None and getattr(self.departments[dept], "level", "") != "community"
        to_department = external and rng.random() < 0.35
        escalate = external and not to_department and rng.random() < 0.3
        handler: str | None = None if to_department else (leader if rng.random() < 0.6 else member)

        # The steps taken, then their durations; the hazard is placed in time backwards from
        # now so every timestamp lies within HISTORY_DAYS and none is in the future.
        steps: list[str] = ["report"]
        if status == "rejected":
            steps.append("reject")
        elif status != "reported":
            steps.append("accept")
            idx = _PATH.index(status)
            if idx >= _PATH.index("dispatched"):
                steps.append("dispatch")
                if escalate:
                    steps.append("escalate")
            if idx >= _PATH.index("in_progress"):
                steps.append("start")
            if idx >= _PATH.index("resolved"):
                steps.append("resolve")
                if rework:
                    # Rework: a failed verification sends the case back to dispatched,
                    # so the handler starts and resolves it again.
                    steps += ["fail_verification", "start", "resolve"]
            if idx >= _PATH.index("verified"):
                steps.append("verify")
            if idx >= _PATH.index("closed"):
                steps.append("close")
        hours = {
            "accept": (0.1, 6),
            "reject": (0.2, 8),
            "dispatch": (0.1, 4),
            "escalate": (0.5, 12),
            "start": (0.5, 24),
            "resolve": (1, max(2.0, sla * 0.9)),
            "fail_verification": (2, 24),
            "verify": (1, 24),
            "close": (0.2, 12),
        }
        gaps = [0.0] + [float(rng.uniform(*hours[s])) for s in steps[1:]]
        offsets = np.cumsum(gaps)  # hours after the report
        total = float(offsets[-1])
        horizon = HISTORY_DAYS * 24.0 - total - 1
        if status in ("dispatched", "in_progress"):
            since_dispatch = float(offsets[-1] - offsets[steps.index("dispatch")])
            if rng.random() < 0.4:
                # Overdue: the deadline (dispatch + SLA) has passed.
                idle = float(rng.uniform(sla * 1.1, sla * 3 + 48)) - since_dispatch
            else:
                idle = float(rng.uniform(0, max(0.2, sla * 0.8 - since_dispatch)))
            idle = max(0.1, idle)
        elif status in ("reported", "accepted"):
            idle = float(rng.uniform(0.1, 72))
        else:
            idle = float(rng.uniform(1, max(2.0, horizon)))
        idle = min(idle, max(0.1, horizon))
        reported_at = self.now - timedelta(hours=total + idle)
        reported_at = reported_at.replace(microsecond=0)
        times = [reported_at + timedelta(seconds=round(o * 3600)) for o in offsets]

        place = m.name if comm.name.startswith("演示") else f"{comm.name}{m.name}"
        templates = _templates(cat)
        ftype = self.type_names.get(fac.type_code, "设施") if fac else "设施"
        description = templates[int(rng.integers(len(templates)))].format(p=place, f=ftype)

        self.serial += 1
        h = DemoHazard(
            public_code=f"{HAZARD_PREFIX}{self.serial:05d}",
            category_code=str(cat.code),
            description=description,
            severity=_SEVERITIES[sev_i],
            status=status,
            source=source,
            lon=lon,
            lat=lat,
            facility_code=fac.code if fac else None,
            reporter_name=reporter_name,
            reporter_phone=reporter_phone,
            reported_at=reported_at,
            address=f"郑州市二七区{street.name}{comm.name}{m.name}",
            location_accuracy_m={"patrol": 5.0, "camera": 3.0, "resident": 10.0}.get(source, 30.0),
            micro_grid_code=m.code,
        )
        # The community director accepts and closes, its party secretary dispatches, the
        # handler starts and resolves, and the grid leader verifies (the director when the
        # grid leader handled it: nobody verifies their own work).
        verifier = director if handler == leader else leader
        status_now: str | None = None
        for step, at in zip(steps, times, strict=True):
            actor: str | None = None
            actor_name: str | None = None
            note = _NOTES[step]
            if step == "report":
                actor = reporter_key
                actor_name = reporter_name
                to = "reported"
                note = _SOURCE_NOTES[source]
            elif step == "accept":
                actor, to = director, "accepted"
                h.accepted_at = at
            elif step == "reject":
                actor, to = director, "rejected"
            elif step == "dispatch":
                actor, to = secretary, "dispatched"
                h.dispatched_at = at
                h.due_at = at + timedelta(hours=sla)
                if to_department:
                    h.assignee_department_code = dept
                    note = f"派遣至{dept_name}"
                else:
                    assert handler is not None
                    h.assignee_person_key = handler
                    note = f"派遣至{key[handler].name}"
            elif step == "escalate":
                actor, to = handler, status_now
                note = note.format(d=dept_name)
                handler = None
                h.assignee_person_key = None
                h.assignee_department_code = dept
            elif step == "start":
                actor, to = handler, "in_progress"
                if handler is None:
                    actor_name = dept_name
                    note = f"{dept_name}已报到，到场处置"
            elif step == "resolve":
                actor, to = handler, "resolved"
                h.resolved_at = at
                if handler is None:
                    actor_name = dept_name
            elif step == "fail_verification":
                actor, to = verifier, "dispatched"
                h.resolved_at = None
            elif step == "verify":
                actor, to = verifier, "verified"
                h.verified_at = at
            else:  # close
                actor, to = director, "closed"
                h.closed_at = at
            if actor is not None and actor_name is None:
                actor_name = key[actor].name
            h.events.append(DemoEvent(step, status_now, to, at, actor, note, actor_name))
            status_now = to
        assert status_now == status, (status_now, status)
        return h


def _hazards(
    catalog: Any,
    micros: list[_Node],
    facilities: list[tuple[DemoFacility, _Node]],
    people: _People,
    story: _Node | None,
    now: datetime,
    rng: np.random.Generator,
) -> list[DemoHazard]:
    """A few hundred hazards in every status; the seed story's sewer blockages included."""
    maker = _HazardMaker(catalog, micros, facilities, people, now, rng)
    cats = maker.cats
    if not cats:
        return []
    weights = np.asarray([_weight(c) for c in cats], dtype=float)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(cats), 1 / len(cats))
    statuses = [s for s, n in _STATUS_WEIGHTS.items() for _ in range(n)]
    statuses = [statuses[i] for i in rng.permutation(len(statuses))]
    out: list[DemoHazard] = []
    rework_done = False
    for status in statuses:
        cat = cats[int(rng.choice(len(cats), p=weights))]
        # At least one case failed verification and was reworked (the first verified/closed
        # one), plus a few more at random.
        eligible = status in ("verified", "closed")
        rework = eligible and (not rework_done or rng.random() < 0.03)
        rework_done = rework_done or rework
        out.append(maker.make(status, cat, rework=rework))
    # The seed story: sewer blockages in 五里堡南社区, the worst at 51号院.
    sewer = [c for c in cats if _is_sewer(c)]
    if story is not None and sewer:
        community = story.parent.parent
        story_micros = [m for g in community.children for m in g.children]
        for i, status in enumerate(("closed", "closed", "in_progress", "dispatched", "reported")):
            micro = story if i in (0, 2) else story_micros[int(rng.integers(len(story_micros)))]
            out.append(maker.make(status, sewer[0], micro=micro))
    return out


# ---- the entry point ----------------------------------------------------------------------
def generate(boundary: MultiPolygon, catalog: Any, seed: int, now: datetime) -> DemoData:
    """The demo district for ``boundary``: deterministic for ``seed``, times relative to ``now``."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now = now.replace(microsecond=0)
    rng = np.random.default_rng(seed)
    boundary = _as_multipolygon(shapely.set_precision(boundary, GRID_SIZE))

    streets = _build_tree(boundary, rng)
    _make_exact(boundary, streets)
    _micro_names_and_attributes(streets, rng)
    story = _place_story(streets)

    # Level by level (all streets, then all communities, ...): the order of insertion.
    levels = [streets]
    while levels[-1]:
        levels.append([child for node in levels[-1] for child in node.children])
    nodes = [node for level in levels for node in level]
    assert all(n.geom is not None for n in nodes)
    grids = [
        DemoGrid(
            code=n.code,
            name=n.name,
            level=n.level,
            parent_code=n.parent.code if n.parent else None,
            geom=n.geom,
            attributes=n.attributes,
        )
        for n in nodes
    ]
    micros = [n for n in nodes if n.level == "micro_grid"]
    grids.extend(_special_grids(streets, rng))

    people = _People(rng)
    assignments = _staff(grids, people)
    facilities = _facilities(micros, catalog, rng)
    hazards = _hazards(catalog, micros, facilities, people, story, now, rng)
    care = getattr(catalog, "care", None)
    frequencies = {c.code: c.visit_every_days for c in care.categories} if care else {}
    fieldwork = generate_fieldwork(
        [n for n in nodes if n.level == "grid"], people, frequencies, now, seed
    )
    return DemoData(
        seed=seed,
        generated_at=now,
        valid_from=(now - timedelta(days=365)).replace(hour=0, minute=0, second=0),
        grids=grids,
        people=people.people,
        assignments=assignments,
        facilities=[f for f, _ in facilities],
        hazards=hazards,
        fieldwork=fieldwork,
    )


def iter_levels(data: DemoData) -> Iterable[tuple[str, list[DemoGrid]]]:
    """The grids by level, parents before children (the order they must be inserted in)."""
    for level in ("street", "community", "grid", "micro_grid", "special"):
        yield level, [g for g in data.grids if g.level == level]
