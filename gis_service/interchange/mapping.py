"""Which column of a file holds which field, from options, a small YAML file or defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LAYERS = ("grids", "facilities", "people", "care")

# Fields each layer understands; anything else in the file goes into ``attributes``.
FIELDS: dict[str, tuple[str, ...]] = {
    "grids": ("code", "name", "level", "parent", "leader_name", "leader_phone"),
    "facilities": ("code", "name", "type", "status"),
    "people": ("name", "phone", "mobile", "grid", "role", "primary"),
    # A community's ledger of people under care (七必访台账): one row per person.
    "care": (
        "household",
        "address",
        "grid",
        "household_phone",
        "name",
        "gender",
        "birth_year",
        "phone",
        "categories",
        "note",
    ),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "grids": ("code", "name", "level"),
    "facilities": ("code", "type"),
    "people": ("name", "grid"),
    "care": ("household", "address", "grid", "name", "categories"),
}

# Column names recognised without a mapping (compared case-insensitively), English first,
# then the Chinese headers street offices use, then the 10-character Shapefile spellings.
CANDIDATES: dict[str, dict[str, tuple[str, ...]]] = {
    "grids": {
        "code": ("code", "grid_code", "编码", "网格编码", "网格代码", "编号", "代码"),
        "name": ("name", "grid_name", "名称", "网格名称", "网格名"),
        "level": ("level", "层级", "级别", "网格层级", "网格级别"),
        "parent": ("parent", "parent_code", "parent_cod", "上级编码", "上级网格编码", "父级编码"),
        "leader_name": ("leader_name", "leader", "leader_nam", "网格长", "负责人", "负责人姓名"),
        "leader_phone": (
            "leader_phone",
            "leader_tel",
            "leader_pho",
            "负责人电话",
            "联系电话",
            "电话",
        ),
    },
    "facilities": {
        "code": ("code", "facility_code", "编码", "部件编码", "编号", "component_id"),
        "name": ("name", "名称", "部件名称"),
        "type": ("type", "type_code", "facility_type", "类型", "部件类型", "小类"),
        "status": ("status", "状态"),
    },
    "people": {
        "name": ("name", "person", "姓名", "名字"),
        "phone": ("phone", "work_phone", "电话", "办公电话", "联系电话"),
        "mobile": ("mobile", "mobile_phone", "手机", "手机号"),
        "grid": ("grid", "grid_code", "网格编码", "网格", "所属网格"),
        "role": ("role", "角色", "职务"),
        "primary": ("primary", "is_primary", "主责", "负责人"),
    },
    "care": {
        "household": ("household", "household_code", "户编号", "户号", "家庭编号", "户编码"),
        "address": ("address", "地址", "住址", "家庭住址", "居住地址"),
        "grid": ("grid", "grid_code", "网格编码", "微网格编码", "所属网格", "网格"),
        "household_phone": ("household_phone", "家庭电话", "户电话", "座机"),
        "name": ("name", "person", "姓名"),
        "gender": ("gender", "sex", "性别"),
        "birth_year": ("birth_year", "出生年份", "出生年"),
        "phone": ("phone", "mobile", "联系电话", "电话", "手机", "手机号"),
        "categories": ("categories", "category", "人员类别", "对象类别", "走访类别", "类别"),
        "note": ("note", "备注", "情况说明"),
    },
}

# Columns an export writes that are derived, never data: ignored on import.
DERIVED = frozenset(
    {
        "id",
        "fid",
        "ogc_fid",
        "objectid",
        "area_m2",
        "valid_from",
        "valid_to",
        "level_name",
        "path",
        "type_name",
        # the standard class a type carries (GB/T 30428.2), written by exports
        "class_code",
        "class_major",
        "class_source",
        "class_maj",
        "class_src",
        "lon",
        "lat",
        "wkt",
    }
)

LEVEL_ALIASES: dict[str, str] = {
    "street": "street",
    "1": "street",
    "街道": "street",
    "一级网格": "street",
    "community": "community",
    "2": "community",
    "社区": "community",
    "二级网格": "community",
    "grid": "grid",
    "3": "grid",
    "网格": "grid",
    "三级网格": "grid",
    "micro_grid": "micro_grid",
    "micro-grid": "micro_grid",
    "microgrid": "micro_grid",
    "4": "micro_grid",
    "微网格": "micro_grid",
    "四级网格": "micro_grid",
    "special": "special",
    "5": "special",
    "专属网格": "special",
}

TRUE_WORDS = frozenset({"true", "t", "1", "yes", "y", "是", "主责", "√"})
FALSE_WORDS = frozenset({"false", "f", "0", "no", "n", "否", ""})


class MappingError(ValueError):
    """A mapping that names an unknown field or a column the file lacks."""


@dataclass
class FieldMapping:
    """Field → column, plus constant defaults for fields the file has no column for."""

    layer: str
    columns: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    crs: str | None = None

    def resolve(self, available: list[str]) -> dict[str, str]:
        """Field → actual column of this file: explicit names first, then known headers."""
        by_lower = {c.lower(): c for c in available}
        out: dict[str, str] = {}
        for name, column in self.columns.items():
            if column not in available and column.lower() not in by_lower:
                raise MappingError(
                    f"the mapping says field '{name}' is in column '{column}', but the file has "
                    f"no such column; its columns are: {', '.join(available) or 'none'}"
                )
            out[name] = column if column in available else by_lower[column.lower()]
        for name in FIELDS[self.layer]:
            if name in out or name in self.defaults:
                continue
            for cand in CANDIDATES[self.layer][name]:
                if cand.lower() in by_lower:
                    out[name] = by_lower[cand.lower()]
                    break
        return out


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MappingError(f"{what} must look like KEY=VALUE, got '{item}'")
        out[key.strip()] = value.strip()
    return out


class _MappingLoader(yaml.SafeLoader):
    """YAML for a field mapping: no aliases (nine levels of nine aliases expand to 387
    million values) and at most MAX_YAML_DEPTH levels (deeper ones exhaust the stack)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted in a mapping", mark
            )
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_YAML_DEPTH} levels",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


MAX_YAML_DEPTH = 8


def _scalar(key: object, value: object) -> str:
    if isinstance(value, dict | list):
        raise MappingError(f"'{key}' must name one column or value, not a {type(value).__name__}")
    return str(value)


def build_mapping(
    layer: str,
    fields: list[str] | None = None,
    defaults: list[str] | None = None,
    yaml_text: str | None = None,
) -> FieldMapping:
    """A mapping from ``--field KEY=COLUMN``, ``--default KEY=VALUE`` and an optional YAML.

    The YAML is ``{code: COLUMN, …, defaults: {level: micro_grid}, crs: EPSG:4547}``; options
    given on the command line win over the YAML.
    """
    if layer not in LAYERS:
        raise MappingError(f"unknown layer '{layer}'; use one of {', '.join(LAYERS)}")
    columns: dict[str, str] = {}
    consts: dict[str, str] = {}
    crs = None
    if yaml_text:
        try:
            doc: Any = yaml.load(yaml_text, Loader=_MappingLoader) or {}
        except yaml.YAMLError as exc:
            raise MappingError(f"the mapping YAML cannot be read: {exc}") from exc
        if not isinstance(doc, dict):
            raise MappingError("the mapping YAML must be a mapping of field: column")
        doc = dict(doc)
        if isinstance(doc.get("fields"), dict):
            doc.update(doc.pop("fields"))
        given = doc.pop("defaults", None) or {}
        if not isinstance(given, dict):
            raise MappingError("'defaults' in the mapping YAML must be a mapping of field: value")
        consts.update({str(k): _scalar(k, v) for k, v in given.items()})
        crs = doc.pop("crs", None)
        if crs is not None:
            crs = _scalar("crs", crs)
        doc.pop("layer", None)
        columns.update({str(k): _scalar(k, v) for k, v in doc.items() if v is not None})
    columns.update(_pairs(fields, "--field"))
    consts.update(_pairs(defaults, "--default"))
    for name in (*columns, *consts):
        if name not in FIELDS[layer]:
            raise MappingError(
                f"'{name}' is not a field of {layer}; the fields are: {', '.join(FIELDS[layer])}"
            )
    return FieldMapping(layer, columns, consts, str(crs) if crs else None)


def load_mapping_file(path: Path | None) -> str | None:
    """The text of a mapping YAML file, or None."""
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"cannot read the mapping file {path}: {exc}") from exc
