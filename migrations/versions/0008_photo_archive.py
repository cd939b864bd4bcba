"""Photo archive: where the files of an archived photo went.

``gis-service photos archive`` moves the files of photos of long-closed hazards out of the
photo folder; the row keeps the photo's place relative to GIS_PHOTO_ARCHIVE_DIR, so the
service still serves it from there and backups find it.

Revision ID: 0008_photo_archive
Revises: 0007_case_exceptions
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0008_photo_archive"
down_revision = "0007_case_exceptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add archived_to and archived_at to hazard_photos."""
    op.execute("ALTER TABLE hazard_photos ADD COLUMN archived_to text")
    op.execute("ALTER TABLE hazard_photos ADD COLUMN archived_at timestamptz")
    op.execute(
        "ALTER TABLE hazard_photos ADD CONSTRAINT hazard_photos_archived_together "
        "CHECK ((archived_to IS NULL) = (archived_at IS NULL))"
    )
    op.execute(
        "COMMENT ON COLUMN hazard_photos.archived_to IS "
        "'Folder of the files relative to GIS_PHOTO_ARCHIVE_DIR once archived; NULL = in photos/.'"
    )


def downgrade() -> None:
    """Drop them (archived files stay where they are)."""
    op.execute(
        "ALTER TABLE hazard_photos DROP CONSTRAINT IF EXISTS hazard_photos_archived_together"
    )
    op.execute("ALTER TABLE hazard_photos DROP COLUMN IF EXISTS archived_at")
    op.execute("ALTER TABLE hazard_photos DROP COLUMN IF EXISTS archived_to")
