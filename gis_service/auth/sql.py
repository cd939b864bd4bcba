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

# Unknown usernames: the same counters in login_failures (no enumeration, finding 10).
UNKNOWN_FOR_LOGIN = text(
    """
    SELECT failed_logins, last_failed_at, locked_until,
           coalesce(CAST(:now AS timestamptz), clock_timestamp()) AS now
      FROM login_failures WHERE username = :username
       FOR UPDATE
    """
)
UNKNOWN_FAILED = text(
    """
    INSERT INTO login_failures AS f (username, failed_logins, last_failed_at, locked_until)
    VALUES (:username, 1, coalesce(CAST(:now AS timestamptz), clock_timestamp()),
            CASE WHEN 1 >= :max_failures
                 THEN coalesce(CAST(:now AS timestamptz), clock_timestamp())
                      + make_interval(secs => :lock_seconds) END)
    ON CONFLICT (username) DO UPDATE
       SET failed_logins = CASE WHEN :reset THEN 1 ELSE f.failed_logins + 1 END,
           last_failed_at = excluded.last_failed_at,
           locked_until = CASE WHEN (CASE WHEN :reset THEN 1 ELSE f.failed_logins + 1 END)
                                    >= :max_failures
                               THEN excluded.last_failed_at
                                    + make_interval(secs => :lock_seconds)
                          END
    RETURNING failed_logins, locked_until
    """
)
UNKNOWN_PRUNE = text(
    """
    DELETE FROM login_failures
     WHERE last_failed_at < coalesce(CAST(:now AS timestamptz), now()) - interval '1 day'
       AND (locked_until IS NULL
            OR locked_until < coalesce(CAST(:now AS timestamptz), now()))
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
                             expires_at, ip, user_agent, parent_id)
    VALUES (:user_id, :kind, :name, :token_hash, :csrf_hash,
            coalesce(CAST(:now AS timestamptz), now()),
            -- a token minted with another expires with it at the latest (LEAST skips NULL)
            LEAST(coalesce(CAST(:now AS timestamptz), now()) + make_interval(secs => :ttl_seconds),
                  (SELECT p.expires_at FROM auth_tokens p
                    WHERE p.id = CAST(:parent_id AS bigint))),
            :ip, :user_agent, CAST(:parent_id AS bigint))
    RETURNING id, created_at, expires_at
    """
)

# Revoking a token revokes every token minted with it (and theirs); the row of the token
# named comes back first.
REVOKE_TOKEN = text(
    """
    WITH RECURSIVE family (id) AS (
        SELECT id FROM auth_tokens
         WHERE id = :id
           AND (CAST(:user_id AS bigint) IS NULL OR user_id = CAST(:user_id AS bigint))
        UNION
        SELECT c.id FROM auth_tokens c JOIN family f ON c.parent_id = f.id
    )
    UPDATE auth_tokens t SET revoked_at = now()
      FROM family f
     WHERE t.id = f.id AND t.revoked_at IS NULL
    RETURNING t.id, t.user_id, t.kind, t.name
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
    g.name AS grid_name, g.path AS grid_path, u.person_id, p.name AS person_name, u.active,
    u.failed_logins, u.locked_until, u.last_login_at, u.created_at, u.updated_at
"""
_USER_FROM = """
    users u LEFT JOIN grids g ON g.id = u.grid_id LEFT JOIN people p ON p.id = u.person_id
"""

# :scope is the caller's subtree (NULL: everything); admins, who have no grid, lie outside
# every subtree.
LIST_USERS = text(
    f"""
    SELECT {_USER_COLUMNS}
      FROM {_USER_FROM}
     WHERE (CAST(:role AS text) IS NULL OR u.role = CAST(:role AS text))
       AND (CAST(:active AS boolean) IS NULL OR u.active = CAST(:active AS boolean))
       AND (CAST(:scope AS bigint[]) IS NULL OR g.path && CAST(:scope AS bigint[]))
       AND (CAST(:within AS bigint[]) IS NULL OR g.path && CAST(:within AS bigint[]))
       AND (CAST(:q AS text) IS NULL OR u.username ILIKE '%' || CAST(:q AS text) || '%'
            OR u.display_name ILIKE '%' || CAST(:q AS text) || '%'
            OR p.name ILIKE '%' || CAST(:q AS text) || '%')
     ORDER BY u.username
     LIMIT :limit OFFSET :offset
    """
)

GET_USER = text(f"SELECT {_USER_COLUMNS} FROM {_USER_FROM} WHERE u.id = :id")

GET_USER_BY_NAME = text(f"SELECT {_USER_COLUMNS} FROM {_USER_FROM} WHERE u.username = :username")

UPDATE_USER = text(
    """
    UPDATE users SET display_name = :display_name, role = :role, grid_id = :grid_id,
                     person_id = :person_id
     WHERE id = :id
    """
)

# The account a person is linked to, other than :user_id.
ACCOUNT_OF_PERSON = text(
    """
    SELECT id, username FROM users
     WHERE person_id = :person_id AND id IS DISTINCT FROM CAST(:user_id AS bigint)
    """
)

GRID_VERSIONS = text("SELECT array_agg(id ORDER BY id) FROM grids WHERE code = :code")

INSERT_USER = text(
    """
    INSERT INTO users (username, display_name, password_hash, role, grid_id, person_id)
    VALUES (:username, :display_name, :password_hash, :role, :grid_id, :person_id)
    ON CONFLICT ON CONSTRAINT users_username_key DO NOTHING
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
    g.path AS grid_path, k.created_at, k.revoked_at, k.last_used_at, k.last_used_ip
"""

LIST_KEYS = text(
    f"""
    SELECT {_KEY_COLUMNS}
      FROM api_keys k LEFT JOIN grids g ON g.id = k.grid_id
     WHERE (:include_revoked OR k.revoked_at IS NULL)
       AND (CAST(:scope AS bigint[]) IS NULL OR g.path && CAST(:scope AS bigint[]))
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
                           object_id, before, after, grid_id, grid_path, ip, reason)
    VALUES (:kind, :principal_id, :name, :action, :object_type, :object_id,
            CAST(:before AS jsonb), CAST(:after AS jsonb), :grid_id,
            coalesce((SELECT path FROM grids WHERE id = CAST(:grid_id AS bigint)), '{}'), :ip,
            :reason)
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
           object_id, before, after, grid_id, ip, reason
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
