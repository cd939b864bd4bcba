"""The demo territory: which streets exist and how big they are, the tree of grids cut
from the boundary (made exact on a 1 cm grid), their names and attributes, the seed story's
micro-grid and the special grids (专属网格)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import MultiPolygon, Point, Polygon

from gis_service.demo.records import DemoGrid
from gis_service.demo.shapes import (
    M_PER_DEG_LAT,
    M_PER_DEG_LON,
    allocate,
    as_multipolygon,
    metres_to_deg,
    reading_order,
    sample_points,
    tessellate,
)

DIVISION_CODE = "410103"  # 二七区, Zhengzhou (GB/T 2260)
GRID_SIZE = 1e-7  # degrees, ~1 cm: the precision every grid vertex is snapped to


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
_SPECIAL_KINDS = (  # (unit type, name suffix, weight)
    ("school", "中学", 0.2),
    ("school", "小学", 0.25),
    ("hospital", "医院", 0.1),
    ("company", "有限公司", 0.35),
    ("industrial_park", "产业园", 0.1),
)
_COMPANY_WORDS = "宏远华信恒达天成瑞丰中原金水博创嘉和启明同兴"


def cn_number(n: int) -> str:
    """1 → 一, 12 → 十二, 23 → 二十三 (enough for ordinal names up to 99)."""
    if n < 10:
        return _CN_DIGITS[n]
    tens, ones = divmod(n, 10)
    head = "" if tens == 1 else _CN_DIGITS[tens]
    return head + "十" + (_CN_DIGITS[ones] if ones else "")


# ---- the node tree built while cutting ----------------------------------------------------
@dataclass
class Node:
    level: str
    code: str
    name: str
    parent: Node | None
    approx: Any
    attributes: dict[str, Any] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    geom: MultiPolygon | None = None
    street: _StreetPlan | None = None


def build_tree(boundary: MultiPolygon, rng: np.random.Generator) -> list[Node]:
    """Streets → communities → grids → micro-grids, cut approximately, codes and names set."""
    streets: list[Node] = []
    cells = tessellate(boundary, len(_STREETS), rng, anchors=[s.anchor for s in _STREETS])
    community_serial = 0  # synthetic community names run across the district: 演示社区01…
    for si, (plan, cell) in enumerate(zip(_STREETS, cells, strict=True)):
        street = Node("street", f"{DIVISION_CODE}{si + 1:03d}", plan.name, None, cell)
        street.street = plan
        streets.append(street)
        n_comm = plan.communities or int(rng.integers(4, 9))
        comm_cells = tessellate(cell, n_comm, rng)
        comm_cells = [comm_cells[i] for i in reading_order(comm_cells)]
        # Real community names go to randomly chosen slots, the rest are numbered.
        named_slots = rng.choice(n_comm, size=len(plan.named_communities), replace=False)
        names: dict[int, str] = dict(zip(named_slots.tolist(), plan.named_communities, strict=True))
        areas = [c.area for c in comm_cells]
        if plan.grids is not None:
            grid_counts = allocate(plan.grids, areas, 3)
        else:
            grid_counts = [int(rng.integers(5, 10)) for _ in comm_cells]
        for ci, (ccell, n_grid) in enumerate(zip(comm_cells, grid_counts, strict=True)):
            if ci in names:
                cname = names[ci]
            else:
                community_serial += 1
                cname = f"演示社区{community_serial:02d}"
            comm = Node("community", f"{street.code}{ci + 1:03d}", cname, street, ccell)
            street.children.append(comm)
            grid_cells = tessellate(ccell, n_grid, rng)
            comm.children = [
                Node("grid", f"{comm.code}{gi + 1:03d}", f"第{gi + 1}网格", comm, grid_cells[k])
                for gi, k in enumerate(reading_order(grid_cells))
            ]
        grids = [g for c in street.children for g in c.children]
        if plan.micro_grids is not None:
            micro_counts = allocate(plan.micro_grids, [g.approx.area for g in grids], 2)
        else:
            micro_counts = [int(rng.integers(3, 8)) for _ in grids]
        for grid, n_micro in zip(grids, micro_counts, strict=True):
            micro_cells = tessellate(grid.approx, n_micro, rng, iterations=2)
            grid.children = [
                Node("micro_grid", f"{grid.code}{mi + 1:03d}", "", grid, micro_cells[k])
                for mi, k in enumerate(reading_order(micro_cells))
            ]
    return streets


def make_exact(boundary: MultiPolygon, streets: list[Node]) -> None:
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
            return as_multipolygon(faces[face_ids[0]])
        return as_multipolygon(shapely.coverage_union_all(faces[face_ids]))

    index = {id(m): i for i, m in enumerate(micros)}

    def faces_of(node: Node) -> list[int]:
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
def micro_names_and_attributes(streets: list[Node], rng: np.random.Generator) -> None:
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


def _sum_attributes(node: Node) -> None:
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


def place_story(streets: list[Node]) -> Node | None:
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


def special_grids(streets: list[Node], rng: np.random.Generator) -> list[DemoGrid]:
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
                margin = metres_to_deg(math.hypot(half_w, half_h) + 5)
                ((cx, cy),) = sample_points(comm.geom, 1, rng)
                if shapely.distance(comm.geom.boundary, Point(cx, cy)) <= margin:
                    continue
                rect = shapely.box(
                    -half_w / M_PER_DEG_LON,
                    -half_h / M_PER_DEG_LAT,
                    half_w / M_PER_DEG_LON,
                    half_h / M_PER_DEG_LAT,
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
                name = f"演示第{cn_number(n)}{suffix}"
            elif unit_type == "hospital":
                name = f"演示第{cn_number(n)}人民医院"
            else:
                pairs = len(_COMPANY_WORDS) // 2
                word = _COMPANY_WORDS[(n - 1) % pairs * 2 :][:2]
                lap = "" if n <= pairs else cn_number((n - 1) // pairs + 1)
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
