"""Vector tiles: features at the right address, attributes, privacy, caching and TileJSON."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.config import Settings
from gis_service.db.engine import make_engine
from gis_service.tiles import service
from gis_service.tiles.schemas import TileJSON, TileLayerList
from gis_service.tiles.tilesets import FACILITY_DETAIL_ZOOM, HAZARD_DETAIL_ZOOM, LAYERS
from tests.support.databases import CATALOG, Databases

MVT = "application/vnd.mapbox-vector-tile"
REPORTER_PHONE = "13800001234"
REPORTER_NAME = "举报人甲"

# street ⊃ community ⊃ grid ⊃ four micro-grids (quadrants), all near 113.605, 34.711.
GRID = "410103901001001"
GRIDS = [
    ("410103901", "测试街道", "street", None, (113.600, 34.706, 113.610, 34.716)),
    ("410103901001", "测试社区", "community", "410103901", (113.600, 34.706, 113.610, 34.716)),
    (GRID, "第1网格", "grid", "410103901001", (113.600, 34.706, 113.610, 34.716)),
    (f"{GRID}001", "1号楼", "micro_grid", GRID, (113.600, 34.706, 113.605, 34.711)),
    (f"{GRID}002", "2号楼", "micro_grid", GRID, (113.605, 34.706, 113.610, 34.711)),
    (f"{GRID}003", "3号院", "micro_grid", GRID, (113.600, 34.711, 113.605, 34.716)),
    (f"{GRID}004", "4号院", "micro_grid", GRID, (113.605, 34.711, 113.610, 34.716)),
]
LEADERS = {
    "410103901": ("王书记", "party_secretary"),
    "410103901001": ("李书记", "party_secretary"),
    "410103901001001": ("张网格长", "grid_leader"),
    "410103901001001001": ("赵微网格员", "micro_grid_member"),
    "410103901001001002": ("钱微网格员", "micro_grid_member"),
}
# A round special grid (a school): 257 vertices, to see simplification at work.
SPECIAL = ("410103901001901", "测试小学", (113.6025, 34.7135), 0.0008)

FACILITIES = [
    ("F-COVER-1", "sewage_cover", "in_service", "POINT(113.6021 34.7081)"),
    ("F-COVER-2", "sewage_cover", "damaged", "POINT(113.6071 34.7082)"),
    ("F-EV-1", "ev_charger", "in_service", "POINT(113.6031 34.7131)"),
    ("F-PIPE-1", "sewer_pipe", "in_service", "LINESTRING(113.6010 34.7070, 113.6090 34.7070)"),
    # Three covers within half a metre: one feature with count 3 below the detail zoom.
    ("F-STACK-1", "rain_cover", "in_service", "POINT(113.605100 34.711100)"),
    ("F-STACK-2", "rain_cover", "in_service", "POINT(113.605102 34.711101)"),
    ("F-STACK-3", "rain_cover", "in_service", "POINT(113.605104 34.711102)"),
]

# (public code, category, status, due in hours (None: no deadline), lon, lat)
HAZARDS = [
    ("H-OPEN-LATE", "manhole_cover_sunken", "dispatched", -24, 113.6022, 34.7083),
    ("H-OPEN-OK", "waterlogging", "reported", 48, 113.6032, 34.7093),
    ("H-CLOSED", "manhole_cover_sunken", "closed", -24, 113.6012, 34.7073),
    ("H-REJECTED", "clutter", "rejected", None, 113.6014, 34.7074),
    # A pair a metre apart, the one on time first (lower id): thinned, the overdue one shows.
    ("H-PAIR-OK", "clutter", "accepted", 24, 113.60720, 34.71320),
    ("H-PAIR-LATE", "graffiti", "in_progress", -2, 113.60721, 34.71321),
]
OPEN_HAZARDS = 4


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ tile holding a point (the slippy-map formula)."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def tile_pixel(lon: float, lat: float, z: int) -> tuple[float, float]:
    """Where a point falls inside its tile, in 0-4096 units with y pointing down."""
    n = 2**z
    fx = (lon + 180.0) / 360.0 * n
    fy = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return (fx - int(fx)) * 4096, (fy - int(fy)) * 4096


def decode(data: bytes) -> dict[str, Any]:
    """Decode a tile with y pointing down, as the tile's own coordinates are."""
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def coords(geometry: dict[str, Any]) -> list[tuple[float, float]]:
    """Every vertex of a decoded geometry."""
    out: list[tuple[float, float]] = []

    def walk(c: Any) -> None:
        if isinstance(c[0], int | float):
            out.append((c[0], c[1]))
        else:
            for part in c:
                walk(part)

    walk(geometry["coordinates"])
    return out


@pytest.fixture(scope="module")
def client(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    url = databases.new("tiles", CATALOG)
    engine = make_engine(url, pool_size=1)
    settings = Settings(database_url=url, data_dir=tmp_path_factory.mktemp("d"), load_demo=False)
    with engine.begin() as conn:
        for code, name, level, parent, (x0, y0, x1, y1) in GRIDS:
            conn.execute(
                text(
                    "INSERT INTO grids (code, name, level, parent_id, geom, valid_from) VALUES"
                    " (:code, :name, :level, (SELECT id FROM grids WHERE code = :parent),"
                    "  ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)), '2020-01-01')"
                ),
                dict(code=code, name=name, level=level, parent=parent, x0=x0, y0=y0, x1=x1, y1=y1),
            )
        code, name, (lon, lat), radius = SPECIAL
        conn.execute(
            text(
                "INSERT INTO grids (code, name, level, parent_id, geom, valid_from) VALUES"
                " (:code, :name, 'special', (SELECT id FROM grids WHERE code = '410103901001'),"
                "  ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :r, 64)),"
                "  '2020-01-01')"
            ),
            dict(code=code, name=name, lon=lon, lat=lat, r=radius),
        )
        # A retired version of a micro-grid: must never show.
        conn.execute(
            text(
                "INSERT INTO grids (code, name, level, parent_id, geom, valid_from, valid_to)"
                " SELECT code, '旧边界', level, parent_id, geom, '2010-01-01', '2020-01-01'"
                " FROM grids WHERE code = '410103901001001001'"
            )
        )
        for grid_code, (person, role) in LEADERS.items():
            conn.execute(
                text(
                    "WITH p AS (INSERT INTO people (name, work_phone, mobile_phone)"
                    " VALUES (:n, '0371-55550000', '13900000000') RETURNING id)"
                    " INSERT INTO grid_assignments"
                    " (grid_id, person_id, role, is_primary, valid_from)"
                    " SELECT (SELECT id FROM grids WHERE code = :code AND valid_to IS NULL),"
                    " p.id, :role, true, '2020-01-01' FROM p"
                ),
                {"n": person, "code": grid_code, "role": role},
            )
        # A non-primary helper on micro-grid 1: the leader attribute must stay the primary.
        conn.execute(
            text(
                "WITH p AS (INSERT INTO people (name) VALUES ('志愿者小刘') RETURNING id)"
                " INSERT INTO grid_assignments (grid_id, person_id, role, is_primary, valid_from)"
                " SELECT (SELECT id FROM grids WHERE code = '410103901001001001'"
                " AND valid_to IS NULL), p.id, 'volunteer', false, '2020-01-01' FROM p"
            )
        )
        for code, type_code, status, wkt in FACILITIES:
            conn.execute(
                text(
                    "INSERT INTO facilities (code, type_code, status, geom)"
                    " VALUES (:code, :type, :status, ST_GeomFromText(:wkt, 4326))"
                ),
                {"code": code, "type": type_code, "status": status, "wkt": wkt},
            )
        for public_code, category, status, due_h, lon, lat in HAZARDS:
            conn.execute(
                text(
                    "INSERT INTO hazards (public_code, category_code, description, status, source,"
                    " geom, grid_id, grid_path, reporter_name, reporter_phone, reported_at,"
                    " due_at)"
                    " SELECT :pc, :cat, '楼下有个坑，夜里看不见', :status, 'resident',"
                    " ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), g.id, g.path, :rn, :rp,"
                    " '2026-01-02T03:04:05Z',"
                    " now() + make_interval(hours => CAST(:due AS integer))"
                    " FROM grids g WHERE g.id = gis_finest_grid(ST_SetSRID("
                    " ST_MakePoint(:lon, :lat), 4326))"
                ),
                dict(
                    pc=public_code,
                    cat=category,
                    status=status,
                    lon=lon,
                    lat=lat,
                    rn=REPORTER_NAME,
                    rp=REPORTER_PHONE,
                    due=due_h,
                ),
            )
    engine.dispose()
    with TestClient(create_app(settings)) as c:
        yield c


def get_tile(client: TestClient, layer: str, lon: float, lat: float, z: int) -> dict[str, Any]:
    """Fetch and decode the tile of ``layer`` that holds the point; the tile must not be empty."""
    x, y = tile_of(lon, lat, z)
    r = client.get(f"/tiles/{layer}/{z}/{x}/{y}.pbf")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MVT
    tile = decode(r.content)
    assert set(tile) == {layer}
    for feature in tile[layer]["features"]:
        for px, py in coords(feature["geometry"]):
            assert -64 <= px <= 4096 + 64 and -64 <= py <= 4096 + 64
    return tile[layer]


def by(features: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    """Features keyed by one of their properties."""
    return {f["properties"][key]: f for f in features}


def test_micro_grid_tile_has_leaders_and_hazard_counts(client: TestClient) -> None:
    layer = get_tile(client, "grids_micro_grid", 113.6025, 34.7085, 16)
    grids = by(layer["features"], "code")
    assert "410103901001001001" in grids
    first = grids["410103901001001001"]["properties"]
    assert first["name"] == "1号楼"  # the current version, not the retired one
    assert first["level"] == "micro_grid"
    assert first["leader"] == "赵微网格员"
    assert first["leader_role"] == "微网格员"
    assert first["open_hazards"] == 2  # the closed and the rejected ones do not count
    assert grids["410103901001001001"]["id"] == first["id"]
    assert first["parent_id"] > 0
    names = [f["properties"]["name"] for f in layer["features"]]
    assert "旧边界" not in names
    assert len(names) == len(set(grids))
    if "410103901001001003" in grids:  # no primary assignee: no leader attribute at all
        assert "leader" not in grids["410103901001001003"]["properties"]
        assert grids["410103901001001003"]["properties"]["open_hazards"] == 0


def test_street_tile_has_its_leader(client: TestClient) -> None:
    layer = get_tile(client, "grids_street", 113.605, 34.711, 10)
    [street] = layer["features"]
    props = street["properties"]
    assert props["code"] == "410103901"
    assert props["leader"] == "王书记"
    assert props["leader_role"] == "党组织书记"
    assert "parent_id" not in props  # NULL attributes are left out of the tile
    assert "open_hazards" not in props  # too costly to count for a whole street
    assert street["geometry"]["type"] == "Polygon"


def test_grid_tile_counts_the_whole_subtree(client: TestClient) -> None:
    layer = get_tile(client, "grids_grid", 113.605, 34.711, 13)
    [grid] = layer["features"]
    assert grid["properties"]["leader"] == "张网格长"
    assert grid["properties"]["open_hazards"] == OPEN_HAZARDS  # all lie in its micro-grids


def test_every_grid_layer_serves_its_level(client: TestClient) -> None:
    for level, z in [("community", 12), ("grid", 13), ("micro_grid", 15), ("special", 15)]:
        layer = get_tile(client, f"grids_{level}", 113.6025, 34.7135, z)
        assert {f["properties"]["level"] for f in layer["features"]} == {level}


def test_polygons_are_simplified_at_low_zoom(client: TestClient) -> None:
    _, (lon, lat), _ = SPECIAL[1:]
    coarse = get_tile(client, "grids_special", lon, lat, 14)["features"][0]
    ring = coords(coarse["geometry"])
    assert 4 <= len(ring) < 100  # the 257-vertex circle, simplified to the tile's pixel size


def test_facility_tile_has_points_lines_and_styling(client: TestClient) -> None:
    z = FACILITY_DETAIL_ZOOM
    layer = get_tile(client, "facilities", 113.6021, 34.7081, z)
    facilities = by(layer["features"], "code")
    cover = facilities["F-COVER-1"]
    props = cover["properties"]
    assert props["type_code"] == "sewage_cover"
    assert props["type_name"]
    assert props["icon"]
    assert props["color"].startswith("#") and len(props["color"]) == 7
    assert props["status"] == "in_service"
    assert cover["geometry"]["type"] == "Point"
    px, py = tile_pixel(113.6021, 34.7081, z)
    [(fx, fy)] = coords(cover["geometry"])
    assert abs(fx - px) <= 1 and abs(fy - py) <= 1  # the right place inside the right tile
    assert facilities["F-PIPE-1"]["geometry"]["type"] == "LineString"
    assert facilities["F-PIPE-1"]["properties"]["type_code"] == "sewer_pipe"


def test_facilities_are_thinned_below_the_detail_zoom(client: TestClient) -> None:
    z = LAYERS["facilities"].minzoom
    assert z < FACILITY_DETAIL_ZOOM
    tiles = {tile_of(*_first_point(wkt), z) for *_, wkt in FACILITIES}
    assert len(tiles) == 1  # the whole test area lies in one z14 tile
    layer = get_tile(client, "facilities", 113.605, 34.711, z)
    facilities = by(layer["features"], "code")
    assert sum(f["properties"]["count"] for f in layer["features"]) == len(FACILITIES)
    stack = facilities["F-STACK-1"]["properties"]  # the lowest id stands for the cell
    assert stack["count"] == 3
    assert stack["type_code"] == "rain_cover" and stack["icon"] and stack["color"]
    assert "F-STACK-2" not in facilities and "F-STACK-3" not in facilities

    detail = get_tile(client, "facilities", 113.6051, 34.7111, FACILITY_DETAIL_ZOOM)
    facilities = by(detail["features"], "code")
    for code in ("F-STACK-1", "F-STACK-2", "F-STACK-3"):
        assert facilities[code]["properties"]["count"] == 1


def _first_point(wkt: str) -> tuple[float, float]:
    """The first coordinate pair of a WKT point or line."""
    lon, lat = wkt.split("(")[1].split(",")[0].rstrip(")").split()
    return float(lon), float(lat)


def test_hazards_are_thinned_to_the_overdue_one(client: TestClient) -> None:
    layer = get_tile(client, "hazards", 113.6072, 34.7132, 12)
    hazards = by(layer["features"], "public_code")
    assert sum(f["properties"]["count"] for f in layer["features"]) == OPEN_HAZARDS
    pair = hazards["H-PAIR-LATE"]["properties"]
    assert pair["count"] == 2
    assert pair["overdue"] is True
    assert "H-PAIR-OK" not in hazards
    assert not {"H-CLOSED", "H-REJECTED"} & set(hazards)


def test_hazard_tile_shows_open_hazards_without_reporter(client: TestClient) -> None:
    z = HAZARD_DETAIL_ZOOM  # every hazard, none thinned
    x, y = tile_of(113.6022, 34.7083, z)
    r = client.get(f"/tiles/hazards/{z}/{x}/{y}.pbf")
    assert r.status_code == 200
    assert REPORTER_PHONE.encode() not in r.content
    assert REPORTER_NAME.encode() not in r.content
    assert "夜里看不见".encode() not in r.content  # the free-text description stays private too
    hazards = by(decode(r.content)["hazards"]["features"], "public_code")
    assert set(hazards) == {"H-OPEN-LATE", "H-OPEN-OK", "H-PAIR-OK", "H-PAIR-LATE"}
    assert all(h["properties"]["count"] == 1 for h in hazards.values())
    late = hazards["H-OPEN-LATE"]["properties"]
    assert late["overdue"] is True
    assert hazards["H-OPEN-OK"]["properties"]["overdue"] is False
    assert late["category_code"] == "manhole_cover_sunken"
    assert late["category_name"]
    assert late["status"] == "dispatched"
    assert late["severity"] == "medium"
    assert late["reported_at"] == "2026-01-02T03:04:05Z"
    for feature in hazards.values():
        assert not any("reporter" in k or "phone" in k for k in feature["properties"])
        assert set(feature["properties"]) <= set(LAYERS["hazards"].fields)


def test_empty_tile_is_204(client: TestClient) -> None:
    x, y = tile_of(0.0, 0.0, 14)
    r = client.get(f"/tiles/facilities/14/{x}/{y}.pbf")
    assert r.status_code == 204
    assert r.content == b""
    assert r.headers["cache-control"].startswith("public")


@pytest.mark.parametrize(("layer", "z"), [("grids_micro_grid", 10), ("facilities", 12)])
def test_out_of_zoom_is_204(client: TestClient, layer: str, z: int) -> None:
    x, y = tile_of(113.6025, 34.7085, z)
    r = client.get(f"/tiles/{layer}/{z}/{x}/{y}.pbf")
    assert r.status_code == 204
    assert r.content == b""
    above = LAYERS[layer].maxzoom + 1
    x, y = tile_of(113.6025, 34.7085, above)
    assert client.get(f"/tiles/{layer}/{above}/{x}/{y}.pbf").status_code == 204


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/tiles/facilities/23/0/0.pbf", 422),
        ("/tiles/facilities/-1/0/0.pbf", 422),
        ("/tiles/facilities/14/-1/0.pbf", 422),
        ("/tiles/facilities/14/0/abc.pbf", 422),
        ("/tiles/facilities/2/4/0.pbf", 404),
        ("/tiles/facilities/2/0/4.pbf", 404),
        ("/tiles/facilities/0/1/0.pbf", 404),
    ],
)
def test_bad_tile_address(client: TestClient, path: str, status: int) -> None:
    r = client.get(path)
    assert r.status_code == status
    body = r.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == ("invalid_parameter" if status == 422 else "not_found")


def test_unknown_layer_is_404_naming_the_layers(client: TestClient) -> None:
    for path in ("/tiles/roads/14/0/0.pbf", "/tiles/roads.json"):
        r = client.get(path)
        assert r.status_code == 404
        body = r.json()
        assert body["code"] == "not_found"
        assert "roads" in body["message"] and "facilities" in body["message"]
        assert body["details"]["known_layers"] == list(LAYERS)


def test_etag_cache_control_and_304(client: TestClient) -> None:
    x, y = tile_of(113.6021, 34.7081, 15)
    path = f"/tiles/facilities/15/{x}/{y}.pbf"
    first = client.get(path)
    tag = first.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"') and len(tag) > 10
    assert first.headers["cache-control"] == "public, max-age=60"
    assert client.get(path).headers["etag"] == tag  # same bytes, same tag

    for header in (tag, f'"nope", {tag}', f"W/{tag}", "*"):
        r = client.get(path, headers={"If-None-Match": header})
        assert r.status_code == 304, header
        assert r.content == b""
        assert r.headers["etag"] == tag
        assert r.headers["cache-control"] == "public, max-age=60"
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_layer_list_links_to_tilejson(client: TestClient) -> None:
    r = client.get("/tiles")
    assert r.status_code == 200
    listing = TileLayerList.model_validate(r.json())
    assert [layer.id for layer in listing.layers] == list(LAYERS)
    for layer in listing.layers:
        assert layer.tilejson == f"http://testserver/tiles/{layer.id}.json"
        assert client.get(layer.tilejson).status_code == 200


# A point inside each layer's data, and a zoom the layer serves.
SAMPLES = {
    "grids_street": (113.605, 34.711, 12),
    "grids_community": (113.605, 34.711, 12),
    "grids_grid": (113.605, 34.711, 13),
    "grids_micro_grid": (113.6025, 34.7085, 15),
    "grids_special": (113.6025, 34.7135, 15),
    "facilities": (113.6021, 34.7081, 16),
    "hazards": (113.6022, 34.7083, 14),
}


@pytest.mark.parametrize("layer_id", list(LAYERS))
def test_tilejson(client: TestClient, layer_id: str) -> None:
    r = client.get(f"/tiles/{layer_id}.json")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == service.CACHE_CONTROL
    doc = TileJSON.model_validate(r.json())
    layer = LAYERS[layer_id]
    assert doc.tilejson == "3.0.0"
    assert doc.name == layer_id
    assert (doc.minzoom, doc.maxzoom) == (layer.minzoom, layer.maxzoom)
    west, south, east, north = doc.bounds
    # Everything lies in the test area, whatever the layer.
    assert 113.59 <= west <= east <= 113.62 and 34.69 <= south <= north <= 34.726
    lon, lat, zoom = doc.center
    assert west <= lon <= east and south <= lat <= north
    assert layer.minzoom <= zoom <= layer.maxzoom
    [vector_layer] = doc.vector_layers
    assert vector_layer.id == layer_id
    assert vector_layer.fields == dict(layer.fields)

    # The template resolves to a working tile whose layer and attributes the document names.
    lon, lat, z = SAMPLES[layer_id]
    x, y = tile_of(lon, lat, z)
    [template] = doc.tiles
    url = template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    assert url.startswith("http://testserver/tiles/")
    t = client.get(url)
    assert t.status_code == 200
    tile = decode(t.content)
    assert set(tile) == {vector_layer.id}
    for feature in tile[layer_id]["features"]:
        assert set(feature["properties"]) <= set(vector_layer.fields)


def test_tilejson_bounds_fall_back_to_the_world(client: TestClient) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:  # the deletion is rolled back: other tests keep their data
        conn.execute(text("DELETE FROM hazards"))
        bounds = service.layer_bounds(conn, LAYERS["hazards"])
        conn.rollback()
    assert bounds == service.WORLD_BOUNDS == (-180.0, -85.0511287798066, 180.0, 85.0511287798066)
