"""The SQL of accounts, tokens, API keys, audit and rate limits. Every value is bound."""

from __future__ import annotations

from sqlalchemy import text

# The scope root as it stands now: a redrawn grid keeps its code but gets a new row, so the
# current version's id and path are used, and every version's id counts as "in scope".
_SCOPE_COLUMNS = """
    cur.id AS scope_grid_id,
    coalesce(cur.path, g.path) AS scope_path,
    (SELECT array_agg(v.id ORDER BY v.id) FROM grids v WHERE v.code = g.code) AS scope_ids
"""
_SCOPE_JOIN = """
    LEFT JOIN grids g ON g.id = {owner}.grid_id
    LEFT JOIN LATERAL (
        SELECT c.id, c.path FROM grids c
         WHERE c.code = g.code AND c.valid_to IS NULL
         ORDER BY c.valid_from DESC LIMIT 1) cur ON true
"""

# :now is the injected clock's instant (gis_service.clock); NULL reads the database's.
TOKEN_PRINCIPAL = text(
    f"""
    SELECT t.id AS token_id, t.kind, t.csrf_hash, t.last_used_at,
           u.id, u.username, u.display_name, u.role, u.grid_id, u.person_id,
           {_SCOPE_COLUMNS}
      FROM auth_tokens t
      JOIN users u ON u.id = t.user_id
      {_SCOPE_JOIN.format(owner="u")}
     WHERE t.token_hash = :hash AND t.kind = :kind
       AND t.revoked_at IS NULL AND t.expires_at > coalesce(CAST(:now AS timestamptz), now())
       AND u.active
    """
)

TOUCH_TOKEN = text(
    """
    UPDATE auth_tokens SET last_used_at = now(), ip = coalesce(:ip, ip)
     WHERE id = :id
       AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => :every))
    """
)

KEY_PRINCIPAL = text(
    f"""
    SELECT k.id, k.name, k.scopes, k.grid_id, k.last_used_at, {_SCOPE_COLUMNS}
      FROM api_keys k
      {_SCOPE_JOIN.format(owner="k")}
     WHERE k.key_hash = :hash AND k.revoked_at IS NULL
    """
)

TOUCH_KEY = text(
    """
    UPDATE api_keys SET last_used_at = now(), last_used_ip = :ip
     WHERE id = :id
       AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => :every))
    """
)

# ---- login -------------------------------------------------------------------------------
# clock_timestamp(), not now(): a failure is timed when it happens, after the (slow) argon2
# check, not when its transaction began, so the waits between tries are measured exactly.
# :now is the injected clock's instant (gis_service.clock); NULL reads the database's.
USER_FOR_LOGIN = text(
    """
    SELECT id, username, display_name, password_hash, role, active, failed_logins,
           last_failed_at, locked_until,
           coalesce(CAST(:now AS timestamptz), clock_timestamp()) AS now
      FROM users WHERE username = :username
       FOR UPDATE
    """
)

LOGIN_FAILED = text(
    """
    UPDATE users
       SET failed_logins = failed_logins + 1,
           last_failed_at = coalesce(CAST(:now AS timestamptz), clock_timestamp()),
           locked_until = CASE WHEN failed_logins + 1 >= :max_failures
                               THEN coalesce(CAST(:now AS timestamptz), clock_timestamp())
                                    + make_interval(secs => :lock_seconds)
                               ELSE locked_until END
     WHERE id = :id
    RETURNING failed_logins, locked_until
    """
)

LOGIN_OK = text(
    """
    UPDATE users
       SET failed_logins = 0, last_failed_at = NULL, locked_until = NULL, last_login_at = now(),
           password_hash = coalesce(:rehash, password_hash)
     WHERE id = :id
    """
)

INSERT_TOKEN = text(
    """
    INSERT INTO auth_tokens (user_id, kind, name, token_hash, csrf_hash, created_at,
                             expires_at, ip, user_agent)
    VALUES (:user_id, :kind, :name, :token_hash, :csrf_hash,
            coalesce(CAST(:now AS timestamptz), now()),
            coalesce(CAST(:now AS timestamptz), now()) + make_interval(secs => :ttl_seconds),
            :ip, :user_agent)
    RETURNING id, created_at, expires_at
    """
)

REVOKE_TOKEN = text(
    """
    UPDATE auth_tokens SET revoked_at = now()
     WHERE id = :id AND (CAST(:user_id AS bigint) IS NULL OR user_id = CAST(:user_id AS bigint))
       AND revoked_at IS NULL
    RETURNING id, user_id, kind, name
    """
)

TOKEN_OWNER = text(
    """
    SELECT id, user_id, kind, name, revoked_at FROM auth_tokens
     WHERE id = :id AND (CAST(:user_id AS bigint) IS NULL OR user_id = CAST(:user_id AS bigint))
    """
)

LIST_TOKENS = text(
    """
    SELECT id, kind, name, created_at, expires_at, revoked_at, last_used_at, ip, user_agent
      FROM auth_tokens
     WHERE user_id = :user_id
       AND (:include_revoked
            OR (revoked_at IS NULL AND expires_at > coalesce(CAST(:now AS timestamptz), now())))
     ORDER BY created_at DESC, id DESC
     LIMIT 200
    """
)

REVOKE_USER_TOKENS = text(
    "UPDATE auth_tokens SET revoked_at = now() WHERE user_id = :user_id AND revoked_at IS NULL"
)

# ---- users -------------------------------------------------------------------------------
_USER_COLUMNS = """
    u.id, u.username, u.display_name, u.role, u.grid_id, g.code AS grid_code,
    g.name AS grid_name, u.person_id, u.active, u.failed_logins, u.locked_until,
    u.last_login_at, u.created_at, u.updated_at
"""

LIST_USERS = text(
    f"""
    SELECT {_USER_COLUMNS}
      FROM users u LEFT JOIN grids g ON g.id = u.grid_id
     WHERE (CAST(:role AS text) IS NULL OR u.role = CAST(:role AS text))
       AND (CAST(:active AS boolean) IS NULL OR u.active = CAST(:active AS boolean))
     ORDER BY u.username
     LIMIT :limit OFFSET :offset
    """
)

GET_USER = text(
    f"SELECT {_USER_COLUMNS} FROM users u LEFT JOIN grids g ON g.id = u.grid_id WHERE u.id = :id"
)

GET_USER_BY_NAME = text(
    f"""
    SELECT {_USER_COLUMNS} FROM users u LEFT JOIN grids g ON g.id = u.grid_id
     WHERE u.username = :username
    """
)

INSERT_USER = text(
    """
    INSERT INTO users (username, display_name, password_hash, role, grid_id, person_id)
    VALUES (:username, :display_name, :password_hash, :role, :grid_id, :person_id)
    RETURNING id
    """
)

SET_USER_ACTIVE = text("UPDATE users SET active = :active WHERE id = :id")

SET_PASSWORD = text(
    """
    UPDATE users SET password_hash = :password_hash, failed_logins = 0, locked_until = NULL
     WHERE id = :id
    """
)

UNLOCK_USER = text(
    "UPDATE users SET failed_logins = 0, last_failed_at = NULL, locked_until = NULL WHERE id = :id"
)

GRID_BY_REF = text(
    """
    SELECT id, code, name, level, path FROM grids
     WHERE (id = CAST(:id AS bigint) OR code = CAST(:code AS text)) AND valid_to IS NULL
     ORDER BY valid_from DESC LIMIT 1
    """
)

PERSON_EXISTS = text("SELECT id FROM people WHERE id = :id")

# ---- API keys ----------------------------------------------------------------------------
INSERT_KEY = text(
    """
    INSERT INTO api_keys (name, prefix, key_hash, scopes, grid_id, created_by)
    VALUES (:name, :prefix, :key_hash, CAST(:scopes AS text[]), :grid_id, :created_by)
    RETURNING id, created_at
    """
)

_KEY_COLUMNS = """
    k.id, k.name, k.prefix, k.scopes, k.grid_id, g.code AS grid_code, g.name AS grid_name,
    k.created_at, k.revoked_at, k.last_used_at, k.last_used_ip
"""

LIST_KEYS = text(
    f"""
    SELECT {_KEY_COLUMNS}
      FROM api_keys k LEFT JOIN grids g ON g.id = k.grid_id
     WHERE :include_revoked OR k.revoked_at IS NULL
     ORDER BY k.created_at DESC, k.id DESC
     LIMIT :limit OFFSET :offset
    """
)

GET_KEY = text(
    f"SELECT {_KEY_COLUMNS} FROM api_keys k LEFT JOIN grids g ON g.id = k.grid_id "
    "WHERE k.id = :id OR k.prefix = :prefix"
)

REVOKE_KEY = text(
    "UPDATE api_keys SET revoked_at = now() WHERE id = :id AND revoked_at IS NULL RETURNING id"
)

# ---- audit -------------------------------------------------------------------------------
INSERT_AUDIT = text(
    """
    INSERT INTO audit_log (principal_kind, principal_id, principal_name, action, object_type,
                           object_id, before, after, grid_id, grid_path, ip)
    VALUES (:kind, :principal_id, :name, :action, :object_type, :object_id,
            CAST(:before AS jsonb), CAST(:after AS jsonb), :grid_id,
            coalesce((SELECT path FROM grids WHERE id = CAST(:grid_id AS bigint)), '{}'), :ip)
    RETURNING id
    """
)

# One row per object read (a person under care): who read whose record, when, from where.
INSERT_AUDIT_READS = text(
    """
    INSERT INTO audit_log (principal_kind, principal_id, principal_name, action, object_type,
                           object_id, after, grid_id, grid_path, ip)
    SELECT :kind, :principal_id, :name, :action, :object_type, u.id::text,
           CAST(:after AS jsonb), u.grid_id,
           coalesce((SELECT path FROM grids WHERE id = u.grid_id), '{}'), :ip
      FROM unnest(CAST(:ids AS bigint[]), CAST(:grid_ids AS bigint[])) AS u (id, grid_id)
    """
)

LIST_AUDIT = text(
    """
    SELECT id, at, principal_kind, principal_id, principal_name, action, object_type,
           object_id, before, after, grid_id, ip
      FROM audit_log
     WHERE (CAST(:grid AS bigint) IS NULL OR grid_path @> ARRAY[CAST(:grid AS bigint)])
       AND (CAST(:object_type AS text) IS NULL OR object_type = CAST(:object_type AS text))
       AND (CAST(:object_id AS text) IS NULL OR object_id = CAST(:object_id AS text))
       AND (CAST(:user_id AS bigint) IS NULL
            OR (principal_kind = 'user' AND principal_id = CAST(:user_id AS bigint)))
       AND (CAST(:action AS text) IS NULL OR action = CAST(:action AS text))
       AND (CAST(:since AS timestamptz) IS NULL OR at >= CAST(:since AS timestamptz))
       AND (CAST(:until AS timestamptz) IS NULL OR at < CAST(:until AS timestamptz))
     ORDER BY at DESC, id DESC
     LIMIT :limit OFFSET :offset
    """
)

# ---- rate limits -------------------------------------------------------------------------
# One row per bucket and fixed window; the upsert makes concurrent hits count exactly.
# :now is the injected clock's instant (gis_service.clock); NULL reads the database's.
RATE_HIT = text(
    """
    INSERT INTO rate_limits (bucket, window_start, hits)
    VALUES (:bucket,
            to_timestamp(floor(extract(epoch FROM coalesce(CAST(:now AS timestamptz), now()))
                               / :window) * :window),
            1)
    ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + 1
    RETURNING hits,
              extract(epoch FROM window_start + make_interval(secs => :window)
                                 - coalesce(CAST(:now AS timestamptz), now())) AS seconds_left
    """
)

RATE_PRUNE = text(
    "DELETE FROM rate_limits"
    " WHERE window_start < coalesce(CAST(:now AS timestamptz), now()) - interval '1 day'"
)
