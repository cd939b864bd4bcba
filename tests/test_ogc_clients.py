"""Real clients against /ogc on a real uvicorn server: OWSLib and GDAL's OAPIF driver."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from gis_service.config import Settings
from gis_service.db.engine import make_engine
from tests.support.databases import Databases
from tests.support.ogc_world import build_ogc_database
from tests.support.servers import NO_PROXY, Server

# Rows each collection must serve, straight from the tables.
COUNTS = """
    SELECT 'grids_' || level, count(*) FROM grids WHERE valid_to IS NULL GROUP BY level
    UNION ALL
    SELECT 'facilities_' || type_code, count(*) FROM facilities GROUP BY type_code
    UNION ALL
    SELECT 'hazards_open', count(*) FROM hazards WHERE status NOT IN ('closed', 'rejected')
"""


@pytest.fixture(scope="module")
def served(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    url = build_ogc_database(databases, "ogccli")
    engine = make_engine(url, pool_size=1)
    with engine.connect() as conn:
        counts = {cid: n for cid, n in conn.execute(text(COUNTS))}
    engine.dispose()
    settings = Settings(
        database_url=url, data_dir=tmp_path_factory.mktemp("ogccli"), load_demo=False
    )
    with Server(settings) as base:
        yield {"base": base, "counts": counts}


def test_owslib_reads_every_collection(served: dict) -> None:
    from owslib.ogcapi.features import Features

    api = Features(served["base"] + "/ogc")
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
        in (api.conformance()["conformsTo"])
    )
    assert api.api()["openapi"].startswith("3.0.")
    ids = api.feature_collections()
    counts = served["counts"]
    assert set(counts) <= set(ids)
    for cid in ids:
        expected = counts.get(cid, 0)
        meta = api.collection(cid)
        assert meta["id"] == cid
        queryables = api.collection_queryables(cid)
        assert "geometry" in queryables["properties"]
        seen: list[int] = []
        offset = 0
        while True:
            page = api.collection_items(cid, limit=70, offset=offset)
            assert page["numberMatched"] == expected, cid
            seen += [f["id"] for f in page["features"]]
            if not any(lk["rel"] == "next" for lk in page["links"]):
                break
            offset += 70
        assert len(seen) == len(set(seen)) == expected, cid
    filtered = api.collection_items(
        "facilities_ebike_charger", filter="status = 'damaged' AND ports > 6", limit=100
    )
    assert 0 < filtered["numberMatched"] < counts["facilities_ebike_charger"]
    assert all(f["properties"]["status"] == "damaged" for f in filtered["features"])
    item_id = filtered["features"][0]["id"]
    assert api.collection_item("facilities_ebike_charger", item_id)["id"] == item_id


def _gdal_env() -> dict[str, str]:
    env = {**os.environ, **NO_PROXY}
    env.update(GDAL_HTTP_TIMEOUT="60", CPL_DEBUG="OFF")
    return env


def _feature_count(gpkg: Path, layer: str) -> int:
    out = subprocess.run(
        ["ogrinfo", "-so", "-ro", str(gpkg), layer],
        check=True,
        capture_output=True,
        text=True,
        env=_gdal_env(),
        timeout=120,
    ).stdout
    match = re.search(r"^Feature Count: (\d+)", out, re.MULTILINE)
    assert match, out
    return int(match.group(1))


@pytest.mark.skipif(shutil.which("ogr2ogr") is None, reason="GDAL's ogr2ogr is not installed")
@pytest.mark.parametrize(
    ("layer", "page_size"),
    [
        ("grids_micro_grid", 50),
        ("grids_grid", 50),
        ("facilities_sewage_cover", 37),
        ("facilities_sewer_pipe", 1000),
        ("hazards_open", 10),
    ],
)
def test_gdal_copies_whole_layers(served: dict, tmp_path: Path, layer: str, page_size: int) -> None:
    out = tmp_path / f"{layer}.gpkg"
    source = f"OAPIF:{served['base']}/ogc"
    proc = subprocess.run(
        ["ogr2ogr", "-f", "GPKG", str(out), source, layer, "-oo", f"PAGE_SIZE={page_size}"],
        capture_output=True,
        text=True,
        env=_gdal_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert _feature_count(out, layer) == served["counts"][layer]


@pytest.mark.skipif(shutil.which("ogr2ogr") is None, reason="GDAL's ogr2ogr is not installed")
def test_gdal_where_uses_queryables(served: dict, tmp_path: Path) -> None:
    """An attribute filter on a declared queryable reaches the server as ?status=damaged."""
    out = tmp_path / "damaged.gpkg"
    layer = "facilities_ebike_charger"
    source = f"OAPIF:{served['base']}/ogc"
    proc = subprocess.run(
        ["ogr2ogr", "-f", "GPKG", str(out), source, layer, "-where", "status = 'damaged'"],
        capture_output=True,
        text=True,
        env=_gdal_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    engine_counts = served["counts"][layer]
    damaged = _feature_count(out, layer)
    assert 0 < damaged < engine_counts
    assert damaged == 33  # ebike chargers 0..99 with i % 3 == 1
