"""The declarative base every domain's models.py builds on.

The tables themselves are created only by Alembic revisions; these classes describe them
for queries and for the model-versus-database check in the tests.
"""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base for all tables."""
