"""Pydantic models of the YAML layer catalog (facility types, hazard categories, departments)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from gis_service.worktime.schemas import CalendarDef, TimeLimits

# Codes end up in URLs, SQL CHECK constraints (^[a-z][a-z0-9_]{1,63}$) and file names.
CODE_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"
# Marks a request field or parameter whose schema the OpenAPI document takes, at app start,
# from the declaration the server validates with (gis_service.http.routes): "bbox", "lonlat",
# "code:<list>" / "code-list:<list>" for the codes of one of this catalogue's lists.
X_DECLARED = "x-declared"
ATTRIBUTE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
CLASS_CODE_PATTERN = r"^[0-9]{4}$"
COLOR_PATTERN = r"^#[0-9A-Fa-f]{6}$"
ICON_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
PHONE_PATTERN = r"^[0-9+() -]{3,32}$"

Code = Annotated[str, Field(pattern=CODE_PATTERN)]
AttributeType = Literal["string", "integer", "number", "boolean", "enum"]
GeometryKind = Literal["point", "line"]
Severity = Literal["low", "medium", "high", "critical"]
# 四必报: the four things a grid member must always report.
ReportClass = Literal["safety_hazard", "instability", "resident_request", "illegal_clue"]
DepartmentLevel = Literal["city", "district", "street", "community", "enterprise"]
# The grid levels of migration 0001 (grid_levels).
GridLevel = Literal["street", "community", "grid", "micro_grid", "special"]

REPORT_CLASS_NAMES_ZH: dict[str, str] = {
    "safety_hazard": "安全隐患",
    "instability": "不稳定因素",
    "resident_request": "民意诉求",
    "illegal_clue": "违法线索",
}
SEVERITY_NAMES_ZH: dict[str, str] = {
    "low": "轻微",
    "medium": "一般",
    "high": "严重",
    "critical": "紧急",
}
LOCAL_CLASS_PREFIX = "9"
# Where a class code comes from: the standard's published tables (大类 names of GB/T 30428.2),
# inferred from secondary copies (a 小类 number we could not read in the normative text), or
# a local extension class of ours (9x). layers/README.md explains each.
ClassSource = Literal["standard", "inferred", "local"]
CLASS_SOURCE_NAMES_ZH: dict[str, str] = {
    "standard": "标准",
    "inferred": "推定",
    "local": "本地扩展",
}
# GB/T 30428.2 大类 of components (部件) and events (事件); 9x are our local extensions.
COMPONENT_MAJOR_CLASSES: dict[str, str] = {
    "01": "公用设施",
    "02": "道路交通",
    "03": "市容环境",
    "04": "园林绿化",
    "05": "房屋土地",
    "06": "其他设施",
}
EVENT_MAJOR_CLASSES: dict[str, str] = {
    "01": "市容环境",
    "02": "宣传广告",
    "03": "施工管理",
    "04": "突发事件",
    "05": "街面秩序",
}


class _Strict(BaseModel):
    """Base: unknown fields are errors and YAML scalars are not coerced (0101 is not '0101')."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class AttributeSpec(_Strict):
    """One attribute a facility of a type carries (stored in facilities.attributes)."""

    type: AttributeType
    label_zh: str = Field(min_length=1)
    label_en: str = Field(min_length=1)
    required: bool = False
    # validate_default so that an enum without values is caught even when the key is absent
    values: list[str] | None = Field(default=None, validate_default=True)
    value_labels: dict[str, str] | None = Field(
        default=None, description="Chinese label of each enum value, for forms and legends."
    )
    unit: str | None = Field(default=None, min_length=1)

    @field_validator("values")
    @classmethod
    def _values_match_type(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        kind = info.data.get("type")
        if kind == "enum":
            if not v:
                raise ValueError("an enum attribute needs a non-empty list of values")
            if len(set(v)) != len(v):
                raise ValueError("enum values must be unique")
        elif v is not None and kind is not None:
            raise ValueError(f"values are only allowed for enum attributes, not {kind}")
        return v

    @field_validator("value_labels")
    @classmethod
    def _labels_match_values(
        cls, v: dict[str, str] | None, info: ValidationInfo
    ) -> dict[str, str] | None:
        if v is None:
            return v
        values = info.data.get("values") or []
        unknown = sorted(set(v) - set(values))
        if unknown:
            raise ValueError(f"labels for values not in 'values': {', '.join(unknown)}")
        return v

    @field_validator("unit")
    @classmethod
    def _unit_only_for_numbers(cls, v: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if v is not None and kind not in (None, "integer", "number"):
            raise ValueError(f"a unit only makes sense for integer or number, not {kind}")
        return v


class FacilityDemo(_Strict):
    """How the demo generator places facilities of a type."""

    per_micro_grid: float = Field(default=0.5, ge=0, le=100)


class FacilityTypeDef(_Strict):
    """A facility (部件) type: one layer of the map, one YAML file."""

    code: Code
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    class_code: str = Field(pattern=CLASS_CODE_PATTERN, description="大类(2) + 小类(2).")
    class_note: str | None = Field(default=None, validate_default=True)
    class_source: ClassSource = Field(
        default="inferred", description="standard, inferred (小类 number) or local (9x)."
    )
    major_class_zh: str = Field(min_length=1)
    major_class_en: str | None = None
    geometry: GeometryKind
    icon: str = Field(pattern=ICON_PATTERN, description="Font Awesome 6 solid.")
    color: str = Field(pattern=COLOR_PATTERN)
    attributes: dict[Annotated[str, Field(pattern=ATTRIBUTE_NAME_PATTERN)], AttributeSpec] = Field(
        default_factory=dict
    )
    demo: FacilityDemo = Field(default_factory=FacilityDemo)
    description_zh: str | None = None

    @field_validator("class_note")
    @classmethod
    def _local_class_explained(cls, v: str | None, info: ValidationInfo) -> str | None:
        # A 9xxx class is our own invention; whoever reads a component ID must learn why.
        class_code = info.data.get("class_code")
        if class_code and class_code.startswith(LOCAL_CLASS_PREFIX) and not v:
            raise ValueError(
                f"class {class_code} is a local extension class; add a class_note saying why "
                "the standard has no class for this type"
            )
        return v

    @model_validator(mode="after")
    def _class_matches_source(self) -> FacilityTypeDef:
        local = self.class_code.startswith(LOCAL_CLASS_PREFIX)
        if local != (self.class_source == "local"):
            raise ValueError(
                f"class_code {self.class_code}: 9x classes are local extensions and only they "
                "have class_source: local"
            )
        major = COMPONENT_MAJOR_CLASSES.get(self.major_class_code)
        if not local and major is None:
            raise ValueError(
                f"大类 {self.major_class_code} is not a component 大类 of GB/T 30428.2 "
                f"({', '.join(f'{k} {v}' for k, v in COMPONENT_MAJOR_CLASSES.items())}); "
                "use 9x for a local extension"
            )
        if major is not None and self.major_class_zh != major:
            raise ValueError(f"大类 {self.major_class_code} is called {major} in the standard")
        return self

    @property
    def major_class_code(self) -> str:
        """The two-digit 大类."""
        return self.class_code[:2]


class HazardDemo(_Strict):
    """How often the demo generator picks a category."""

    weight: float = Field(default=1.0, ge=0)


class StandardClass(_Strict):
    """A category's class in GB/T 30428.2: an event (事件) class with its own code, or a
    component (部件) problem, which takes the class of the facility it concerns."""

    kind: Literal["event", "component"]
    code: str | None = Field(default=None, pattern=CLASS_CODE_PATTERN)
    major_zh: str | None = Field(default=None, min_length=1)
    minor_zh: str | None = Field(default=None, min_length=1)
    source: ClassSource

    @model_validator(mode="after")
    def _complete(self) -> StandardClass:
        if self.kind == "component":
            if self.code or self.major_zh or self.minor_zh:
                raise ValueError(
                    "a component problem takes its class from the facility (部件); give no "
                    "code, major_zh or minor_zh"
                )
            return self
        if not (self.code and self.major_zh and self.minor_zh):
            raise ValueError("an event class needs code (大类 + 小类), major_zh and minor_zh")
        local = self.code.startswith(LOCAL_CLASS_PREFIX)
        if local != (self.source == "local"):
            raise ValueError(
                f"code {self.code}: 9x codes are local extensions and only they have source: local"
            )
        major = EVENT_MAJOR_CLASSES.get(self.code[:2])
        if not local and major is None:
            raise ValueError(
                f"大类 {self.code[:2]} is not an event 大类 of GB/T 30428.2 "
                f"({', '.join(f'{k} {v}' for k, v in EVENT_MAJOR_CLASSES.items())}); "
                "use 9x for a local extension"
            )
        if major is not None and self.major_zh != major:
            raise ValueError(f"event 大类 {self.code[:2]} is called {major} in the standard")
        return self


class HazardCategoryDef(_Strict):
    """A hazard (事件) category: routing, deadline and duplicate rules, one YAML file."""

    code: Code
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    report_class: ReportClass
    default_department: Code
    default_severity: Severity = "medium"
    time_limits: TimeLimits
    standard_class: StandardClass
    duplicate_radius_m: float = Field(default=50, gt=0, le=5000)
    snap_radius_m: float = Field(default=30, ge=0, le=1000)
    facility_types: list[Code] = Field(default_factory=list)
    description_zh: str | None = None
    demo: HazardDemo = Field(default_factory=HazardDemo)

    @field_validator("facility_types")
    @classmethod
    def _unique_facility_types(cls, v: list[str]) -> list[str]:
        dupes = sorted({c for c in v if v.count(c) > 1})
        if dupes:
            raise ValueError(f"listed more than once: {', '.join(dupes)}")
        return v

    @model_validator(mode="after")
    def _component_needs_facilities(self) -> HazardCategoryDef:
        if self.standard_class.kind == "component" and not self.facility_types:
            raise ValueError(
                "a component (部件) problem concerns facilities: list their facility_types"
            )
        return self

    @property
    def sla_hours(self) -> int:
        """The 处置 limit in whole hours (for the column older readers take)."""
        lim = self.time_limits.handle
        hours = lim.amount * (8 if lim.unit == "work_days" else 1)
        return max(1, int(-(-hours // 1)))


class DepartmentDef(_Strict):
    """A department hazards can be dispatched to (one entry of layers/departments.yaml)."""

    code: Code
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    level: DepartmentLevel | None = None
    description_zh: str | None = None


class CareCategoryDef(_Strict):
    """A category of people under care (七必访) and how often they are visited."""

    code: Code
    name_zh: str = Field(min_length=1, max_length=50)
    name_en: str = Field(min_length=1)
    visit_every_days: int = Field(ge=1, le=366, description="Most days between two visits.")
    aliases: list[str] = Field(default_factory=list, description="Other names on import.")
    description_zh: str | None = None


class CareNeedDef(_Strict):
    """One entry of the tick list of needs a visit records (需求清单)."""

    code: Code
    name_zh: str = Field(min_length=1, max_length=50)
    name_en: str = Field(min_length=1)


class CareDef(_Strict):
    """layers/care.yaml: the categories under care, in the order forms list them, and needs."""

    categories: list[CareCategoryDef] = Field(min_length=1)
    needs: list[CareNeedDef] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> CareDef:
        for what, items in (("category", self.categories), ("need", self.needs)):
            codes = [i.code for i in items]
            dupes = sorted({c for c in codes if codes.count(c) > 1})
            if dupes:
                raise ValueError(f"{what} codes listed more than once: {', '.join(dupes)}")
        names: dict[str, str] = {}
        for c in self.categories:
            for name in (c.name_zh, *c.aliases):
                other = names.setdefault(name, c.code)
                if other != c.code:
                    raise ValueError(
                        f"the name '{name}' belongs to both '{other}' and '{c.code}'; an "
                        "imported ledger must name one category"
                    )
        return self

    def category(self, code: str) -> CareCategoryDef | None:
        """The category of a code, or None."""
        return next((c for c in self.categories if c.code == code), None)

    def names(self) -> dict[str, str]:
        """Every accepted spelling (code, Chinese name, English name, alias) → code."""
        out: dict[str, str] = {}
        for c in self.categories:
            for name in (c.code, c.name_zh, c.name_en, *c.aliases):
                out[name.strip().lower()] = c.code
        return out


IndicatorKey = Literal[
    "on_time_handle_rate",
    "on_time_close_rate",
    "close_rate",
    "satisfaction_rate",
    "no_rework_rate",
    "accept_rate",
]
PointsRule = Literal["valid_report", "on_time_handle", "overdue_task", "dissatisfied_callback"]


class AssessmentDef(BaseModel):
    """layers/assessment.yaml: weights of the composite (综合指标值), grade thresholds and
    the points rules of grid workers (微网格长积分)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: dict[IndicatorKey, float] = Field(min_length=1)
    grades: dict[str, float] = Field(min_length=1)
    points: dict[PointsRule, int] = Field(default_factory=dict)
    points_roles: list[str] = Field(default_factory=list)

    @field_validator("weights")
    @classmethod
    def _sum_to_one(cls, v: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in v.values()):
            raise ValueError("weights are not negative")
        if abs(sum(v.values()) - 1) > 1e-6:
            raise ValueError(f"weights must add up to 1, not {sum(v.values()):g}")
        return v

    @field_validator("grades")
    @classmethod
    def _descending(cls, v: dict[str, float]) -> dict[str, float]:
        floors = list(v.values())
        if floors != sorted(floors, reverse=True) or len(set(floors)) != len(floors):
            raise ValueError("list grades from the highest threshold down, each different")
        if floors[-1] != 0:
            raise ValueError("the last grade must start at 0, so every score gets one")
        return v


class AssignmentRoleDef(_Strict):
    """A role people hold on grids (one entry of layers/assignment_roles.yaml)."""

    code: Code
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    rank: int = Field(ge=1, le=32767, description="Orders a grid's people (smaller first).")
    leader: bool = Field(default=False, description="Counts as a leader on a grid's notice.")
    levels: list[GridLevel] = Field(min_length=1, description="Grid levels it is held on.")
    primary_for: list[GridLevel] = Field(
        default_factory=list,
        description="Levels whose primary person (reports route to them) holds this role.",
    )
    description_zh: str | None = None

    @field_validator("levels", "primary_for")
    @classmethod
    def _unique_levels(cls, v: list[str]) -> list[str]:
        dupes = sorted({c for c in v if v.count(c) > 1})
        if dupes:
            raise ValueError(f"listed more than once: {', '.join(dupes)}")
        return v

    @field_validator("primary_for")
    @classmethod
    def _held_where_it_leads(cls, v: list[str], info: ValidationInfo) -> list[str]:
        held = info.data.get("levels")
        outside = [lv for lv in v if held is not None and lv not in held]
        if outside:
            raise ValueError(f"leads {', '.join(outside)} but is not held there (add to levels)")
        return v


class ServiceTypeDef(BaseModel):
    """A service residents may order (三单制 需求清单) and the skills that fit it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name_zh: str = Field(min_length=1)
    skills: list[str] = Field(default_factory=list)
    description_zh: str | None = None


class ServicesDef(BaseModel):
    """layers/services.yaml: the services of the 三单制 by code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    types: dict[Code, ServiceTypeDef] = Field(min_length=1)


class Catalog(_Strict):
    """The whole catalog, keyed by code, and the working calendar."""

    facility_types: dict[str, FacilityTypeDef]
    hazard_categories: dict[str, HazardCategoryDef]
    departments: dict[str, DepartmentDef]
    calendar: CalendarDef
    care: CareDef
    assessment: AssessmentDef
    assignment_roles: dict[str, AssignmentRoleDef]
    services: dict[str, ServiceTypeDef]
