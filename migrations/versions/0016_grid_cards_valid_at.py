"""gis_grid_cards tests "assignment holds at t" with gis_valid_at, the one definition of it.

Revision 0010 wrote the predicate out in gis_grid_cards because gis_valid_at came later
(0012). The function is redefined from the same text with gis_valid_at in its place: the
cards it builds are the same (gis_valid_at is inlined into the query before planning, see
0012), so the stored cards are kept as they are.

Revision ID: 0016_grid_cards_valid_at
Revises: 0015_field_work
Create Date: 2026-11-30
"""

from __future__ import annotations

from types import ModuleType

from alembic import op

from gis_service.db.migrate import revision_module

revision = "0016_grid_cards_valid_at"
down_revision = "0015_field_work"
branch_labels = None
depends_on = None

VALID_AT = "gis_valid_at(a.valid_from, a.valid_to, at)"


def _grid_cards() -> ModuleType:
    """Revision 0010, which holds the definition of gis_grid_cards."""
    return revision_module("0010_grid_cards")


def upgrade() -> None:
    """Redefine gis_grid_cards with gis_valid_at."""
    op.execute(_grid_cards().cards_function(VALID_AT, "CREATE OR REPLACE"))


def downgrade() -> None:
    """Back to the predicate written out, as revision 0010 has it."""
    cards = _grid_cards()
    op.execute(cards.cards_function(cards.VALID_AT, "CREATE OR REPLACE"))
