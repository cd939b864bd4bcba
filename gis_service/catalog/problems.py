"""What is wrong in layers/, said so a person can fix it: each problem names the file, the
field and the line; YAML is read keeping lines (and refusing duplicate keys), and pydantic's
errors are turned into sentences with the allowed values."""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gis_service.catalog.schemas import (
    ATTRIBUTE_NAME_PATTERN,
    CLASS_CODE_PATTERN,
    CODE_PATTERN,
    COLOR_PATTERN,
    ICON_PATTERN,
    PHONE_PATTERN,
)


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


class Problems:
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
class Document:
    """A parsed YAML file: its data and its node tree (for line numbers)."""

    path: Path
    data: Any
    node: Node | None


def read_yaml(path: Path, problems: Problems) -> Document | None:
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
    return Document(path, data, node)


def line_of(node: Node | None, loc: Iterable[Any]) -> int | None:
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


def validate(
    model: type[BaseModel],
    data: Any,
    doc: Document,
    problems: Problems,
    prefix: tuple[Any, ...] = (),
) -> BaseModel | None:
    """Validate `data`; record each error with its field path and line, return None on error."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = prefix + tuple(error["loc"])
            problems.add(doc.path, _field_path(loc), _explain(error, model), line_of(doc.node, loc))
        return None
