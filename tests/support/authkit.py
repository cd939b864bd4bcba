"""Helpers of the account and permission tests (which write users, keys, tokens and reports
in a copy of the demo district of their own): users of every role bound to known grids, and
credentials."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from gis_service.auth import admin, service
from gis_service.auth.principal import Principal
from gis_service.config import Settings

PASSWORD = "correct horse battery staple"


def app_settings(url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test app: generous limits unless a test lowers them."""
    values: dict[str, Any] = {
        "database_url": url,
        "data_dir": data_dir,
        "load_demo": False,
        "login_ip_per_minute": 10_000,
        "anon_reports_per_hour": 10_000,
        "login_delay_seconds": 0.2,
        "trusted_proxies": ["testclient"],
        **overrides,
    }
    return Settings(**values)


@dataclass
class Scopes:
    """Known grids and hazards of the demo district: G1 in C1 in S1; everything "outside"
    lies in another street S2."""

    street: int
    community: int
    grid: int
    grid_leader_person: int | None
    other_street: int
    other_grid: int
    inside_hazard: int
    outside_hazard: int
    inside_facility: int
    outside_facility: int
    paths: dict[int, list[int]] = field(default_factory=dict)


def find_scopes(engine: Engine) -> Scopes:
    """Pick G1 (a grid with an open hazard that has a reporter phone) and an open hazard with
    a reporter phone in another street."""
    with engine.connect() as conn:
        inside = conn.execute(
            text(
                """
                SELECT h.id, g.id AS grid, g.path
                  FROM hazards h JOIN grids g ON g.id = ANY (h.grid_path) AND g.level = 'grid'
                 WHERE h.status NOT IN ('closed', 'rejected') AND h.reporter_phone IS NOT NULL
                 ORDER BY h.id LIMIT 1
                """
            )
        ).one()
        street, community, grid = inside.path[0], inside.path[1], inside.path[2]
        outside = conn.execute(
            text(
                """
                SELECT h.id, h.grid_path FROM hazards h
                 WHERE h.status NOT IN ('closed', 'rejected') AND h.reporter_phone IS NOT NULL
                   AND NOT h.grid_path @> ARRAY[CAST(:street AS bigint)]
                 ORDER BY h.id LIMIT 1
                """
            ),
            {"street": street},
        ).one()
        other_grid = conn.execute(
            text(
                "SELECT id FROM grids WHERE level = 'grid' AND path[1] = :s AND valid_to IS NULL"
                " ORDER BY id LIMIT 1"
            ),
            {"s": outside.grid_path[0]},
        ).scalar_one()
        leader = conn.execute(
            text(
                # The current leader: since people (issue 17) the table keeps past roles too.
                "SELECT person_id FROM grid_assignments WHERE grid_id = :g AND is_primary"
                " AND valid_from <= now() AND (valid_to IS NULL OR valid_to > now())"
                " ORDER BY valid_from DESC, id LIMIT 1"
            ),
            {"g": grid},
        ).scalar()
        facility_sql = text(
            """
            SELECT f.id FROM facilities f JOIN grids g ON ST_Covers(g.geom, f.geom)
             WHERE g.id = :g ORDER BY f.id LIMIT 1
            """
        )
        inside_facility = conn.execute(facility_sql, {"g": grid}).scalar_one()
        outside_facility = conn.execute(facility_sql, {"g": other_grid}).scalar_one()
    return Scopes(
        street=street,
        community=community,
        grid=grid,
        grid_leader_person=leader,
        other_street=outside.grid_path[0],
        other_grid=other_grid,
        inside_hazard=inside.id,
        outside_hazard=outside.id,
        inside_facility=inside_facility,
        outside_facility=outside_facility,
    )


def make_user(
    engine: Engine,
    role: str,
    grid: int | None = None,
    person_id: int | None = None,
    password: str = PASSWORD,
    username: str | None = None,
) -> dict[str, Any]:
    """Create a user with a unique name."""
    with engine.connect() as conn:
        return admin.create_user(
            conn,
            None,
            username=username or f"{role.replace('_', '')}-{uuid.uuid4().hex[:8]}",
            display_name=f"测试{role}",
            password=password,
            role=role,
            grid=grid,
            person_id=person_id,
        )


def bearer_for(engine: Engine, settings: Settings, user_id: int) -> dict[str, str]:
    """Headers with a fresh bearer token of the user (no password check: faster)."""
    with engine.connect() as conn, conn.begin():
        _, token, _, _, _ = service.issue_token(conn, settings, user_id, "bearer")
    return {"Authorization": f"Bearer {token}"}


def key_for(engine: Engine, scopes: list[str], grid: int | None = None) -> tuple[dict, str]:
    """A new API key row and its secret."""
    with engine.connect() as conn:
        return admin.create_key(
            conn, None, name=f"key-{uuid.uuid4().hex[:6]}", scopes=scopes, grid=grid
        )


def system_principal() -> Principal | None:
    """The principal CLI commands act as (None = system)."""
    return None
