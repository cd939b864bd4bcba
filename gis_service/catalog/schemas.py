"""Pydantic models of the YAML layer catalog (facility types, hazard categories, departments)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

# Codes end up in URLs, SQL CHECK constraints (^[a-z][a-z0-9_]{1,63}$) and file names.
CODE_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"
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

    @property
    def major_class_code(self) -> str:
        """The two-digit 大类."""
        return self.class_code[:2]


class HazardDemo(_Strict):
    """How often the demo generator picks a category."""

    weight: float = Field(default=1.0, ge=0)


class HazardCategoryDef(_Strict):
    """A hazard (事件) category: routing, deadline and duplicate rules, one YAML file."""

    code: Code
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    report_class: ReportClass
    default_department: Code
    default_severity: Severity = "medium"
    sla_hours: int = Field(gt=0, le=24 * 365)
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


class DepartmentDef(_Strict):
    """A department hazards can be dispatched to (one entry of layers/departments.yaml)."""

    code: Code
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    level: DepartmentLevel | None = None
    description_zh: str | None = None


class Catalog(_Strict):
    """The whole catalog, keyed by code."""

    facility_types: dict[str, FacilityTypeDef]
    hazard_categories: dict[str, HazardCategoryDef]
    departments: dict[str, DepartmentDef]
