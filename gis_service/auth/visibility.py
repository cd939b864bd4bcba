"""Who sees private fields, as bound SQL parameters, so lists stay one query.

Private fields are staff mobile phones, reporter names and phones, and the actors and notes
of a hazard's history. A caller sees them on objects inside their grid subtree when they hold
the ``read_private`` scope (every staff role, and keys given that scope); a hazard assigned to
a staff member's person is visible to them wherever it lies. Everyone else gets the public view.
"""

from __future__ import annotations

from typing import Any

from gis_service.auth.principal import Principal


def private_params(principal: Principal) -> dict[str, Any]:
    """Bound parameters for :func:`private_sql`."""
    if not principal.has("read_private"):
        return {"private_all": False, "private_scope": None, "private_person": None}
    scope = principal.scope_filter()
    return {
        "private_all": scope is None,
        "private_scope": scope or None,
        "private_person": principal.person_id,
    }


def private_sql(path: str, assignee: str | None = None) -> str:
    """A boolean SQL expression: may the caller see private fields of an object whose grid
    path (street first) is the column ``path`` (and whose assignee is ``assignee``)?"""
    expr = (
        "(CAST(:private_all AS boolean)"
        " OR (CAST(:private_scope AS bigint[]) IS NOT NULL"
        f" AND {path} && CAST(:private_scope AS bigint[]))"
    )
    if assignee:
        expr += (
            f" OR (CAST(:private_person AS bigint) IS NOT NULL AND {assignee} = :private_person)"
        )
    return expr + ")"
