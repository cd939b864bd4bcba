"""Load the YAML layer catalog with complete error reports, and sync it into PostGIS."""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Text, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gis_service.layers.schemas import (
    ATTRIBUTE_NAME_PATTERN,
    CLASS_CODE_PATTERN,
    CODE_PATTERN,
    COLOR_PATTERN,
    ICON_PATTERN,
    PHONE_PATTERN,
    Catalog,
    DepartmentDef,
    FacilityTypeDef,
    HazardCategoryDef,
)

FACILITY_TYPES_DIR = "facility_types"
HAZARD_CATEGORIES_DIR = "hazard_categories"
DEPARTMENTS_FILE = "departments.yaml"
YAML_SUFFIXES = (".yaml", ".yml")

# ---- SQL: every statement the sync runs, all with bound parameters ----------------------------
# Rows are never deleted: facilities and hazards keep referencing retired codes, so a code that
# left the files is only marked inactive, and comes back to life if it reappears.

UPSERT_DEPARTMENT = text(
    """
    INSERT INTO departments (code, name_zh, name_en, phone, attributes, active, synced_at)
    VALUES (:code, :name_zh, :name_en, :phone, :attributes, true, now())
    ON CONFLICT (code) DO UPDATE SET
        name_zh = EXCLUDED.name_zh,
        name_en = EXCLUDED.name_en,
        phone = EXCLUDED.phone,
        attributes = EXCLUDED.attributes,
        active = true,
        synced_at = EXCLUDED.synced_at
    """
).bindparams(bindparam("attributes", type_=JSONB))

UPSERT_FACILITY_TYPE = text(
    """
    INSERT INTO facility_types (code, name_zh, name_en, class_code, geometry_kind, icon, color,
                                attribute_schema, definition, active, synced_at)
    VALUES (:code, :name_zh, :name_en, :class_code, :geometry_kind, :icon, :color,
            :attribute_schema, :definition, true, now())
    ON CONFLICT (code) DO UPDATE SET
        name_zh = EXCLUDED.name_zh,
        name_en = EXCLUDED.name_en,
        class_code = EXCLUDED.class_code,
        geometry_kind = EXCLUDED.geometry_kind,
        icon = EXCLUDED.icon,
        color = EXCLUDED.color,
        attribute_schema = EXCLUDED.attribute_schema,
        definition = EXCLUDED.definition,
        active = true,
        synced_at = EXCLUDED.synced_at
    """
).bindparams(
    bindparam("attribute_schema", type_=JSONB),
    bindparam("definition", type_=JSONB),
)

UPSERT_HAZARD_CATEGORY = text(
    """
    INSERT INTO hazard_categories (code, name_zh, name_en, report_class, default_department_code,
                                   default_severity, sla_hours, duplicate_radius_m, snap_radius_m,
                                   facility_types, definition, active, synced_at)
    VALUES (:code, :name_zh, :name_en, :report_class, :default_department_code,
            :default_severity, :sla_hours, :duplicate_radius_m, :snap_radius_m,
            :facility_types, :definition, true, now())
    ON CONFLICT (code) DO UPDATE SET
        name_zh = EXCLUDED.name_zh,
        name_en = EXCLUDED.name_en,
        report_class = EXCLUDED.report_class,
        default_department_code = EXCLUDED.default_department_code,
        default_severity = EXCLUDED.default_severity,
        sla_hours = EXCLUDED.sla_hours,
        duplicate_radius_m = EXCLUDED.duplicate_radius_m,
        snap_radius_m = EXCLUDED.snap_radius_m,
        facility_types = EXCLUDED.facility_types,
        definition = EXCLUDED.definition,
        active = true,
        synced_at = EXCLUDED.synced_at
    """
).bindparams(
    bindparam("facility_types", type_=ARRAY(Text)),
    bindparam("definition", type_=JSONB),
)

DEACTIVATE_DEPARTMENTS = text(
    """
    UPDATE departments SET active = false, synced_at = now()
     WHERE active AND NOT (code = ANY (CAST(:codes AS text[])))
    """
).bindparams(bindparam("codes", type_=ARRAY(Text)))

DEACTIVATE_FACILITY_TYPES = text(
    """
    UPDATE facility_types SET active = false, synced_at = now()
     WHERE active AND NOT (code = ANY (CAST(:codes AS text[])))
    """
).bindparams(bindparam("codes", type_=ARRAY(Text)))

DEACTIVATE_HAZARD_CATEGORIES = text(
    """
    UPDATE hazard_categories SET active = false, synced_at = now()
     WHERE active AND NOT (code = ANY (CAST(:codes AS text[])))
    """
).bindparams(bindparam("codes", type_=ARRAY(Text)))


# ---- problems ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerProblem:
    """One thing wrong in one file of the catalog."""

    file: str
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        """`file: field 'x': message`, or `file: message` when no field is to blame."""
        if self.field:
            return f"{self.file}: field '{self.field}': {self.message}"
        return f"{self.file}: {self.message}"


class LayerError(Exception):
    """The catalog is broken; `problems` lists everything found, not just the first."""

    def __init__(self, problems: Sequence[LayerProblem]) -> None:
        self.problems: list[LayerProblem] = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        """Every problem, one per line."""
        return "\n".join(str(p) for p in self.problems)


class _Problems:
    """Collects problems, naming files relative to the layers folder's parent."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.items: list[LayerProblem] = []

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def add(
        self,
        path: Path,
        field: str,
        message: str,
        line: int | None = None,
        *,
        line_in_message: bool = False,
    ) -> None:
        # The line goes into the message as well, because people read str(err), not attributes.
        if line is not None and not line_in_message:
            message = f"{message} (line {line})"
        self.items.append(LayerProblem(self.rel(path), field, message, line))


# ---- YAML reading -----------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which plain PyYAML silently lets the last win."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # unhashable key: the base class reports it
            if first is not None:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (first given on line {first}); keep only one",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


@dataclass
class _Document:
    """A parsed YAML file: its data and its node tree (for line numbers)."""

    path: Path
    data: Any
    node: Node | None


def _read_yaml(path: Path, problems: _Problems) -> _Document | None:
    """Parse one file; on failure record a problem with the line and return None."""
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problems.add(path, "", f"the file is not UTF-8 text ({exc.reason}); save it as UTF-8")
        return None
    except OSError as exc:
        problems.add(path, "", f"cannot read the file: {exc.strerror or exc}")
        return None
    loader = _StrictLoader(source)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        where = f"line {line}, column {mark.column + 1}" if mark else "unknown position"
        what = exc.problem or exc.context or "invalid YAML"
        problems.add(
            path,
            "",
            f"YAML syntax error at {where}: {what}; fix the YAML there",
            line,
            line_in_message=True,
        )
        return None
    except yaml.YAMLError as exc:
        problems.add(path, "", f"YAML syntax error: {exc}; fix the YAML")
        return None
    finally:
        loader.dispose()
    return _Document(path, data, node)


def _line_of(node: Node | None, loc: Iterable[Any]) -> int | None:
    """The line of the deepest YAML node that `loc` reaches (a missing key → its mapping)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode) and key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


# ---- turning pydantic errors into readable problems ------------------------------------------


def _field_path(loc: Sequence[Any]) -> str:
    """('attributes', 'material', 'type') → attributes.material.type; ints → [i]."""
    out = ""
    for part in loc:
        if part == "[key]":
            continue  # pydantic's marker for "the key itself"; the key is already in the path
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional so the walker sees the real type."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _model_at(model: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model whose fields live at `loc` inside `model`, if there is one."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            current = field.annotation
            continue
        origin = get_origin(current)
        if origin is dict:
            current = get_args(current)[1]
        elif origin is list:
            current = get_args(current)[0]
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


# What each pattern in schemas.py means, in words a YAML author can act on.
PATTERN_HINTS: dict[str, str] = {
    CODE_PATTERN: "codes are lower-case snake_case: a letter, then letters, digits or _ "
    "(2 to 64 characters)",
    ATTRIBUTE_NAME_PATTERN: "attribute names are lower-case snake_case: a letter, then "
    "letters, digits or _",
    CLASS_CODE_PATTERN: "class_code is 4 digits, 大类 + 小类, quoted (e.g. '0101')",
    COLOR_PATTERN: "colours are quoted #RRGGBB hex (e.g. '#1E88E5')",
    ICON_PATTERN: "icons are Font Awesome 6 solid names without prefix (e.g. circle-dot)",
    PHONE_PATTERN: "phones hold only digits, spaces and + ( ) - (3 to 32 characters)",
}


def _short(value: Any) -> str:
    text_ = repr(value)
    return text_ if len(text_) <= 60 else text_[:57] + "..."


def _explain(error: Any, model: type[BaseModel]) -> str:
    """A pydantic error as what is wrong plus what to do about it."""
    kind = error["type"]
    loc = tuple(error["loc"])
    value = error.get("input")
    if kind == "missing":
        return f"required field is missing; add '{loc[-1]}: ...'"
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        allowed = list(parent.model_fields) if parent else []
        message = "unknown field"
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        if close:
            message += f"; did you mean '{close[0]}'?"
        if allowed:
            message += f" Allowed fields: {', '.join(allowed)}"
        return message + "; remove it or fix the spelling"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_type" and value is None:
        return (
            f"{message}, but the value is empty; if it starts with '#', quote it "
            "(an unquoted # begins a YAML comment)"
        )
    if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        return (
            f"{message}, got the number {value!r}; quote it (e.g. '0101'): YAML reads "
            "unquoted digits as a number and drops leading zeros"
        )
    if kind == "value_error":
        return message
    if kind == "string_pattern_mismatch":
        hint = PATTERN_HINTS.get(str((error.get("ctx") or {}).get("pattern")))
        if hint:
            return f"{hint} (got {_short(value)})"
    if kind in ("model_type", "dict_type"):
        return f"expected a mapping of fields (name: value lines) here (got {_short(value)})"
    return f"{message} (got {_short(value)})"


def _validate(
    model: type[BaseModel],
    data: Any,
    doc: _Document,
    problems: _Problems,
    prefix: tuple[Any, ...] = (),
) -> BaseModel | None:
    """Validate `data`; record each error with its field path and line, return None on error."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = prefix + tuple(error["loc"])
            problems.add(
                doc.path, _field_path(loc), _explain(error, model), _line_of(doc.node, loc)
            )
        return None


# ---- loading ----------------------------------------------------------------------------------


def _yaml_files(folder: Path) -> list[Path]:
    # Dot-files are editor droppings (.#x.yaml, .x.yaml.swp), not layers.
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix in YAML_SUFFIXES and not p.name.startswith(".")
    )


def _load_folder(
    folder: Path,
    model: type[BaseModel],
    problems: _Problems,
) -> tuple[dict[str, Any], dict[str, _Document], set[str]]:
    """Models by code, parsed documents by code, and every code the folder claims."""
    models: dict[str, Any] = {}
    docs: dict[str, _Document] = {}
    claimed: dict[str, Path] = {}
    if not folder.is_dir():
        problems.add(folder, "", "folder not found; create it (one YAML file per code)")
        return models, docs, set()
    for path in _yaml_files(folder):
        stem = path.stem
        if stem in claimed:
            problems.add(
                path,
                "code",
                f"duplicate code '{stem}': also defined in {problems.rel(claimed[stem])}; "
                "keep one file",
            )
            continue
        claimed[stem] = path
        doc = _read_yaml(path, problems)
        if doc is None:
            continue
        if doc.data is None:
            problems.add(path, "", "the file is empty; give at least code, name_zh and name_en")
            continue
        if not isinstance(doc.data, dict):
            problems.add(
                path,
                "",
                f"the file must hold a mapping of fields (code: ..., name_zh: ...), "
                f"not a {type(doc.data).__name__}",
                _line_of(doc.node, ()),
            )
            continue
        docs[stem] = doc
        code = doc.data.get("code")
        if isinstance(code, str) and code != stem:
            problems.add(
                path,
                "code",
                f"code '{code}' does not match the file name '{path.name}'; "
                f"rename the file to {code}{path.suffix} or set code: {stem}",
                _line_of(doc.node, ("code",)),
            )
        item = _validate(model, doc.data, doc, problems)
        if item is not None and code == stem:
            models[stem] = item
    return models, docs, set(claimed)


def _load_departments(path: Path, problems: _Problems) -> tuple[dict[str, DepartmentDef], set[str]]:
    """Departments by code, and every code the file names (valid entries or not)."""
    departments: dict[str, DepartmentDef] = {}
    named: set[str] = set()
    if not path.is_file():
        problems.add(path, "", "file not found; create it with a list of departments")
        return departments, named
    doc = _read_yaml(path, problems)
    if doc is None:
        return departments, named
    if not isinstance(doc.data, list):
        problems.add(
            path,
            "",
            "the file must hold a list of departments (- code: ..., name_zh: ..., name_en: ...)",
            _line_of(doc.node, ()),
        )
        return departments, named
    first_index: dict[str, int] = {}
    for index, entry in enumerate(doc.data):
        code = entry.get("code") if isinstance(entry, dict) else None
        if isinstance(code, str):
            named.add(code)
            if code in first_index:
                problems.add(
                    path,
                    f"[{index}].code",
                    f"duplicate department code '{code}' (first at [{first_index[code]}]); "
                    "give each department its own code",
                    _line_of(doc.node, (index, "code")),
                )
                continue
            first_index[code] = index
        dept = _validate(DepartmentDef, entry, doc, problems, prefix=(index,))
        if dept is not None:
            departments[dept.code] = dept
    return departments, named


def _check_classes(
    types_: dict[str, FacilityTypeDef], docs: dict[str, _Document], problems: _Problems
) -> None:
    """Class codes are unique (component IDs embed them) and a 大类 has one name."""
    by_class: dict[str, str] = {}
    major_names: dict[str, tuple[str, str]] = {}
    for code, ft in sorted(types_.items()):
        doc = docs[code]
        other = by_class.setdefault(ft.class_code, code)
        if other != code:
            problems.add(
                doc.path,
                "class_code",
                f"class_code {ft.class_code} is already used by facility type '{other}'; "
                "component IDs embed the class, so give each type its own",
                _line_of(doc.node, ("class_code",)),
            )
        first = major_names.setdefault(ft.major_class_code, (ft.major_class_zh, code))
        if first[0] != ft.major_class_zh:
            problems.add(
                doc.path,
                "major_class_zh",
                f"大类 {ft.major_class_code} is called '{first[0]}' in facility type "
                f"'{first[1]}' but '{ft.major_class_zh}' here; use one name per 大类",
                _line_of(doc.node, ("major_class_zh",)),
            )


def _check_references(
    docs: dict[str, _Document],
    department_codes: set[str],
    facility_codes: set[str],
    departments_path: str,
    problems: _Problems,
) -> None:
    """Every category's department and facility types exist (checked on the raw YAML, so a
    category with other errors still gets its references checked)."""
    for doc in docs.values():
        dept = doc.data.get("default_department")
        if isinstance(dept, str) and dept not in department_codes:
            close = difflib.get_close_matches(dept, sorted(department_codes), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.add(
                doc.path,
                "default_department",
                f"unknown department '{dept}'{hint}; use a code from {departments_path} "
                "or add the department there",
                _line_of(doc.node, ("default_department",)),
            )
        kinds = doc.data.get("facility_types")
        if not isinstance(kinds, list):
            continue
        for index, kind in enumerate(kinds):
            if isinstance(kind, str) and kind not in facility_codes:
                close = difflib.get_close_matches(kind, sorted(facility_codes), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                problems.add(
                    doc.path,
                    f"facility_types[{index}]",
                    f"unknown facility type '{kind}'{hint}; add "
                    f"layers/{FACILITY_TYPES_DIR}/{kind}.yaml or remove it from the list",
                    _line_of(doc.node, ("facility_types", index)),
                )


def load_catalog(layers_dir: Path) -> Catalog:
    """Read and check every layer file; raise one LayerError listing all problems."""
    layers_dir = Path(layers_dir)
    problems = _Problems(layers_dir.parent)
    if not layers_dir.is_dir():
        problems.add(layers_dir, "", "layers folder not found; check GIS_LAYERS_DIR")
        raise LayerError(problems.items)

    departments_path = layers_dir / DEPARTMENTS_FILE
    departments, department_codes = _load_departments(departments_path, problems)
    facility_types, facility_docs, facility_codes = _load_folder(
        layers_dir / FACILITY_TYPES_DIR, FacilityTypeDef, problems
    )
    categories, category_docs, _ = _load_folder(
        layers_dir / HAZARD_CATEGORIES_DIR, HazardCategoryDef, problems
    )
    _check_classes(facility_types, facility_docs, problems)
    _check_references(
        category_docs, department_codes, facility_codes, problems.rel(departments_path), problems
    )
    if problems.items:
        # Stable sort: a file's problems stay together, in the order they were found.
        raise LayerError(sorted(problems.items, key=lambda p: p.file))
    return Catalog(
        facility_types=dict(sorted(facility_types.items())),
        hazard_categories=dict(sorted(categories.items())),
        departments=departments,
    )


# ---- syncing ----------------------------------------------------------------------------------


def _department_row(d: DepartmentDef) -> dict[str, Any]:
    extra = d.model_dump(mode="json", exclude={"code", "name_zh", "name_en", "phone"})
    return {
        "code": d.code,
        "name_zh": d.name_zh,
        "name_en": d.name_en,
        "phone": d.phone,
        "attributes": {k: v for k, v in extra.items() if v is not None},
    }


def _facility_type_row(f: FacilityTypeDef) -> dict[str, Any]:
    definition = f.model_dump(mode="json")
    return {
        "code": f.code,
        "name_zh": f.name_zh,
        "name_en": f.name_en,
        "class_code": f.class_code,
        "geometry_kind": f.geometry,
        "icon": f.icon,
        "color": f.color,
        "attribute_schema": definition["attributes"],
        "definition": definition,
    }


def _hazard_category_row(c: HazardCategoryDef) -> dict[str, Any]:
    return {
        "code": c.code,
        "name_zh": c.name_zh,
        "name_en": c.name_en,
        "report_class": c.report_class,
        "default_department_code": c.default_department,
        "default_severity": c.default_severity,
        "sla_hours": c.sla_hours,
        "duplicate_radius_m": c.duplicate_radius_m,
        "snap_radius_m": c.snap_radius_m,
        "facility_types": list(c.facility_types),
        "definition": c.model_dump(mode="json"),
    }


def sync_catalog(conn: Connection, catalog: Catalog) -> dict[str, int]:
    """Upsert the catalog into its tables in the caller's transaction; retire missing codes."""
    counts: dict[str, int] = {}
    # Departments first: hazard_categories.default_department_code references them.
    plan = (
        (
            "departments",
            UPSERT_DEPARTMENT,
            DEACTIVATE_DEPARTMENTS,
            [_department_row(d) for d in catalog.departments.values()],
        ),
        (
            "facility_types",
            UPSERT_FACILITY_TYPE,
            DEACTIVATE_FACILITY_TYPES,
            [_facility_type_row(f) for f in catalog.facility_types.values()],
        ),
        (
            "hazard_categories",
            UPSERT_HAZARD_CATEGORY,
            DEACTIVATE_HAZARD_CATEGORIES,
            [_hazard_category_row(c) for c in catalog.hazard_categories.values()],
        ),
    )
    for table, upsert, deactivate, rows in plan:
        if rows:  # executemany with no rows would run the statement once without parameters
            conn.execute(upsert, rows)
        counts[table] = len(rows)
        retired = conn.execute(deactivate, {"codes": [r["code"] for r in rows]})
        counts[f"{table}_deactivated"] = retired.rowcount
    return counts
