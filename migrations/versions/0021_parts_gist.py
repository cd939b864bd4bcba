"""Grid parts indexed with GiST again: PostGIS's SP-GiST crashes the server on a keyless scan.

Revision 0017 moved the per-level part indexes from GiST to SP-GiST (~2× faster per probe
then). With PostgreSQL 15 and PostGIS 3.3 (Debian's packages, what this service runs on), an
index-only scan of a PostGIS SP-GiST index with no index condition ends the backend with
signal 11, and PostgreSQL then resets every connection and runs crash recovery. The planner
picks exactly that plan for ``SELECT count(*) FROM grid_parts WHERE rank = 4`` (the partial
index is smaller than the table), so one ad-hoc count by an operator, a report or a later
query takes the whole service down. GiST answers the same scan correctly.

What the move costs: micro-grids (rank 4, nearly every point) are routed through
``grid_cells`` since revision 0018, not through this index; ranks 1–3 hold a few hundred
parts even at city scale, where the two index kinds do not differ measurably.
tests/test_migrations.py checks that no PostGIS column is indexed with SP-GiST.

Revision ID: 0021_parts_gist
Revises: 0020_cell_fill
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0021_parts_gist"
down_revision = "0020_cell_fill"
branch_labels = None
depends_on = None

RANKS = (1, 2, 3, 4, 5)


def _swap(old: str, new: str) -> None:
    """Build each level's partial index with method ``new``, then drop the ``old`` one."""
    for rank in RANKS:
        op.execute(
            f"CREATE INDEX grid_parts_rank{rank}_{new} ON grid_parts USING {new} (geom)"
            f" WHERE rank = {rank}"
        )
        op.execute(f"DROP INDEX IF EXISTS grid_parts_rank{rank}_{old}")
    op.execute("ANALYZE grid_parts")


def upgrade() -> None:
    """SP-GiST part indexes → GiST."""
    _swap("spgist", "gist")


def downgrade() -> None:
    """GiST part indexes → SP-GiST (revision 0017's)."""
    _swap("gist", "spgist")
