"""The collection registry: which feature collections /ogc serves and what their properties are.

Grids give one collection per level (current rows only), facilities one per facility type of
the layer catalog, and open hazards one with public fields only. Each property is a column
expression written here or in ``sql`` (never text from a request or from the data), with the
JSON type clients and CQL2 see.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gis_service.catalog.schemas import Catalog
from gis_service.facilities.states import FACILITY_STATUSES
from gis_service.ogc import sql
from gis_service.ogc.cql2 import BOOLEAN, DATETIME, INTEGER, NUMBER, STRING

# Property names end up in URLs, CQL2 filters and JSON; data-derived names must look like this.
PROPERTY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
# Query parameters the items operation accepts; anything else is a 400 (OGC 17-069r4
# /rec/core/query-param-unknown, a permission the spec encourages and tipg ignores).
ITEMS_PARAMS = frozenset(
    {
        "f",
        "limit",
        "offset",
        "cursor",
        "bbox",
        "bbox-crs",
        "crs",
        "datetime",
        "properties",
        "filter",
        "filter-lang",
        "filter-crs",
    }
)
# Names a queryable may not take: the items parameters, and the members of every feature.
RESERVED = ITEMS_PARAMS | {"geometry", "id"}
MAX_ATTRIBUTE_PROPERTIES = 30

# (level code, Chinese title, English description) as in migration 0001's grid_levels.
GRID_LEVELS: tuple[tuple[str, str, str], ...] = (
    ("street", "街道（一级网格）", "Streets (街道, level-1 grids)"),
    ("community", "社区（二级网格）", "Communities (社区, level-2 grids)"),
    ("grid", "网格（三级网格）", "Grids (网格, level-3 grids, each with a grid leader 网格长)"),
    (
        "micro_grid",
        "微网格（四级网格）",
        "Micro-grids (微网格, level 4: usually one building or compound)",
    ),
    (
        "special",
        "专属网格",
        "Special grids (专属网格: schools, hospitals, companies; an overlay on the hierarchy)",
    ),
)
OPEN_HAZARD_STATUSES = (
    "reported",
    "accepted",
    "dispatched",
    "in_progress",
    "resolved",
    "verified",
)
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class Prop:
    """One feature property: name, SQL expression over the source row, JSON type and title."""

    name: str
    sql: str
    type: str
    title: str
    description: str | None = None
    enum: tuple[str, ...] | None = None
    params: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Temporal:
    """The columns that give a feature's time span (OGC 17-069r4 /req/core/fc-time-response)."""

    start: str
    end: str | None
    name: str


@dataclass(frozen=True)
class CollectionDef:
    """A feature collection: metadata, the SQL source of its rows and its properties."""

    id: str
    title: str
    description: str
    kind: str  # grids | facilities | hazards
    id_sql: str
    geom_sql: str
    from_sql: str
    props: tuple[Prop, ...]
    geometry_format: str
    temporal: Temporal | None = None
    keywords: tuple[str, ...] = ()
    base_params: tuple[tuple[str, Any], ...] = ()
    _by_name: dict[str, Prop] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Index the properties by name."""
        self._by_name.update({p.name: p for p in self.props})

    def prop(self, name: str) -> Prop | None:
        """The property called ``name``, or None."""
        return self._by_name.get(name)

    @property
    def params(self) -> dict[str, Any]:
        """Bound parameters the source SQL needs (level or type code, attribute keys)."""
        out = dict(self.base_params)
        for p in self.props:
            out.update(p.params)
        return out


def _attr_prop(
    name: str,
    column: str,
    path: list[str],
    kind: str,
    title: str,
    index: int,
    enum: Iterable[str] = (),
) -> Prop:
    """A property read from a jsonb attributes column at ``path`` (keys are bound, not inlined)."""
    param = f"attr_{index}"
    template = {
        STRING: sql.ATTR_STRING,
        INTEGER: sql.ATTR_NUMBER,
        NUMBER: sql.ATTR_NUMBER,
        BOOLEAN: sql.ATTR_BOOLEAN,
    }[kind]
    return Prop(
        name=name,
        sql=template.format(col=column, path=f":{param}"),
        type=kind,
        title=title,
        enum=tuple(enum) or None,
        params=((param, list(path)),),
    )


def grid_collections(attributes: dict[str, list[tuple[list[str], str]]]) -> list[CollectionDef]:
    """One collection per grid level; ``attributes`` maps a level to its (path, type) pairs."""
    out = []
    for level, title, description in GRID_LEVELS:
        props = [
            Prop("code", "g.code", STRING, "网格编码 Grid code"),
            Prop("name", "g.name", STRING, "名称 Name"),
            Prop("level", "g.level", STRING, "层级 Level"),
            Prop("level_name", "l.name_zh", STRING, "层级名称 Level name"),
            Prop("parent_id", "g.parent_id", INTEGER, "上级网格 ID Parent grid id"),
            Prop("parent_code", sql.GRID_PARENT_CODE, STRING, "上级网格编码 Parent grid code"),
            Prop("valid_from", "g.valid_from", DATETIME, "生效时间 Valid from"),
            Prop("leader_name", sql.GRID_LEADER_NAME, STRING, "负责人 Responsible person"),
            Prop(
                "leader_phone",
                sql.GRID_LEADER_PHONE,
                STRING,
                "负责人工作电话 Work phone",
                description="The public work phone of the grid's responsible person.",
            ),
        ]
        taken = {p.name for p in props} | RESERVED
        for path, kind in attributes.get(level, [])[:MAX_ATTRIBUTE_PROPERTIES]:
            name = "_".join(path)
            if name in taken or not PROPERTY_NAME.match(name):
                continue
            taken.add(name)
            label = f"属性 {'.'.join(path)}"
            props.append(_attr_prop(name, "g.attributes", path, kind, label, len(props)))
        out.append(
            CollectionDef(
                id=f"grids_{level}",
                title=title,
                description=f"{description}; current boundaries only, with the responsible "
                "person's name and work phone and the grid's attributes flattened "
                "(nested keys joined with '_').",
                kind="grids",
                id_sql="g.id",
                geom_sql="g.geom",
                from_sql=sql.GRID_FROM,
                props=tuple(props),
                geometry_format="geometry-multipolygon",
                temporal=Temporal("g.valid_from", "g.valid_to", "valid_from"),
                keywords=("网格", "grid", level),
                base_params=(("src_level", level),),
            )
        )
    return out


def facility_collections(catalog: Catalog) -> list[CollectionDef]:
    """One collection per facility type of the catalog (部件 layers)."""
    out = []
    for code, ft in catalog.facility_types.items():
        props = [
            Prop("code", "f.code", STRING, "部件编码 Facility code"),
            Prop("type_code", "f.type_code", STRING, "部件类型 Facility type"),
            Prop("name", "f.name", STRING, "名称 Name"),
            Prop("status", "f.status", STRING, "状态 Status", enum=FACILITY_STATUSES),
        ]
        taken = {p.name for p in props} | RESERVED
        for attr, spec in list(ft.attributes.items())[:MAX_ATTRIBUTE_PROPERTIES]:
            name = attr if attr not in taken else f"attr_{attr}"
            if name in taken or not PROPERTY_NAME.match(name):
                continue
            taken.add(name)
            kind = {"integer": INTEGER, "number": NUMBER, "boolean": BOOLEAN}.get(spec.type, STRING)
            title = f"{spec.label_zh} {spec.label_en}"
            props.append(
                _attr_prop(name, "f.attributes", [attr], kind, title, len(props), spec.values or ())
            )
        geometry = {"point": "geometry-point", "line": "geometry-linestring-or-multilinestring"}[
            ft.geometry
        ]
        out.append(
            CollectionDef(
                id=f"facilities_{code}",
                title=f"{ft.name_zh}（部件）",
                description=f"{ft.name_en} facilities (部件 class {ft.class_code}, "
                f"{ft.major_class_en or ft.major_class_zh}) with their status and attributes.",
                kind="facilities",
                id_sql="f.id",
                geom_sql="f.geom",
                from_sql=sql.FACILITY_FROM,
                props=tuple(props),
                geometry_format=geometry,
                keywords=("部件", "facility", code),
                base_params=(("src_type", code),),
            )
        )
    return out


def hazard_collection(catalog: Catalog) -> CollectionDef:
    """Open hazards with public fields only: never the reporter's name or phone."""
    props = (
        Prop("public_code", "h.public_code", STRING, "公开编号 Public code"),
        Prop(
            "category",
            "h.category_code",
            STRING,
            "类别 Category",
            enum=tuple(catalog.hazard_categories) or None,
        ),
        Prop("category_name", "c.name_zh", STRING, "类别名称 Category name"),
        Prop("severity", "h.severity", STRING, "严重程度 Severity", enum=SEVERITIES),
        Prop("status", "h.status", STRING, "状态 Status", enum=OPEN_HAZARD_STATUSES),
        Prop("reported_at", "h.reported_at", DATETIME, "上报时间 Reported at"),
        Prop("due_at", "h.due_at", DATETIME, "办结时限 Due at"),
        Prop("overdue", sql.HAZARD_OVERDUE, BOOLEAN, "是否超期 Overdue"),
        Prop("grid_id", "h.grid_id", INTEGER, "所属网格 ID Grid id"),
    )
    return CollectionDef(
        id="hazards_open",
        title="未结案隐患",
        description="Open hazards (隐患/事件 not closed or rejected): category, severity, "
        "status, deadlines and grid. Public fields only; the reporter's identity and contact "
        "details are never published.",
        kind="hazards",
        id_sql="h.id",
        geom_sql="h.geom",
        from_sql=sql.HAZARD_FROM,
        props=props,
        geometry_format="geometry-point",
        temporal=Temporal("h.reported_at", "h.reported_at", "reported_at"),
        keywords=("隐患", "hazard"),
    )


def build_registry(
    catalog: Catalog, grid_attributes: dict[str, list[tuple[list[str], str]]]
) -> dict[str, CollectionDef]:
    """Every collection by id, in the order /collections lists them."""
    colls = [
        *grid_collections(grid_attributes),
        *facility_collections(catalog),
        hazard_collection(catalog),
    ]
    return {c.id: c for c in colls}


def attribute_type(types: set[str], integral: bool) -> str | None:
    """The property type of a discovered jsonb attribute, or None to skip it."""
    types = types - {"null"}
    if not types:
        return STRING
    if types & {"object", "array"}:
        return None
    if types == {"number"}:
        return INTEGER if integral else NUMBER
    if types == {"boolean"}:
        return BOOLEAN
    return STRING
