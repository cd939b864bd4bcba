"""People kept on screen: whose record a person is, party membership and notes, one account
per person, the reason of every audited change, and roles as a catalogue from layers/.

- ``people.grid_id`` names the grid whose staff keep the record (a person with no current
  assignment stays in someone's scope). Existing people get the deepest grid that holds all
  their current assignments (else all their assignments).
- ``people.party_member`` and ``people.notes`` are kept by staff (private, like mobiles).
- ``users.person_id`` is unique: a person logs in with one account. Where two accounts named
  the same person, the earliest keeps the link and the unlinking is written to the audit log.
- ``audit_log.reason``: why a change was made, next to who made it.
- ``assignment_roles`` is synced from ``layers/assignment_roles.yaml``: ``levels`` (where a
  role may be held), ``primary_for`` (the levels on which its holder is the one reports route
  to, e.g. 网格长 on a grid), ``active`` (a role that left the file stays for history).
  The rank is an order, not a key: a retired role may share it with a new one.

Revision ID: 0014_people
Revises: 0013_auth_hardening
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0014_people"
down_revision = "0013_auth_hardening"
branch_labels = None
depends_on = None

# The deepest grid on the path of every one of a person's assignments that ``{which}``.
_HOME_GRID = """
    WITH ag AS (
        SELECT DISTINCT a.person_id, g.path
          FROM grid_assignments a JOIN grids g ON g.id = a.grid_id
          JOIN people p ON p.id = a.person_id AND p.grid_id IS NULL
         WHERE {which}
    ),
    shortest AS (
        SELECT DISTINCT ON (person_id) person_id, path
          FROM ag ORDER BY person_id, cardinality(path)
    ),
    candidates AS (
        SELECT s.person_id, u.id, u.k
          FROM shortest s, unnest(s.path) WITH ORDINALITY AS u (id, k)
    ),
    home AS (
        SELECT DISTINCT ON (c.person_id) c.person_id, c.id
          FROM candidates c
         WHERE NOT EXISTS (SELECT 1 FROM ag
                            WHERE ag.person_id = c.person_id AND NOT (c.id = ANY (ag.path)))
         ORDER BY c.person_id, c.k DESC
    )
    UPDATE people p SET grid_id = home.id FROM home WHERE home.person_id = p.id
"""

UPGRADE = [
    # ---- people --------------------------------------------------------------------------
    "ALTER TABLE people ADD COLUMN grid_id bigint REFERENCES grids (id) ON DELETE SET NULL",
    """
    COMMENT ON COLUMN people.grid_id IS
        'The grid whose staff keep this record: the person is in their scope even with no '
        'current assignment.'
    """,
    "ALTER TABLE people ADD COLUMN party_member boolean NOT NULL DEFAULT false",
    """
    ALTER TABLE people ADD COLUMN notes text
        CONSTRAINT people_notes_length CHECK (char_length(notes) <= 2000)
    """,
    "COMMENT ON COLUMN people.notes IS 'Private: staff in scope only.'",
    "CREATE INDEX people_grid_idx ON people (grid_id) WHERE grid_id IS NOT NULL",
    _HOME_GRID.format(which="a.valid_to IS NULL OR a.valid_to > now()"),
    _HOME_GRID.format(which="true"),
    # ---- one account per person -------------------------------------------------------------
    """
    WITH dup AS (
        SELECT id, person_id FROM (
            SELECT id, person_id,
                   row_number() OVER (PARTITION BY person_id ORDER BY created_at, id) AS n
              FROM users WHERE person_id IS NOT NULL) x
         WHERE n > 1
    ),
    unlinked AS (
        UPDATE users u SET person_id = NULL FROM dup WHERE u.id = dup.id
        RETURNING u.id, dup.person_id, u.grid_id
    )
    INSERT INTO audit_log (principal_kind, principal_name, action, object_type, object_id,
                           before, after, grid_id, grid_path)
    SELECT 'system', 'system', 'update', 'user', unlinked.id::text,
           jsonb_build_object('person_id', unlinked.person_id),
           jsonb_build_object('person_id', NULL,
                              'why', 'a person has one account; the earliest kept the link'),
           unlinked.grid_id,
           coalesce((SELECT path FROM grids WHERE id = unlinked.grid_id), '{}')
      FROM unlinked
    """,
    "DROP INDEX users_person_idx",
    "CREATE UNIQUE INDEX users_person_key ON users (person_id) WHERE person_id IS NOT NULL",
    # ---- why ----------------------------------------------------------------------------
    """
    ALTER TABLE audit_log ADD COLUMN reason text
        CONSTRAINT audit_log_reason_length CHECK (char_length(reason) <= 500)
    """,
    "COMMENT ON COLUMN audit_log.reason IS 'Why the change was made, as its author said.'",
    # ---- roles as a catalogue -----------------------------------------------------------
    "ALTER TABLE assignment_roles DROP CONSTRAINT assignment_roles_rank_key",
    "ALTER TABLE assignment_roles ADD COLUMN levels text[] NOT NULL DEFAULT '{}'",
    "ALTER TABLE assignment_roles ADD COLUMN primary_for text[] NOT NULL DEFAULT '{}'",
    "ALTER TABLE assignment_roles ADD COLUMN active boolean NOT NULL DEFAULT true",
    "ALTER TABLE assignment_roles ADD COLUMN synced_at timestamptz NOT NULL DEFAULT now()",
    """
    COMMENT ON COLUMN assignment_roles.primary_for IS
        'Grid levels on which the holder of this role is the primary person (reports route '
        'to them); at most one role per level.'
    """,
    # What layers/assignment_roles.yaml declares, so a database is right before its first sync.
    """
    UPDATE assignment_roles r SET levels = v.levels, primary_for = v.primary_for
      FROM (VALUES
        ('party_secretary', '{street,community}'::text[], '{street,community}'::text[]),
        ('director', '{street,community}', '{}'),
        ('grid_leader', '{grid}', '{grid}'),
        ('special_grid_leader', '{special}', '{special}'),
        ('grid_member', '{grid,micro_grid}', '{}'),
        ('micro_grid_member', '{micro_grid}', '{micro_grid}'),
        ('building_head', '{grid,micro_grid}', '{}'),
        ('community_police', '{community,grid}', '{}'),
        ('volunteer', '{street,community,grid,micro_grid,special}', '{}')
      ) AS v (code, levels, primary_for)
     WHERE r.code = v.code
    """,
]

DOWNGRADE = [
    "ALTER TABLE assignment_roles DROP COLUMN synced_at",
    "ALTER TABLE assignment_roles DROP COLUMN active",
    "ALTER TABLE assignment_roles DROP COLUMN primary_for",
    "ALTER TABLE assignment_roles DROP COLUMN levels",
    "ALTER TABLE assignment_roles ADD CONSTRAINT assignment_roles_rank_key UNIQUE (rank)",
    "ALTER TABLE audit_log DROP COLUMN reason",
    "DROP INDEX users_person_key",
    "CREATE INDEX users_person_idx ON users (person_id) WHERE person_id IS NOT NULL",
    "ALTER TABLE people DROP COLUMN notes",
    "ALTER TABLE people DROP COLUMN party_member",
    "ALTER TABLE people DROP COLUMN grid_id",
]


def upgrade() -> None:
    """Add the columns, backfill home grids, make the person link unique."""
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Drop them (the roles' rank becomes a key again)."""
    for statement in DOWNGRADE:
        op.execute(statement)
