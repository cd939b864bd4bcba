"""Hazard workflow: public-code sequence, idempotency fingerprint, reporter principal, photos.

Revision ID: 0004_hazard_workflow
Revises: 0003_auth
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0004_hazard_workflow"
down_revision = "0003_auth"
branch_labels = None
depends_on = None

UPGRADE = [
    # YH + yyyymmdd + '-' + this number: one sequence, so codes never collide, even when two
    # reports arrive in the same millisecond on different connections.
    "CREATE SEQUENCE hazard_public_code_seq AS bigint START 1",
    # A retry with the same Idempotency-Key must carry the same report: the fingerprint of the
    # first body tells a retry (same) from a client bug (different body, same key).
    "ALTER TABLE hazards ADD COLUMN idempotency_fingerprint text",
    # Who submitted the report ('user:12', 'api_key:3', 'anonymous'): private, for abuse checks.
    "ALTER TABLE hazards ADD COLUMN reporter_principal text",
    """
    COMMENT ON COLUMN hazards.idempotency_fingerprint IS
        'SHA-256 of the first request body sent with idempotency_key.'
    """,
    # Duplicate suggestions and the overdue list look at open hazards of one category.
    """
    CREATE INDEX hazards_open_geom_gist ON hazards USING gist (geom)
        WHERE status NOT IN ('closed', 'rejected')
    """,
    """
    CREATE INDEX hazards_assignee_open_idx ON hazards (assignee_person_id)
        WHERE status NOT IN ('closed', 'rejected')
    """,
    """
    CREATE TABLE hazard_photos (
        id uuid PRIMARY KEY,
        hazard_id bigint NOT NULL REFERENCES hazards (id) ON DELETE CASCADE,
        event_id bigint REFERENCES hazard_events (id) ON DELETE SET NULL,
        position smallint NOT NULL DEFAULT 0,
        content_type text NOT NULL CONSTRAINT hazard_photos_content_type
            CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
        bytes integer NOT NULL CONSTRAINT hazard_photos_bytes_positive CHECK (bytes > 0),
        width integer NOT NULL CHECK (width > 0),
        height integer NOT NULL CHECK (height > 0),
        sha256 text NOT NULL CONSTRAINT hazard_photos_sha256 CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        original_name text,
        had_exif boolean NOT NULL DEFAULT false,
        had_gps boolean NOT NULL DEFAULT false,
        uploaded_by text,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    COMMENT ON TABLE hazard_photos IS
        'Photos of a report or of one step; files live under <data>/photos/<hazard>/<id>/: '
        'original.* (private, EXIF kept), public.* (EXIF stripped) and thumb.jpg.'
    """,
    "CREATE INDEX hazard_photos_hazard_idx ON hazard_photos (hazard_id, created_at)",
    "CREATE INDEX hazard_photos_event_idx ON hazard_photos (event_id) WHERE event_id IS NOT NULL",
]

DOWNGRADE = [
    "DROP TABLE IF EXISTS hazard_photos",
    "DROP INDEX IF EXISTS hazards_assignee_open_idx",
    "DROP INDEX IF EXISTS hazards_open_geom_gist",
    "ALTER TABLE hazards DROP COLUMN IF EXISTS reporter_principal",
    "ALTER TABLE hazards DROP COLUMN IF EXISTS idempotency_fingerprint",
    "DROP SEQUENCE IF EXISTS hazard_public_code_seq",
]


def upgrade() -> None:
    """Add the workflow's sequence, columns, indexes and the photo table."""
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Remove them again."""
    for statement in DOWNGRADE:
        op.execute(statement)
