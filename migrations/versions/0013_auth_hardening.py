"""Account hardening from a security review (issue 11, finding 10).

- login_failures: a known username used to answer 429 ("wait") and "N more failed attempts
  will lock the account" after a few failures, an unknown one always 401, which told an
  attacker which usernames exist. Unknown names are counted here exactly as
  users.failed_logins counts known ones, so both answer alike.
- auth_tokens.parent_id: a bearer token minted while logged in (POST /auth/tokens) could
  outlive the session or token it was minted with (366 days from an 86-second token) and
  survived its revocation. It now expires with its parent at the latest and is revoked with
  it.
- hazards.idempotency_key holds the caller's namespace before the key ('user:12|…',
  'anonymous@ip|…', 'open311|…'): a key reused by another caller no longer finds, and
  names, somebody else's report, and an Open311 token lookup finds Open311 tokens only.

Revision ID: 0013_auth_hardening
Revises: 0012_valid_at
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0013_auth_hardening"
down_revision = "0012_valid_at"
branch_labels = None
depends_on = None

UPGRADE = [
    """
    CREATE TABLE login_failures (
        username text PRIMARY KEY,
        failed_logins integer NOT NULL DEFAULT 0,
        last_failed_at timestamptz,
        locked_until timestamptz
    )
    """,
    """
    COMMENT ON TABLE login_failures IS
        'Failed logins of usernames with no account, counted as users.failed_logins counts '
        'those of accounts, so that an unknown username answers like a known one.'
    """,
    "CREATE INDEX login_failures_last_idx ON login_failures (last_failed_at)",
    """
    ALTER TABLE auth_tokens
        ADD COLUMN parent_id bigint REFERENCES auth_tokens (id) ON DELETE CASCADE
    """,
    "CREATE INDEX auth_tokens_parent_idx ON auth_tokens (parent_id) WHERE parent_id IS NOT NULL",
    """
    COMMENT ON COLUMN auth_tokens.parent_id IS
        'The session or token this one was minted with: it expires and is revoked with it.'
    """,
    """
    UPDATE hazards
       SET idempotency_key = CASE WHEN idempotency_key LIKE 'o311-%'
                                  THEN 'open311|' || idempotency_key
                                  ELSE coalesce(reporter_principal, 'anonymous') || '|'
                                       || idempotency_key END
     WHERE idempotency_key IS NOT NULL
    """,
]

DOWNGRADE = [
    """
    UPDATE hazards
       SET idempotency_key = substr(idempotency_key, position('|' IN idempotency_key) + 1)
     WHERE idempotency_key LIKE '%|%'
    """,
    "ALTER TABLE auth_tokens DROP COLUMN IF EXISTS parent_id",
    "DROP TABLE IF EXISTS login_failures",
]


def upgrade() -> None:
    """Add the failure counts of unknown names, token parents and namespaced keys."""
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Remove them (keys lose their namespace)."""
    for statement in DOWNGRADE:
        op.execute(statement)
