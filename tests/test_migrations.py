"""Migrations run up, down and up again; the database itself enforces the data rules."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from gis_service.auth.roles import ROLES
from gis_service.db import migrate
from gis_service.db.engine import make_engine
from gis_service.facilities.states import FACILITY_STATUSES
from gis_service.grids.levels import GRID_LEVELS
from gis_service.hazards.states import HAZARD_STATUSES
from tests.support.databases import POSTGIS, Databases

SQUARE = "ST_Multi(ST_MakeEnvelope(113.60, 34.70, 113.61, 34.71, 4326))"


@pytest.fixture()
def fresh(databases: Databases):
    """A database with PostGIS and nothing else: the migrations are what these tests run."""
    url = databases.new("mig", POSTGIS)
    eng = make_engine(url, pool_size=1)
    yield eng
    eng.dispose()
    databases.drop(url)


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_up_down_up(fresh: Engine) -> None:
    migrate.upgrade(fresh)
    assert migrate.current(fresh) == migrate.head(fresh)
    assert {"grids", "hazards", "hazard_events", "facilities"} <= _tables(fresh)
    migrate.downgrade(fresh)
    assert migrate.current(fresh) is None
    assert _tables(fresh) <= {"alembic_version", "spatial_ref_sys"}
    migrate.upgrade(fresh)
    assert migrate.current(fresh) == migrate.head(fresh)


def _check_values(conn, constraint: str) -> list[str]:
    """The quoted values a CHECK (column IN (…)) constraint allows, in its order."""
    definition = conn.execute(
        text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = :name"),
        {"name": constraint},
    ).scalar_one()
    return re.findall(r"'([a-z_]+)'::text", definition)


def test_python_lists_mirror_the_schema(engine: Engine) -> None:
    """The lists the code keeps of states, roles and levels are the ones the schema enforces:
    the migrations are the one description of the tables, and these are their mirrors."""
    with engine.connect() as conn:
        assert _check_values(conn, "hazards_status") == list(HAZARD_STATUSES)
        assert _check_values(conn, "facilities_status") == list(FACILITY_STATUSES)
        assert _check_values(conn, "users_role") == list(ROLES)
        levels = conn.execute(text("SELECT code FROM grid_levels ORDER BY rank")).scalars()
        assert tuple(levels) == GRID_LEVELS


def _insert_grid(conn, code: str, level: str, geom: str = SQUARE, parent: str | None = None):
    return conn.execute(
        text(
            f"INSERT INTO grids (code, name, level, parent_id, geom) VALUES "
            f"(:code, :code, :level, (SELECT id FROM grids WHERE code = :parent), {geom}) "
            "RETURNING id, path"
        ),
        {"code": code, "level": level, "parent": parent},
    ).one()


@pytest.mark.parametrize(
    ("geom", "constraint"),
    [
        ("ST_Multi(ST_MakeEnvelope(113.6, 34.7, 113.61, 34.71, 3857))", "SRID"),
        ("ST_Multi(ST_MakeEnvelope(113.6, 34.7, 213.61, 34.71, 4326))", "grids_geom_lonlat"),
        (
            "ST_GeomFromText('MULTIPOLYGON(((0 0, 1 1, 1 0, 0 1, 0 0)))', 4326)",
            "grids_geom_valid",
        ),
        ("ST_GeomFromText('MULTIPOLYGON EMPTY', 4326)", "grids_geom"),
        ("ST_SetSRID(ST_MakePoint(113.6, 34.7), 4326)", "Geometry type"),
    ],
)
def test_database_rejects_bad_geometry(fresh: Engine, geom: str, constraint: str) -> None:
    migrate.upgrade(fresh)
    with pytest.raises(DBAPIError) as err, fresh.begin() as conn:
        _insert_grid(conn, "bad", "street", geom)
    assert constraint in str(err.value.orig)


def test_database_rejects_unknown_status_and_level(fresh: Engine) -> None:
    migrate.upgrade(fresh)
    with pytest.raises(IntegrityError), fresh.begin() as conn:
        _insert_grid(conn, "x", "province")
    with pytest.raises(IntegrityError) as err, fresh.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO departments (code, name_zh) VALUES ('d1', '部门');"
                "INSERT INTO hazard_categories (code, name_zh, name_en, report_class, sla_hours)"
                " VALUES ('c1', '类', 'c', 'safety_hazard', 24);"
                "INSERT INTO hazards (public_code, category_code, description, status, source,"
                " geom) VALUES ('H1', 'c1', 'x', 'lost', 'patrol',"
                " ST_SetSRID(ST_MakePoint(113.6, 34.7), 4326))"
            )
        )
    assert "hazards_status" in str(err.value.orig)


def test_path_trigger_and_level_order(fresh: Engine) -> None:
    migrate.upgrade(fresh)
    with fresh.begin() as conn:
        street = _insert_grid(conn, "S1", "street")
        comm = _insert_grid(conn, "C1", "community", parent="S1")
        grid = _insert_grid(conn, "G1", "grid", parent="C1")
        assert grid.path == [street.id, comm.id, grid.id]
        parts = conn.execute(text("SELECT count(*) FROM grid_parts")).scalar()
        assert parts >= 3
        # Re-parenting a grid re-derives the paths of its whole subtree.
        street2 = _insert_grid(conn, "S2", "street")
        conn.execute(text("UPDATE grids SET parent_id = :p WHERE code = 'C1'"), {"p": street2.id})
        path = conn.execute(text("SELECT path FROM grids WHERE code = 'G1'")).scalar()
        assert path == [street2.id, comm.id, grid.id]
    with pytest.raises(IntegrityError, match="cannot have a grid grid as its parent"):
        with fresh.begin() as conn:
            _insert_grid(conn, "S3", "street")
            _insert_grid(conn, "C3", "community", parent="G1")


def test_one_version_of_a_code_at_a_time(fresh: Engine) -> None:
    migrate.upgrade(fresh)
    with fresh.begin() as conn:
        _insert_grid(conn, "S1", "street")
    with pytest.raises(IntegrityError, match="grids_no_overlapping_versions"):
        with fresh.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO grids (code, name, level, geom, valid_from)"
                    f" VALUES ('S1', 'again', 'street', {SQUARE}, now() + interval '1 second')"
                )
            )
    # Ending the old version first (a redraw) makes room for the new one.
    with fresh.begin() as conn:
        conn.execute(text("UPDATE grids SET valid_to = now() + interval '1 day' WHERE code='S1'"))
        conn.execute(
            text(
                "INSERT INTO grids (code, name, level, geom, valid_from)"
                f" VALUES ('S1', 'redrawn', 'street', {SQUARE}, now() + interval '1 day')"
            )
        )
        assert conn.execute(text("SELECT count(*) FROM grids WHERE code='S1'")).scalar() == 2


def _migration(name: str) -> Any:
    """The module of migrations/versions/<name>.py."""
    return migrate.revision_module(name)


def test_migration_lists_match_the_state_machine() -> None:
    """The CHECK constraints of migration 0007 list every state and action the code uses."""
    from gis_service.hazards.states import HAZARD_STATUSES
    from gis_service.hazards.workflow import ACTIONS

    module = _migration("0007_case_exceptions")
    assert set(module.STATUSES) == set(HAZARD_STATUSES)
    # report, update (imports) and whistle (吹哨报到) are events that are not moves
    assert set(module.ACTIONS) == set(ACTIONS) | {"report", "update", "whistle"}


def test_tile_cache_triggers_know_the_closed_states() -> None:
    """The tile-cache triggers' migration treats as closed exactly the code's closed states."""
    from gis_service.hazards.states import CLOSED_STATUSES

    assert set(_migration("0011_tile_cache").CLOSED_STATUSES) == set(CLOSED_STATUSES)


def test_order_states_match_migration_0009() -> None:
    """The CHECK constraint of service orders lists the order machine's states."""
    from gis_service.orders.workflow import ORDER_STATUSES

    assert set(_migration("0009_service_orders").STATUSES) == set(ORDER_STATUSES)


def test_no_postgis_column_is_indexed_with_spgist(engine: Engine) -> None:
    """PostGIS 3.3's SP-GiST opclasses end the backend with signal 11 on an index-only scan
    without an index condition (``SELECT count(*) FROM grid_parts WHERE rank = 4`` chose one
    on the partial SP-GiST index of revision 0017), and PostgreSQL then resets every
    connection: no geometry may be indexed that way (migration 0021_parts_gist)."""
    with engine.connect() as conn:
        found = conn.execute(
            text(
                """
                SELECT i.indexrelid::regclass::text
                  FROM pg_index i
                  JOIN pg_class c ON c.oid = i.indexrelid
                  JOIN pg_am am ON am.oid = c.relam
                  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                 WHERE am.amname = 'spgist'
                   AND a.atttypid IN ('geometry'::regtype, 'geography'::regtype)
                """
            )
        ).scalars()
        assert sorted(found) == []
        # The scan that crashed, answered now (through an index, as the planner prefers it).
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        for rank in (1, 2, 3, 4, 5):
            conn.execute(
                text("SELECT count(*) FROM grid_parts WHERE rank = :rank"), {"rank": rank}
            ).scalar_one()
