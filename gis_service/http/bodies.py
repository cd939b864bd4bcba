"""JSON request bodies validated by pydantic's own parser, and their OpenAPI description."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def body_error(exc: ValidationError) -> RequestValidationError:
    """A model's validation errors as the 422 of a request body (locations under "body")."""
    return RequestValidationError([{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()])


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency reading the body as ``model`` straight from its bytes.

    FastAPI parses a body with json.loads and then validates the Python objects; pydantic's
    own parser does both in one pass, ~3x faster on a batch of 10,000 points (~20 ms of a
    request). Malformed JSON and bad fields are the same 422 as a declared body's.
    """

    async def read(request: Request) -> M:
        try:
            return model.model_validate_json(await request.body())
        except ValidationError as exc:
            raise body_error(exc) from None

    return read


def inlined(schema: dict) -> dict:
    """A JSON schema with its local ``$defs`` references replaced by the definitions: an
    OpenAPI document has no ``#/$defs`` to point at (ReDoc stopped on "Invalid reference
    token: $defs")."""
    defs = schema.pop("$defs", {})

    def walk(node: object) -> object:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.split("/")[-1]]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)  # type: ignore[return-value]


def json_body_doc(model: type[BaseModel]) -> dict:
    """The OpenAPI request body of a route that reads ``model`` with ``json_body``."""
    schema = inlined(model.model_json_schema())
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
