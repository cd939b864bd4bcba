"""Rules between the fields of a body: partial updates (PATCH bodies: fields that may be
left out but never sent as null, and at least one field to change), one field of a set, a
field that needs another. One declaration serves the check and the OpenAPI document, so
that clients and fuzzers see the rule the server applies (issue 11, finding 12)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel


def patch_schema(
    not_null: Iterable[str], one_of: Iterable[str] = ()
) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` stating the rule of check_patch: ``not_null`` fields are not
    nullable, and the body holds at least one of ``one_of`` (``("*",)``: of its fields)."""
    not_null, one_of = tuple(not_null), tuple(one_of)

    def edit(schema: dict[str, Any]) -> None:
        for name in not_null:
            prop = schema["properties"].get(name)
            if prop is None:  # a field of a sibling model
                continue
            if "anyOf" in prop:
                kept = [s for s in prop.pop("anyOf") if s.get("type") != "null"]
                prop.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
            prop.pop("default", None)
        names = list(schema["properties"]) if one_of == ("*",) else one_of
        if names:
            schema["anyOf"] = [{"required": [name]} for name in names]

    return edit


def check_patch(body: BaseModel, not_null: Iterable[str], one_of: Iterable[str] = ()) -> None:
    """ValueError when a ``not_null`` field is sent as null, or none of ``one_of`` is sent."""
    given = body.model_fields_set
    one_of = tuple(one_of)
    if one_of and not given & set(one_of):
        raise ValueError(f"give at least one of {', '.join(one_of)}")
    nulls = sorted(k for k in given if k in set(not_null) and getattr(body, k) is None)
    if nulls:
        raise ValueError(f"{', '.join(nulls)} cannot be null; leave it out instead")


def exactly_one_schema(names: Iterable[str]) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` stating check_exactly_one: one of ``names``, not null."""
    names = tuple(names)
    not_null = patch_schema(names)

    def edit(schema: dict[str, Any]) -> None:
        not_null(schema)
        schema["oneOf"] = [{"required": [name]} for name in names]

    return edit


def check_exactly_one(body: BaseModel, names: Iterable[str], what: str) -> None:
    """ValueError unless exactly one of ``names`` is given (and not null)."""
    given = [name for name in names if getattr(body, name) is not None]
    sent_null = [n for n in names if n in body.model_fields_set and getattr(body, n) is None]
    if len(given) != 1 or sent_null:
        raise ValueError(what)


# A field is given when it is present, not null and, for text, not blank.
_ABSENT = {"anyOf": [{"type": "null"}, {"type": "string", "pattern": r"^\s*$"}]}


def _given_schema(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"not": _ABSENT}}}


def _given(body: BaseModel, name: str) -> bool:
    value = getattr(body, name)
    return value is not None and not (isinstance(value, str) and not value.strip())


def needs_schema(rules: Iterable[tuple[str, str, str]]) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` stating check_needs: each (field, needed, why) reads "when
    field is given, needed is given too"."""
    rules = tuple(rules)

    def edit(schema: dict[str, Any]) -> None:
        schema.setdefault("allOf", []).extend(
            {"if": _given_schema(field), "then": _given_schema(needed)}
            for field, needed, _ in rules
        )

    return edit


def check_needs(body: BaseModel, rules: Iterable[tuple[str, str, str]]) -> None:
    """ValueError with the rule's words when a field is given without the one it needs."""
    for field, needed, why in rules:
        if _given(body, field) and not _given(body, needed):
            raise ValueError(why)
