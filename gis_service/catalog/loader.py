"""Load the YAML layer catalog (facility types, hazard categories, departments) and check
it whole: one LayerError lists every problem, not just the first."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from gis_service.catalog.problems import (
    Document,
    LayerError,
    Problems,
    line_of,
    read_yaml,
    validate,
)
from gis_service.catalog.schemas import (
    AssessmentDef,
    AssignmentRoleDef,
    CalendarDef,
    CareDef,
    Catalog,
    DepartmentDef,
    FacilityTypeDef,
    HazardCategoryDef,
    ServicesDef,
)

FACILITY_TYPES_DIR = "facility_types"
HAZARD_CATEGORIES_DIR = "hazard_categories"
DEPARTMENTS_FILE = "departments.yaml"
CALENDAR_FILE = "calendar.yaml"
CARE_FILE = "care.yaml"
ASSESSMENT_FILE = "assessment.yaml"
ROLES_FILE = "assignment_roles.yaml"
SERVICES_FILE = "services.yaml"
YAML_SUFFIXES = (".yaml", ".yml")
Item = TypeVar("Item", bound=BaseModel)


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
    problems: Problems,
) -> tuple[dict[str, Any], dict[str, Document], set[str]]:
    """Models by code, parsed documents by code, and every code the folder claims."""
    models: dict[str, Any] = {}
    docs: dict[str, Document] = {}
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
        doc = read_yaml(path, problems)
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
                line_of(doc.node, ()),
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
                line_of(doc.node, ("code",)),
            )
        item = validate(model, doc.data, doc, problems)
        if item is not None and code == stem:
            models[stem] = item
    return models, docs, set(claimed)


def _load_list(
    path: Path, model: type[Item], noun: str, problems: Problems
) -> tuple[dict[str, Item], set[str], Document | None]:
    """Entries of a list file by code, every code it names (valid entries or not), and the
    parsed document (for the line numbers of later checks)."""
    items: dict[str, Item] = {}
    named: set[str] = set()
    if not path.is_file():
        problems.add(path, "", f"file not found; create it with a list of {noun}s")
        return items, named, None
    doc = read_yaml(path, problems)
    if doc is None:
        return items, named, None
    if not isinstance(doc.data, list):
        problems.add(
            path,
            "",
            f"the file must hold a list of {noun}s (- code: ..., name_zh: ..., name_en: ...)",
            line_of(doc.node, ()),
        )
        return items, named, None
    first_index: dict[str, int] = {}
    for index, entry in enumerate(doc.data):
        code = entry.get("code") if isinstance(entry, dict) else None
        if isinstance(code, str):
            named.add(code)
            if code in first_index:
                problems.add(
                    path,
                    f"[{index}].code",
                    f"duplicate {noun} code '{code}' (first at [{first_index[code]}]); "
                    f"give each {noun} its own code",
                    line_of(doc.node, (index, "code")),
                )
                continue
            first_index[code] = index
        item = validate(model, entry, doc, problems, prefix=(index,))
        if item is not None:
            items[item.code] = item  # type: ignore[attr-defined]
    return items, named, doc


def _check_roles(
    roles: dict[str, AssignmentRoleDef], doc: Document | None, problems: Problems
) -> None:
    """Ranks order the roles (no two alike), and one role at most leads each grid level (its
    holder is the grid's primary person, whom reports route to)."""
    if doc is None:
        return
    index = {entry.get("code"): i for i, entry in enumerate(doc.data) if isinstance(entry, dict)}
    by_rank: dict[int, str] = {}
    leading: dict[str, str] = {}
    for code, role in roles.items():
        i = index[code]
        other = by_rank.setdefault(role.rank, code)
        if other != code:
            problems.add(
                doc.path,
                f"[{i}].rank",
                f"rank {role.rank} is also the rank of role '{other}'; give each role its own "
                "rank (it orders the people of a grid)",
                line_of(doc.node, (i, "rank")),
            )
        for level in role.primary_for:
            first = leading.setdefault(level, code)
            if first != code:
                problems.add(
                    doc.path,
                    f"[{i}].primary_for",
                    f"role '{first}' already leads grids of level {level}; one role per level "
                    "may make its holder the grid's primary person",
                    line_of(doc.node, (i, "primary_for")),
                )


def _load_mapping(path: Path, model: type[BaseModel], needs: str, problems: Problems) -> Any:
    """One file holding one mapping (calendar.yaml: working hours, weekend, the office's days;
    assessment.yaml: weights, grades, points; care.yaml: categories under care and needs)."""
    if not path.is_file():
        problems.add(path, "", f"file not found; create it with {needs}")
        return None
    doc = read_yaml(path, problems)
    if doc is None:
        return None
    if not isinstance(doc.data, dict):
        problems.add(
            path, "", f"the file must hold a mapping ({needs}: ...)", line_of(doc.node, ())
        )
        return None
    return validate(model, doc.data, doc, problems)


def _check_classes(
    types_: dict[str, FacilityTypeDef], docs: dict[str, Document], problems: Problems
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
                line_of(doc.node, ("class_code",)),
            )
        first = major_names.setdefault(ft.major_class_code, (ft.major_class_zh, code))
        if first[0] != ft.major_class_zh:
            problems.add(
                doc.path,
                "major_class_zh",
                f"大类 {ft.major_class_code} is called '{first[0]}' in facility type "
                f"'{first[1]}' but '{ft.major_class_zh}' here; use one name per 大类",
                line_of(doc.node, ("major_class_zh",)),
            )


def _check_references(
    docs: dict[str, Document],
    department_codes: set[str],
    facility_codes: set[str],
    departments_path: str,
    problems: Problems,
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
                line_of(doc.node, ("default_department",)),
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
                    line_of(doc.node, ("facility_types", index)),
                )


def load_catalog(layers_dir: Path) -> Catalog:
    """Read and check every layer file; raise one LayerError listing all problems."""
    layers_dir = Path(layers_dir)
    problems = Problems(layers_dir.parent)
    if not layers_dir.is_dir():
        problems.add(layers_dir, "", "layers folder not found; check GIS_LAYERS_DIR")
        raise LayerError(problems.items)

    departments_path = layers_dir / DEPARTMENTS_FILE
    departments, department_codes, _ = _load_list(
        departments_path, DepartmentDef, "department", problems
    )
    roles, _, roles_doc = _load_list(layers_dir / ROLES_FILE, AssignmentRoleDef, "role", problems)
    _check_roles(roles, roles_doc, problems)
    facility_types, facility_docs, facility_codes = _load_folder(
        layers_dir / FACILITY_TYPES_DIR, FacilityTypeDef, problems
    )
    categories, category_docs, _ = _load_folder(
        layers_dir / HAZARD_CATEGORIES_DIR, HazardCategoryDef, problems
    )
    calendar = _load_mapping(
        layers_dir / CALENDAR_FILE, CalendarDef, "working_hours, first_year, last_year", problems
    )
    assessment = _load_mapping(
        layers_dir / ASSESSMENT_FILE, AssessmentDef, "weights and grades", problems
    )
    care = _load_mapping(layers_dir / CARE_FILE, CareDef, "categories and needs", problems)
    services = _load_mapping(layers_dir / SERVICES_FILE, ServicesDef, "types", problems)
    _check_classes(facility_types, facility_docs, problems)
    _check_references(
        category_docs, department_codes, facility_codes, problems.rel(departments_path), problems
    )
    if assessment is not None and roles:
        for index, code in enumerate(assessment.points_roles):
            if code not in roles:
                problems.add(
                    layers_dir / ASSESSMENT_FILE,
                    f"points_roles[{index}]",
                    f"unknown role '{code}'; use a code from {ROLES_FILE}",
                )
    if problems.items or calendar is None or assessment is None or care is None or services is None:
        # Stable sort: a file's problems stay together, in the order they were found.
        raise LayerError(sorted(problems.items, key=lambda p: p.file))
    return Catalog(
        facility_types=dict(sorted(facility_types.items())),
        hazard_categories=dict(sorted(categories.items())),
        departments=departments,
        calendar=calendar,
        assessment=assessment,
        assignment_roles=dict(sorted(roles.items(), key=lambda kv: (kv[1].rank, kv[0]))),
        care=care,
        services=dict(services.types),
    )
