"""OGC API – Features under /ogc: documents, links, paging, clamping, filters and CQL2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_service.app import create_app
from gis_service.catalog import load_catalog
from gis_service.config import PROJECT_ROOT, Settings
from gis_service.db.engine import make_engine
from gis_service.ogc import cql2
from tests.support.databases import Databases
from tests.support.ogc_world import MICRO_COUNT, build_ogc_database

GEOJSON = "application/geo+json"


@pytest.fixture(scope="module")
def ogc_db(databases: Databases) -> str:
    return build_ogc_database(databases)


@pytest.fixture(scope="module")
def db(ogc_db: str) -> Iterator[Engine]:
    engine = make_engine(ogc_db, pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def client(ogc_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        database_url=ogc_db,
        data_dir=tmp_path_factory.mktemp("ogc"),
        load_demo=False,
        default_limit=20,
        max_limit=100,
    )
    with TestClient(create_app(settings)) as c:
        yield c


def scalar(db: Engine, sql: str, **params: Any) -> Any:
    with db.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def ids(db: Engine, sql: str, **params: Any) -> list[int]:
    with db.connect() as conn:
        return sorted(r[0] for r in conn.execute(text(sql), params))


def get_items(client: TestClient, cid: str, **params: Any) -> dict[str, Any]:
    r = client.get(f"/ogc/collections/{cid}/items", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(GEOJSON)
    return r.json()


def all_ids(client: TestClient, cid: str, **params: Any) -> list[int]:
    """Every feature id of a filtered collection, read through the next links."""
    first = get_items(client, cid, limit=100, **params)
    out = [f["id"] for f in first["features"]]
    body = first
    while nxt := [lk for lk in body["links"] if lk["rel"] == "next"]:
        r = client.get(nxt[0]["href"])
        assert r.status_code == 200, r.text
        body = r.json()
        out += [f["id"] for f in body["features"]]
    assert len(out) == first["numberMatched"]
    return sorted(out)


def assert_error(r: Any, status: int = 400, words: str = "") -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message", "details"}
    assert words.lower() in body["message"].lower(), body["message"]
    return body


def check_links(links: list[dict[str, Any]]) -> None:
    for lk in links:
        assert lk.get("rel") and lk.get("type") and lk.get("href"), lk


# ---- documents ---------------------------------------------------------------------------------


def test_landing_page_links(client: TestClient) -> None:
    for path in ("/ogc", "/ogc/"):
        r = client.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        links = r.json()["links"]
        check_links(links)
        rels = {lk["rel"]: lk for lk in links}
        assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
        assert rels["service-desc"]["href"].endswith("/ogc/api")
        assert rels["service-doc"]["type"] == "text/html"
        assert rels["service-doc"]["href"].endswith("/docs")
        assert rels["conformance"]["href"].endswith("/ogc/conformance")
        assert rels["data"]["href"].endswith("/ogc/collections")
        assert rels["self"]["type"] == "application/json"


def test_conformance(client: TestClient) -> None:
    classes = client.get("/ogc/conformance").json()["conformsTo"]
    for name in (
        "ogcapi-features-1/1.0/conf/core",
        "ogcapi-features-1/1.0/conf/geojson",
        "ogcapi-features-1/1.0/conf/oas30",
        "ogcapi-features-3/1.0/conf/filter",
        "ogcapi-features-3/1.0/conf/features-filter",
        "ogcapi-features-3/1.0/conf/queryables",
        "cql2/1.0/conf/cql2-text",
        "cql2/1.0/conf/basic-cql2",
        "cql2/1.0/conf/basic-spatial-functions",
    ):
        assert f"http://www.opengis.net/spec/{name}" in classes
    assert not any(c.endswith("/html") for c in classes)


def test_openapi_30_document(client: TestClient) -> None:
    r = client.get("/ogc/api")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    doc = r.json()
    assert doc["openapi"].startswith("3.0.")
    assert doc["servers"][0]["url"].endswith("/ogc")
    paths = doc["paths"]
    for p in ("/", "/conformance", "/collections", "/collections/grids_micro_grid/items"):
        assert p in paths
    assert "/collections/facilities_sewage_cover/items/{featureId}" in paths
    limit = doc["components"]["parameters"]["limit"]["schema"]
    # OGC 17-069r4 /req/core/fc-limit-response-1: a larger limit is clamped, not refused, so
    # the schema names the maximum in words only (a "maximum" would promise a 400).
    assert (
        "maximum" not in limit
        and limit["default"] == 20
        and "at most 100" in (doc["components"]["parameters"]["limit"]["description"])
    )
    params = paths["/collections/facilities_ebike_charger/items"]["get"]["parameters"]
    names = {p.get("name") for p in params}
    assert {"status", "ports", "code"} <= names
    # 3.0 has no type arrays and no "null" type (those are 3.1 / JSON Schema 2020-12).
    text_doc = json.dumps(doc)
    assert '"type": ["' not in text_doc and '"type": "null"' not in text_doc
    refs = {v for v in _walk(doc, "$ref")}
    for ref in refs:
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]


def _walk(node: Any, key: str) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            else:
                yield from _walk(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, key)


def test_collections_and_extent(client: TestClient, db: Engine) -> None:
    r = client.get("/ogc/collections")
    assert r.status_code == 200
    body = r.json()
    check_links(body["links"])
    colls = {c["id"]: c for c in body["collections"]}
    expected = {f"grids_{lv}" for lv in ("street", "community", "grid", "micro_grid", "special")}
    expected |= {f"facilities_{t}" for t in load_catalog(PROJECT_ROOT / "layers").facility_types}
    expected.add("hazards_open")
    assert set(colls) == expected
    for c in colls.values():
        check_links(c["links"])
        assert c["itemType"] == "feature"
        rels = {lk["rel"] for lk in c["links"]}
        assert {"self", "items", "http://www.opengis.net/def/rel/ogc/1.0/queryables"} <= rels
    micro = colls["grids_micro_grid"]
    assert micro["title"] == "微网格（四级网格）"
    assert micro["extent"]["spatial"]["crs"].endswith("/OGC/1.3/CRS84")
    bbox = micro["extent"]["spatial"]["bbox"][0]
    assert bbox == pytest.approx([113.600, 34.700, 113.625, 34.710], abs=2e-5)
    with db.connect() as conn:
        row = conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom)"
                " e FROM facilities WHERE type_code = 'ebike_charger') x"
            )
        ).one()
    assert colls["facilities_ebike_charger"]["extent"]["spatial"]["bbox"][0] == pytest.approx(
        list(row), abs=1e-9
    )
    start, end = micro["extent"]["temporal"]["interval"][0]
    assert start.startswith("2022-01-01") and end is None
    hz = colls["hazards_open"]["extent"]["temporal"]["interval"][0]
    assert hz[0].startswith("2024-05-01") and hz[1] is not None
    assert "extent" not in colls["facilities_camera"]  # no cameras in this dataset
    one = client.get("/ogc/collections/grids_micro_grid")
    assert one.status_code == 200 and one.json()["extent"] == micro["extent"]
    assert_error(client.get("/ogc/collections/nope"), 404, "no collection")


def test_queryables(client: TestClient) -> None:
    r = client.get("/ogc/collections/facilities_ebike_charger/queryables")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/schema+json")
    q = r.json()
    assert q["type"] == "object" and q["$schema"].startswith("https://json-schema.org/")
    assert q["properties"]["geometry"]["x-ogc-role"] == "primary-geometry"
    assert q["properties"]["ports"]["type"] == "integer"
    assert q["properties"]["auto_cutoff"]["type"] == "boolean"
    assert "damaged" in q["properties"]["status"]["enum"]
    grids = client.get("/ogc/collections/grids_micro_grid/queryables").json()["properties"]
    assert grids["building_floors"]["type"] == "integer"
    assert grids["unmanaged_compound"]["type"] == "boolean"
    assert grids["kind"]["type"] == "string"
    hazards = client.get("/ogc/collections/hazards_open/queryables").json()["properties"]
    assert hazards["reported_at"]["format"] == "date-time"
    assert not any("reporter" in name for name in hazards)


# ---- items: paging, links, clamping --------------------------------------------------------------


def test_items_page_shape_and_links(client: TestClient) -> None:
    body = get_items(client, "grids_micro_grid", limit=10)
    assert body["type"] == "FeatureCollection"
    assert body["numberMatched"] == MICRO_COUNT and body["numberReturned"] == 10
    assert body["timeStamp"].startswith("20")
    check_links(body["links"])
    rels = {lk["rel"]: lk for lk in body["links"]}
    assert rels["self"]["type"] == GEOJSON
    assert rels["alternate"]["type"] == "application/json"
    assert "f=json" in rels["alternate"]["href"]
    assert "prev" not in rels
    nxt = parse_qs(urlsplit(rels["next"]["href"]).query)
    assert nxt["limit"] == ["10"] and nxt["offset"] == ["10"]
    f = body["features"][0]
    lon, lat = f["geometry"]["coordinates"][0][0][0]
    assert 113 < lon < 114 and 34 < lat < 35  # CRS84: lon first
    props = f["properties"]
    assert props["level"] == "micro_grid" and props["parent_code"].startswith("410103900001")
    assert props["building_floors"] >= 3 and isinstance(props["unmanaged_compound"], bool)
    led = [f["properties"] for f in body["features"] if f["properties"]["leader_name"]]
    assert led and led[0]["leader_phone"].startswith("0371")
    assert any(f["properties"]["leader_name"] is None for f in body["features"])
    alt = client.get(rels["alternate"]["href"])
    assert alt.headers["content-type"].startswith("application/json")
    assert alt.json()["features"] == body["features"]


def test_paging_to_the_end(client: TestClient, db: Engine) -> None:
    expected = ids(db, "SELECT id FROM grids WHERE level = 'micro_grid' AND valid_to IS NULL")
    assert len(expected) == MICRO_COUNT
    seen: list[int] = []
    returned = 0
    url: str | None = "/ogc/collections/grids_micro_grid/items?limit=33"
    pages = 0
    while url:
        body = client.get(url).json()
        assert body["numberMatched"] == MICRO_COUNT
        returned += body["numberReturned"]
        assert body["numberReturned"] == len(body["features"])
        seen += [f["id"] for f in body["features"]]
        if pages:
            assert any(lk["rel"] == "prev" for lk in body["links"])
        nxt = [lk["href"] for lk in body["links"] if lk["rel"] == "next"]
        url = nxt[0] if nxt else None
        pages += 1
    assert pages == 8
    assert returned == MICRO_COUNT == len(set(seen))
    assert seen == expected  # ordered by id, no duplicates, none missing


def test_limit_is_clamped(client: TestClient) -> None:
    assert get_items(client, "grids_micro_grid", limit=10**30)["numberReturned"] == 100
    body = get_items(client, "grids_micro_grid", limit=100000)
    assert body["numberReturned"] == 100  # max_limit of the test settings
    nxt = next(lk["href"] for lk in body["links"] if lk["rel"] == "next")
    assert parse_qs(urlsplit(nxt).query)["limit"] == ["100"]
    self_ = next(lk["href"] for lk in body["links"] if lk["rel"] == "self")
    assert parse_qs(urlsplit(self_).query)["limit"] == ["100"]
    assert get_items(client, "grids_micro_grid")["numberReturned"] == 20  # default_limit
    assert_error(client.get("/ogc/collections/grids_micro_grid/items?limit=0"), 400, "limit")
    assert_error(client.get("/ogc/collections/grids_micro_grid/items?limit=x"), 400, "limit")
    assert_error(client.get("/ogc/collections/grids_micro_grid/items?offset=-1"), 400, "offset")


def test_offset_past_the_end(client: TestClient) -> None:
    body = get_items(client, "grids_micro_grid", offset=1000)
    assert body["numberReturned"] == 0 and body["features"] == []
    assert not any(lk["rel"] == "next" for lk in body["links"])


def test_unknown_parameters_are_400(client: TestClient) -> None:
    body = assert_error(client.get("/ogc/collections/grids_micro_grid/items?foo=1"), 400, "foo")
    assert body["code"] == "bad_request"
    assert_error(client.get("/ogc/collections/grids_micro_grid?foo=1"), 400, "foo")
    assert_error(client.get("/ogc/conformance?x=1"), 400, "unknown query parameter")
    assert_error(client.get("/ogc/collections?limit=1"), 400, "limit")
    assert_error(client.get("/ogc/collections/grids_micro_grid/items?limit=1&limit=2"), 400)
    assert_error(client.get("/ogc/collections/grids_micro_grid/items?f=html"), 400, "html")
    assert_error(client.get("/ogc/collections/grids_micro_grid/items?crs=EPSG:3857"), 400)
    # A declared queryable is not unknown.
    assert get_items(client, "grids_micro_grid", kind="compound")["numberMatched"] > 0


def test_bbox(client: TestClient, db: Engine) -> None:
    box = (113.6055, 34.7025, 113.6125, 34.7065)
    got = all_ids(client, "grids_micro_grid", bbox=",".join(map(str, box)))
    want = ids(
        db,
        "SELECT id FROM grids WHERE level = 'micro_grid' AND valid_to IS NULL"
        " AND ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326))",
        a=box[0],
        b=box[1],
        c=box[2],
        d=box[3],
    )
    assert got == want and 20 < len(want) < 100
    six = get_items(client, "grids_micro_grid", bbox="113.6055,34.7025,0,113.6125,34.7065,10")
    assert six["numberMatched"] == len(want)
    base = "/ogc/collections/grids_micro_grid/items?bbox="
    # Latitudes top first are the same box; past a pole, the pole (the definition says so).
    swapped = get_items(client, "grids_micro_grid", bbox="113.6055,34.7065,113.6125,34.7025")
    assert swapped["numberMatched"] == len(want)
    polar = get_items(client, "grids_micro_grid", bbox="113.6055,-120,113.6125,120")
    assert polar["numberMatched"] > len(want)
    # minLon > maxLon runs east across the antimeridian (OGC 17-069r4 §7.15.3): allowed.
    crossing = get_items(client, "grids_micro_grid", bbox="113.6125,34.7025,113.6055,34.7065")
    assert crossing["numberMatched"] == len(
        ids(
            db,
            "SELECT id FROM grids WHERE level = 'micro_grid' AND valid_to IS NULL"
            " AND (ST_Intersects(geom, ST_MakeEnvelope(113.6125, 34.7025, 180, 34.7065, 4326))"
            " OR ST_Intersects(geom, ST_MakeEnvelope(-180, 34.7025, 113.6055, 34.7065, 4326)))",
        )
    )
    assert_error(client.get(base + "200,34.7,201,34.8"), 400, "range")
    assert_error(client.get(base + "113.6,34.7,113.7"), 400, "bbox")
    assert_error(client.get(base + "a,b,c,d"), 400, "numbers")


def test_properties_selection(client: TestClient) -> None:
    body = get_items(client, "facilities_sewage_cover", properties="name,status", limit=5)
    for f in body["features"]:
        assert set(f["properties"]) == {"name", "status"}
        assert f["geometry"]["type"] == "Point"
    nxt = next(lk["href"] for lk in body["links"] if lk["rel"] == "next")
    assert "properties=name,status" in nxt
    r = client.get("/ogc/collections/facilities_sewage_cover/items?properties=name,nope")
    assert_error(r, 400, "nope")


def test_queryable_equality_filters(client: TestClient, db: Engine) -> None:
    got = all_ids(client, "facilities_ebike_charger", status="damaged")
    want = ids(
        db, "SELECT id FROM facilities WHERE type_code = 'ebike_charger' AND status = 'damaged'"
    )
    assert got == want and want
    got = all_ids(client, "facilities_ebike_charger", ports=7)
    want = ids(
        db,
        "SELECT id FROM facilities WHERE type_code = 'ebike_charger'"
        " AND (attributes->>'ports')::int = 7",
    )
    assert got == want and want
    got = all_ids(client, "grids_micro_grid", unmanaged_compound="true")
    want = ids(
        db,
        "SELECT id FROM grids WHERE level = 'micro_grid' AND valid_to IS NULL"
        " AND (attributes->>'unmanaged_compound')::boolean",
    )
    assert got == want and want
    base = "/ogc/collections/facilities_ebike_charger/items"
    assert_error(client.get(base + "?ports=many"), 400, "ports")
    assert_error(client.get(base + "?auto_cutoff=maybe"), 400, "auto_cutoff")


def test_datetime(client: TestClient, db: Engine) -> None:
    got = all_ids(client, "hazards_open", datetime="2024-05-10T00:00:00Z/2024-05-20T00:00:00Z")
    want = ids(
        db,
        "SELECT id FROM hazards WHERE status NOT IN ('closed', 'rejected')"
        " AND reported_at BETWEEN '2024-05-10T00:00Z' AND '2024-05-20T00:00Z'",
    )
    assert got == want and want
    assert get_items(client, "grids_micro_grid", datetime="2021-01-01")["numberMatched"] == 0
    before = get_items(client, "grids_micro_grid", datetime="../2023-01-01T00:00:00Z")
    assert before["numberMatched"] == MICRO_COUNT
    base = "/ogc/collections/hazards_open/items?datetime="
    assert_error(client.get(base + "yesterday"), 400, "datetime")
    # An interval that ends before it starts is well formed and empty (200, no features).
    r = client.get(base + "2024-06-01/2024-05-01")
    assert r.status_code == 200 and r.json()["numberMatched"] == 0


# ---- CQL2 ----------------------------------------------------------------------------------------

_EBIKE = "SELECT id FROM facilities WHERE type_code = 'ebike_charger'"
_SEWAGE = "SELECT id FROM facilities WHERE type_code = 'sewage_cover'"


@pytest.mark.parametrize(
    ("cid", "cql", "sql"),
    [
        (
            "facilities_ebike_charger",
            "status = 'damaged'",
            f"{_EBIKE} AND status = 'damaged'",
        ),
        (
            "facilities_ebike_charger",
            "status <> 'damaged' AND ports >= 8",
            f"{_EBIKE} AND status <> 'damaged' AND (attributes->>'ports')::int >= 8",
        ),
        (
            "facilities_ebike_charger",
            "(ports < 5 OR ports > 11) AND NOT (status = 'retired')",
            f"{_EBIKE} AND ((attributes->>'ports')::int < 5 OR (attributes->>'ports')::int > 11)"
            " AND NOT status = 'retired'",
        ),
        ("facilities_ebike_charger", "name IS NULL", f"{_EBIKE} AND name IS NULL"),
        ("facilities_ebike_charger", "name IS NOT NULL", f"{_EBIKE} AND name IS NOT NULL"),
        (
            "facilities_ebike_charger",
            "auto_cutoff = false",
            f"{_EBIKE} AND NOT (attributes->>'auto_cutoff')::boolean",
        ),
        ("facilities_sewage_cover", "name LIKE '污水井1%'", f"{_SEWAGE} AND name LIKE '污水井1%'"),
        (
            "facilities_sewage_cover",
            "name NOT LIKE '污水井_'",
            f"{_SEWAGE} AND name NOT LIKE '污水井_'",
        ),
        (
            "facilities_sewage_cover",
            "status IN ('damaged', 'planned')",
            f"{_SEWAGE} AND status IN ('damaged', 'planned')",
        ),
        (
            "facilities_sewage_cover",
            "size_mm BETWEEN 650 AND 800",
            f"{_SEWAGE} AND (attributes->>'size_mm')::int BETWEEN 650 AND 800",
        ),
        (
            "facilities_sewage_cover",
            "S_INTERSECTS(geometry, POLYGON((113.601 34.701, 113.62 34.701, 113.62 34.705, "
            "113.601 34.705, 113.601 34.701)))",
            f"{_SEWAGE} AND ST_Intersects(geom, ST_MakeEnvelope(113.601, 34.701, 113.62, "
            "34.705, 4326))",
        ),
        (
            "facilities_sewage_cover",
            "s_intersects(geometry, bbox(113.601, 34.701, 113.62, 34.705)) and status = 'damaged'",
            f"{_SEWAGE} AND status = 'damaged' AND ST_Intersects(geom, ST_MakeEnvelope(113.601,"
            " 34.701, 113.62, 34.705, 4326))",
        ),
        (
            "facilities_sewer_pipe",
            "S_INTERSECTS(geometry, LINESTRING(113.600 34.705, 113.610 34.705))",
            "SELECT id FROM facilities WHERE type_code = 'sewer_pipe' AND ST_Intersects(geom, "
            "'SRID=4326;LINESTRING(113.600 34.705, 113.610 34.705)'::geometry)",
        ),
        (
            "grids_micro_grid",
            "S_INTERSECTS(geometry, POINT(113.6105 34.7055))",
            "SELECT id FROM grids WHERE level = 'micro_grid' AND valid_to IS NULL AND "
            "ST_Intersects(geom, 'SRID=4326;POINT(113.6105 34.7055)'::geometry)",
        ),
        (
            "grids_micro_grid",
            "building_floors > 20 AND kind = 'compound' OR population < 60",
            "SELECT id FROM grids WHERE level = 'micro_grid' AND valid_to IS NULL AND ("
            "(attributes #>> '{building,floors}')::int > 20 AND attributes->>'kind' = 'compound'"
            " OR (attributes->>'population')::int < 60)",
        ),
        (
            "hazards_open",
            "reported_at >= TIMESTAMP('2024-05-20T00:00:00Z') AND overdue = TRUE",
            "SELECT id FROM hazards WHERE status NOT IN ('closed', 'rejected') AND reported_at"
            " >= '2024-05-20T00:00Z' AND due_at < now()",
        ),
        (
            "hazards_open",
            "reported_at < DATE('2024-05-15') AND \"category\" = 'sewer_blockage'",
            "SELECT id FROM hazards WHERE status NOT IN ('closed', 'rejected') AND reported_at"
            " < '2024-05-15' AND category_code = 'sewer_blockage'",
        ),
    ],
)
def test_cql2_matches_sql(client: TestClient, db: Engine, cid: str, cql: str, sql: str) -> None:
    got = all_ids(client, cid, filter=cql, **{"filter-lang": "cql2-text"})
    want = ids(db, sql)
    assert got == want
    assert want, "the case should select something"


def test_cql2_errors(client: TestClient) -> None:
    base = "/ogc/collections/facilities_ebike_charger/items"
    cases = {
        "nope = 1": "unknown property",
        "status = ": "expected a property or a value",
        "status = 'damaged' AND": "expected a property or a value",
        "ports = 'four'": "cannot compare",
        "status LIKE 5": "string pattern",
        "(status = 'damaged'": "expected ')'",
        "status == 'x'": "expected a property or a value",
        "FOO(status)": "not supported",
        "S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))": "not a valid geometry",
        "S_INTERSECTS(geometry, POINT(200 20))": "coordinates",
        "S_INTERSECTS(geometry, POINT(1 2)": "expected ')'",
        "S_INTERSECTS(status, POINT(1 2))": "geometr",
        "status = 'x": "unterminated",
        # issue 11, finding 7: each of these was a 500
        "ports = " + "9" * 400: "out of range",
        "S_INTERSECTS(geometry, BBOX(1,2,3,": "expected a number",
        "name LIKE 'x\\'": "escape character",
    }
    for cql, words in cases.items():
        assert_error(client.get(base, params={"filter": cql}), 400, words)
    r = client.get(base, params={"filter": "status = 'x'", "filter-lang": "cql2-json"})
    assert_error(r, 400, "filter-lang")


def test_cql2_limits(client: TestClient) -> None:
    base = "/ogc/collections/facilities_ebike_charger/items"
    long_filter = "status = '" + "x" * 4100 + "'"
    assert_error(client.get(base, params={"filter": long_filter}), 400, "4096")
    deep = "(" * 21 + "status = 'damaged'" + ")" * 21
    assert_error(client.get(base, params={"filter": deep}), 400, "nested")
    ok = "(" * 20 + "status = 'damaged'" + ")" * 20
    assert client.get(base, params={"filter": ok}).status_code == 200
    nots = "NOT " * 21 + "status = 'damaged'"
    assert_error(client.get(base, params={"filter": nots}), 400, "nested")


def test_cql2_injection(client: TestClient, db: Engine) -> None:
    base = "/ogc/collections/grids_micro_grid/items"
    body = client.get(base, params={"filter": "name = 'x'' OR 1=1 --'"}).json()
    assert body["numberMatched"] == 0
    body = client.get(base, params={"filter": "name = 'x''); DROP TABLE grids; --'"}).json()
    assert body["numberMatched"] == 0
    for bad in (
        "id;drop table grids = 1",
        "name = 'a'; DROP TABLE grids",
        '"name; DROP TABLE grids" = 1',
        "name = 1 UNION SELECT 1",
        "pg_sleep(10) = 1",
    ):
        r = client.get(base, params={"filter": bad})
        assert r.status_code == 400, bad
    assert_error(client.get(base, params={"properties": "id;drop table grids"}), 400)
    assert_error(client.get(base + "?id%3Bdrop+table+grids=1"), 400)
    r = client.get(base, params={"kind": "x' OR '1'='1"})
    assert r.status_code == 200 and r.json()["numberMatched"] == 0
    assert_error(client.get(base, params={"filter": "name = 'a\x00'"}), 400, "NUL")
    assert_error(client.get(base, params={"kind": "\x00"}), 400, "NUL")
    assert scalar(db, "SELECT count(*) FROM grids WHERE level = 'micro_grid'") == MICRO_COUNT + 1


def test_cql2_unit_binds_every_literal() -> None:
    params: dict[str, Any] = {}
    fields = {"name": cql2.Field("s.c0", cql2.STRING), "n": cql2.Field("s.c1", cql2.INTEGER)}
    sql = cql2.to_sql("name = 'a''b' AND n IN (1, 2) OR name LIKE '%x'", fields, params)
    assert "'" not in sql  # no literal text reaches the SQL
    assert sorted(params.values(), key=str) == sorted(["a'b", 1, 2, "%x"], key=str)


def test_cql2_bbox_across_the_antimeridian(client: TestClient, db: Engine) -> None:
    """BBOX with minLon > maxLon runs east across 180° (OGC 21-065r2, as bbox in Part 1)."""
    crossing = "S_INTERSECTS(geometry, BBOX(113.6125, 34.7025, 113.6055, 34.7065))"
    got = all_ids(client, "grids_micro_grid", filter=crossing)
    want = ids(
        db,
        "SELECT id FROM grids WHERE level = 'micro_grid' AND valid_to IS NULL"
        " AND (ST_Intersects(geom, ST_MakeEnvelope(113.6125, 34.7025, 180, 34.7065, 4326))"
        " OR ST_Intersects(geom, ST_MakeEnvelope(-180, 34.7025, 113.6055, 34.7065, 4326)))",
    )
    assert got == want and want
    body = get_items(
        client, "grids_micro_grid", filter="S_INTERSECTS(geometry,BBOX(150,-90,-150,90))"
    )
    assert body["numberMatched"] == 0
    assert get_items(client, "grids_micro_grid", bbox="150,-90,-150,90")["numberMatched"] == 0


def test_cql2_orders_strings_by_code_point(db: Engine) -> None:
    """On a database whose collation is ICU's (a DATABASE_URL database created with
    zh-x-icu or en-x-icu), '<' and '>' on strings still follow code points (OGC 21-065r2):
    here the column carries the ICU collation the database default would give it."""
    words = ["a", "B", "_x", "Z", "b", "é", "10", "9", "张", "Ä"]
    for collation in ("en-x-icu", "zh-x-icu"):
        values = ", ".join(f"('{w}' COLLATE \"{collation}\")" for w in words)
        fields = {"name": cql2.Field("s.c0", cql2.STRING)}
        for op, literal in (("<", "a"), (">", "Z"), ("<=", "b"), (">=", "_"), ("<", "张")):
            params: dict[str, Any] = {}
            where = cql2.to_sql(f"name {op} '{literal}'", fields, params)
            with db.connect() as conn:
                got = sorted(
                    conn.execute(
                        text(f"SELECT c0 FROM (VALUES {values}) s (c0) WHERE {where}"), params
                    ).scalars()
                )
            compare = {"<": str.__lt__, ">": str.__gt__, "<=": str.__le__, ">=": str.__ge__}[op]
            assert got == sorted(w for w in words if compare(w, literal)), (collation, op, literal)


def test_qgis_datetime_bounds(client: TestClient) -> None:
    """QGIS 3.22 sends "before t" as 0000-01-01T00:00:00Z/t, and pastes +08:00 unescaped
    (the '+' arrives as a space); both are read (issue 11, finding 13)."""
    open_start = get_items(client, "grids_micro_grid", datetime="../2023-01-01T00:00:00Z")
    year_zero = get_items(
        client, "grids_micro_grid", datetime="0000-01-01T00:00:00Z/2023-01-01T00:00:00Z"
    )
    assert year_zero["numberMatched"] == open_start["numberMatched"] == MICRO_COUNT
    far = get_items(
        client, "grids_micro_grid", datetime="2022-01-01T00:00:00Z/10000-01-01T00:00:00Z"
    )
    assert far["numberMatched"] == MICRO_COUNT
    # '+08:00' sent unescaped: the server sees a space before the offset.
    spaced = client.get(
        "/ogc/collections/grids_micro_grid/items?datetime=2023-01-01T08:00:00+08:00/..&limit=1"
    )
    assert spaced.status_code == 200, spaced.text
    assert spaced.json()["numberMatched"] == MICRO_COUNT


# ---- single items and hazards ------------------------------------------------------------------


def test_item(client: TestClient, db: Engine) -> None:
    fid = scalar(db, "SELECT min(id) FROM facilities WHERE type_code = 'sewage_cover'")
    r = client.get(f"/ogc/collections/facilities_sewage_cover/items/{fid}")
    assert r.status_code == 200 and r.headers["content-type"].startswith(GEOJSON)
    f = r.json()
    assert f["type"] == "Feature" and f["id"] == fid
    check_links(f["links"])
    assert {lk["rel"] for lk in f["links"]} >= {"self", "alternate", "collection"}
    other = scalar(db, "SELECT min(id) FROM facilities WHERE type_code = 'ebike_charger'")
    assert_error(client.get(f"/ogc/collections/facilities_sewage_cover/items/{other}"), 404)
    assert_error(client.get("/ogc/collections/facilities_sewage_cover/items/99999999"), 404)
    assert_error(client.get("/ogc/collections/facilities_sewage_cover/items/abc"), 404)
    old = scalar(db, "SELECT id FROM grids WHERE valid_to IS NOT NULL")
    assert_error(client.get(f"/ogc/collections/grids_micro_grid/items/{old}"), 404)
    assert_error(client.get(f"/ogc/collections/facilities_sewage_cover/items/{fid}?x=1"), 400)


def test_hazards_never_expose_reporters(client: TestClient, db: Engine) -> None:
    expected = ids(db, "SELECT id FROM hazards WHERE status NOT IN ('closed', 'rejected')")
    assert all_ids(client, "hazards_open") == expected
    body = client.get("/ogc/collections/hazards_open/items?limit=100").text
    assert "举报人" not in body and "1380000" not in body and "reporter" not in body
    f = json.loads(body)["features"][0]
    assert set(f["properties"]) == {
        "public_code",
        "category",
        "category_name",
        "severity",
        "status",
        "reported_at",
        "due_at",
        "overdue",
        "grid_id",
    }
    hid = f["id"]
    one = client.get(f"/ogc/collections/hazards_open/items/{hid}").text
    assert "举报人" not in one and "1380000" not in one
    for q in ("reporter_phone = '13800000001'", "reporter_name IS NOT NULL"):
        r = client.get("/ogc/collections/hazards_open/items", params={"filter": q})
        assert_error(r, 400, "unknown property")
    r = client.get("/ogc/collections/hazards_open/items", params={"properties": "reporter_phone"})
    assert_error(r, 400)
    closed = scalar(db, "SELECT min(id) FROM hazards WHERE status = 'closed'")
    assert_error(client.get(f"/ogc/collections/hazards_open/items/{closed}"), 404)


def _plan_nodes(node: dict[str, Any], part: str | None = None) -> Iterator[tuple[str | None, dict]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan with the CTE or subplan it belongs to."""
    part = node.get("Subplan Name", part)
    yield part, node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child, part)


def _bbox_page_problems(plan: dict[str, Any]) -> list[str]:
    """What is wrong with the plan of a bbox page of grids: the page's ids (CTE span) must be
    found through the grids' GiST index, no node may read the whole grids table, and the page
    must stop at its LIMIT."""
    nodes = list(_plan_nodes(plan["Plan"]))
    problems = []
    if not any(
        part == "CTE span"
        and n.get("Index Name") == "grids_geom_gist"
        and "geom &&" in n.get("Index Cond", "")
        for part, n in nodes
    ):
        problems.append("no GiST index scan on grids.geom for the bbox")
    problems += [
        f"seq scan of grids in {part or 'the main query'}"
        for part, n in nodes
        if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "grids"
    ]
    if not any(n["Node Type"] == "Limit" and n.get("Subplan Name") == "CTE span" for _, n in nodes):
        problems.append("the page's ids are not cut by a LIMIT")
    return problems


def test_items_sql_uses_the_spatial_index(client: TestClient, db: Engine) -> None:
    """A bbox page of about 50 features is picked through the GiST index and stops at the page
    size, not by reading every grid (its speed is measured in bench/api_vs_tipg.py)."""
    from gis_service.ogc import parsing, service
    from gis_service.ogc import sql as ogc_sql

    settings = client.app.state.settings  # type: ignore[attr-defined]
    state = service.OgcState(client.app.state.catalog)  # type: ignore[attr-defined]
    with db.connect() as conn:
        coll = state.registry(conn)["grids_micro_grid"]
        q = parsing.parse_items_query(
            coll, [("bbox", "113.6005,34.7005,113.6095,34.7045"), ("limit", "100")], settings
        )
        stmt, params = service.items_statement(coll, q, "http://test/ogc")
        body = conn.execute(stmt, params).scalar_one()
        assert 40 <= json.loads(body)["numberReturned"] <= 60
        assert q.limit == 100

        def plan() -> dict[str, Any]:
            return conn.execute(
                text("EXPLAIN (FORMAT JSON) " + str(ogc_sql.items(coll, q.where, q.columns))),
                {
                    **q.params,
                    "_limit": q.limit,
                    "_offset": 0,
                    "_links": "[]",
                    "_type": GEOJSON,
                    "_next": "",
                    "_next_title": "",
                },
            ).scalar()[0]

        # Plan with the table's real statistics, whether or not autovacuum has taken them yet
        # (inside this transaction, rolled back below like the rest).
        conn.execute(text("ANALYZE grids"))
        assert _bbox_page_problems(plan()) == []
        # The check catches a plan without the index (the DROP is rolled back).
        conn.execute(text("DROP INDEX grids_geom_gist"))
        assert "no GiST index scan on grids.geom for the bbox" in _bbox_page_problems(plan())
        conn.rollback()


def test_a_queryable_parameter_outside_its_enum_is_refused(client: TestClient) -> None:
    """The definition lists a queryable's values (enum): another value is a 400 that names
    them, not a silent empty page (schemathesis: schema-violating request accepted)."""
    r = client.get("/ogc/collections/facilities_sewer_pipe/items?material=plastic-ish")
    assert_error(r, 400, "must be one of")


# A whole grid collection is counted once while it is read page by page (issue 13): its
# numberMatched comes from an earlier page only while the collection's stamp holds
# (OGC 17-069r4 /req/core/fc-numberMatched holds at every page).


def _counted_page(client: TestClient, url: str) -> dict[str, Any]:
    r = client.get(url)
    assert r.status_code == 200, r.text
    return r.json()


def _next_href(body: dict[str, Any]) -> str:
    return next(lk["href"] for lk in body["links"] if lk["rel"] == "next")


def test_whole_collection_changes_between_pages_are_counted(client: TestClient, db: Engine) -> None:
    first = _counted_page(client, "/ogc/collections/grids_micro_grid/items?limit=5")
    assert first["numberMatched"] == MICRO_COUNT
    second = _counted_page(client, _next_href(first))
    assert second["numberMatched"] == MICRO_COUNT
    with db.begin() as conn:
        gone = conn.execute(
            text(
                "UPDATE grids SET valid_to = now() WHERE id = (SELECT max(id) FROM grids"
                " WHERE level = 'micro_grid' AND valid_to IS NULL) RETURNING id"
            )
        ).scalar_one()
    try:
        third = _counted_page(client, _next_href(second))
        assert third["numberMatched"] == MICRO_COUNT - 1
    finally:
        with db.begin() as conn:
            conn.execute(text("UPDATE grids SET valid_to = NULL WHERE id = :id"), {"id": gone})
    assert _counted_page(client, _next_href(third))["numberMatched"] == MICRO_COUNT
    # a filtered page is always counted
    some = _counted_page(client, "/ogc/collections/grids_micro_grid/items?limit=5&bbox=0,0,1,1")
    assert some["numberMatched"] == 0


def _page_with_known_count(db: Engine, client: TestClient, known: tuple[str, int] | None) -> Any:
    from gis_service.ogc import parsing, service

    settings = client.app.state.settings  # type: ignore[attr-defined]
    state = service.OgcState(client.app.state.catalog)  # type: ignore[attr-defined]
    with db.connect() as conn:
        coll = state.registry(conn)["grids_micro_grid"]
        q = parsing.parse_items_query(coll, [("limit", "3")], settings)
        stmt, params = service.items_statement(coll, q, "http://test/ogc", known)
        return conn.execute(stmt, params).mappings().one()


def test_a_known_count_is_used_only_while_its_stamp_holds(client: TestClient, db: Engine) -> None:
    row = _page_with_known_count(db, client, None)
    assert row["matched"] == MICRO_COUNT and row["stamp"]
    assert json.loads(row["body"])["numberMatched"] == MICRO_COUNT
    kept = _page_with_known_count(db, client, (row["stamp"], 12345))
    assert json.loads(kept["body"])["numberMatched"] == 12345  # not counted again
    stale = _page_with_known_count(db, client, ("1:1:1", 12345))
    assert json.loads(stale["body"])["numberMatched"] == MICRO_COUNT
    with db.begin() as conn:  # any change of a micro-grid moves the stamp
        conn.execute(
            text(
                "UPDATE grids SET name = name WHERE level = 'micro_grid' AND id = "
                "(SELECT min(id) FROM grids WHERE level = 'micro_grid')"
            )
        )
    moved = _page_with_known_count(db, client, (row["stamp"], 12345))
    assert moved["stamp"] != row["stamp"]
    assert json.loads(moved["body"])["numberMatched"] == MICRO_COUNT
