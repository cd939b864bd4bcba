"""Locate: the grid chain at a point, boundary rule, outside points and bad input."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.config import Settings
from gis_service.db.engine import make_engine
from gis_service.geo.datums import from_wgs84
from tests.support.databases import Databases

# A tiny hierarchy: one street, one community, one grid and two micro-grids side by side,
# sharing the edge lon = 113.605. The right-hand micro-grid has the smaller code.
BOXES = [
    ("410103901", "测试街道", "street", None, (113.60, 34.70, 113.61, 34.71)),
    ("410103901001", "测试社区", "community", "410103901", (113.60, 34.70, 113.61, 34.71)),
    ("410103901001001", "第1网格", "grid", "410103901001", (113.60, 34.70, 113.61, 34.71)),
    (
        "410103901001001002",
        "西微网格",
        "micro_grid",
        "410103901001001",
        (113.60, 34.70, 113.605, 34.71),
    ),
    (
        "410103901001001001",
        "东微网格",
        "micro_grid",
        "410103901001001",
        (113.605, 34.70, 113.61, 34.71),
    ),
    ("410103901001901", "测试小学", "special", "410103901001", (113.601, 34.701, 113.602, 34.702)),
    # A street to the west whose north half is a community without grids, and whose south
    # half is no community: points there route to a coarser level (rank 2, then rank 1).
    ("410103902", "西测试街道", "street", None, (113.59, 34.70, 113.60, 34.71)),
    ("410103902001", "西测试社区", "community", "410103902", (113.59, 34.705, 113.60, 34.71)),
]
LEADERS = {
    "410103901": ("王书记", "party_secretary"),
    "410103901001": ("李书记", "party_secretary"),
    "410103901001001": ("张网格长", "grid_leader"),
    "410103901001001002": ("赵微网格员", "micro_grid_member"),
    "410103901001001001": ("钱微网格员", "micro_grid_member"),
    "410103901001901": ("孙校长", "special_grid_leader"),
    "410103902": ("周书记", "party_secretary"),
    "410103902001": ("吴书记", "party_secretary"),
}


@pytest.fixture(scope="module")
def client(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    url = databases.new("locate")
    engine = make_engine(url, pool_size=1)
    with engine.begin() as conn:
        for code, name, level, parent, (x0, y0, x1, y1) in BOXES:
            conn.execute(
                text(
                    "INSERT INTO grids (code, name, level, parent_id, geom, valid_from) VALUES"
                    " (:code, :name, :level, (SELECT id FROM grids WHERE code = :parent),"
                    "  ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)), '2020-01-01')"
                ),
                dict(code=code, name=name, level=level, parent=parent, x0=x0, y0=y0, x1=x1, y1=y1),
            )
            person, role = LEADERS[code]
            conn.execute(
                text(
                    "WITH p AS (INSERT INTO people (name, work_phone) VALUES (:n, '0371-55550000')"
                    " RETURNING id) INSERT INTO grid_assignments"
                    " (grid_id, person_id, role, is_primary, valid_from)"
                    " SELECT (SELECT id FROM grids WHERE code = :code), p.id, :role, true,"
                    " '2020-01-01' FROM p"
                ),
                {"n": person, "code": code, "role": role},
            )
    engine.dispose()
    settings = Settings(database_url=url, data_dir=tmp_path_factory.mktemp("d"), load_demo=False)
    with TestClient(create_app(settings)) as c:
        yield c


def test_point_inside_returns_four_levels_with_leaders(client: TestClient) -> None:
    r = client.get("/api/v1/locate", params={"lon": 113.608, "lat": 34.705})
    assert r.status_code == 200, r.text
    body = r.json()
    chain = body["chain"]
    assert [g["level"] for g in chain] == ["street", "community", "grid", "micro_grid"]
    assert chain[-1]["name"] == "东微网格"
    assert chain[2]["people"][0]["name"] == "张网格长"
    assert chain[2]["people"][0]["role_name"] == "网格长"
    assert chain[-1]["open_hazards"] == 0
    assert chain[0]["open_hazards"] is None
    assert body["special_grids"] == []


def test_special_grid_is_listed(client: TestClient) -> None:
    body = client.get("/api/v1/locate", params={"lon": 113.6015, "lat": 34.7015}).json()
    assert [s["name"] for s in body["special_grids"]] == ["测试小学"]
    assert body["special_grids"][0]["people"][0]["name"] == "孙校长"
    assert body["chain"][-1]["name"] == "西微网格"


@pytest.mark.parametrize("lat", [34.70, 34.705, 34.71])
def test_shared_boundary_goes_to_the_smaller_code(client: TestClient, lat: float) -> None:
    for _ in range(3):
        body = client.get("/api/v1/locate", params={"lon": 113.605, "lat": lat}).json()
        assert body["chain"][-1]["code"] == "410103901001001001"


def test_gcj02_input_is_converted(client: TestClient) -> None:
    glon, glat = from_wgs84(113.608, 34.705, "gcj02")
    r = client.get(
        "/api/v1/locate", params={"lon": float(glon), "lat": float(glat), "crs": "gcj02"}
    )
    assert r.status_code == 200
    assert r.json()["chain"][-1]["name"] == "东微网格"
    assert r.json()["point"]["lon"] == pytest.approx(113.608, abs=1e-7)


def test_outside_every_grid_is_404_naming_the_nearest(client: TestClient) -> None:
    r = client.get("/api/v1/locate", params={"lon": 113.70, "lat": 34.70})
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == "not_found"
    assert "No grid covers this point" in body["message"]
    assert body["details"]["nearest_grid"]["code"] == "410103901"
    assert body["details"]["nearest_grid"]["distance_m"] > 8000


def test_at_before_the_grids_existed_finds_nothing(client: TestClient) -> None:
    r = client.get("/api/v1/locate", params={"lon": 113.608, "lat": 34.705, "at": "2019-06-01"})
    assert r.status_code == 404
    r = client.get("/api/v1/locate", params={"lon": 113.608, "lat": 34.705, "at": "2021-06-01"})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"lon": 200, "lat": 34.7},
        {"lon": 113.6, "lat": -91},
        {"lon": "east", "lat": 34.7},
        {"lat": 34.7},
        {"lon": 113.6, "lat": 34.7, "crs": "epsg:3857"},
        {"lon": 113.6, "lat": 34.7, "at": "yesterday"},
        {"lon": "nan", "lat": 34.7},
    ],
)
def test_bad_input_is_422_with_the_error_shape(client: TestClient, params: dict) -> None:
    r = client.get("/api/v1/locate", params=params)
    assert r.status_code == 422, r.text
    body = r.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == "invalid_parameter"


def test_grid_feature(client: TestClient) -> None:
    gid = client.get("/api/v1/locate", params={"lon": 113.608, "lat": 34.705}).json()["chain"][2][
        "id"
    ]
    r = client.get(f"/api/v1/grids/{gid}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    f = r.json()
    assert f["type"] == "Feature" and f["geometry"]["type"] == "MultiPolygon"
    assert f["properties"]["level"] == "grid"
    assert [c["level"] for c in f["properties"]["chain"]] == ["street", "community", "grid"]
    assert client.get("/api/v1/grids/999999").status_code == 404
    assert client.get("/api/v1/grids/abc").status_code == 422


def test_health_reports_versions(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["database"]["postgresql"].startswith("15")
    assert body["database"]["postgis"].startswith("3.")


def _lattice() -> list[tuple[float, float]]:
    """Points every 0.0025° over both streets and a margin around them: inside each level,
    on the edges and corners grids share, and outside; plus two far away."""
    xs = [round(113.585 + 0.0025 * i, 4) for i in range(13)]
    ys = [round(34.6975 + 0.0025 * j, 4) for j in range(7)]
    return [(x, y) for x in xs for y in ys] + [(113.70, 34.70), (-70.5, -33.4)]


@pytest.mark.parametrize("crs", ["wgs84", "gcj02", "bd09"])
def test_batch_answers_as_single_locate_point_by_point(client: TestClient, crs: str) -> None:
    """POST /locate routes each point to the grid GET /locate finds (same finest grid, code
    and chain), null where the single answer is 404; both read points in the same datum."""
    wgs = _lattice()
    if crs == "wgs84":
        points = wgs
    else:
        lons, lats = from_wgs84([p[0] for p in wgs], [p[1] for p in wgs], crs)
        points = [(float(x), float(y)) for x, y in zip(lons, lats, strict=True)]
    r = client.post("/api/v1/locate", json={"points": points, "crs": crs})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(points) == len(body["results"])
    levels, outside = set(), 0
    for (lon, lat), got in zip(points, body["results"], strict=True):
        one = client.get("/api/v1/locate", params={"lon": lon, "lat": lat, "crs": crs})
        if one.status_code == 404:
            assert got is None, (lon, lat, got)
            outside += 1
            continue
        assert one.status_code == 200, one.text
        chain = one.json()["chain"]
        expected = {
            "grid_id": chain[-1]["id"],
            "code": chain[-1]["code"],
            "chain": [g["id"] for g in chain],
        }
        assert got == expected, (lon, lat)
        levels.add(chain[-1]["level"])
    # Every routing level was exercised, and so were points outside the territory.
    assert levels == {"micro_grid", "community", "street"}
    assert outside >= 20


def test_batch_keeps_order_and_repeats(client: TestClient) -> None:
    east, west, out = (113.608, 34.705), (113.602, 34.703), (113.70, 34.70)
    points = [east, out, west, east, out, west] * 50
    results = client.post("/api/v1/locate", json={"points": points}).json()["results"]
    names = {east: "410103901001001001", west: "410103901001001002"}
    for p, got in zip(points, results, strict=True):
        assert (got or {}).get("code") == names.get(p), (p, got)


def test_batch_at_a_date(client: TestClient) -> None:
    points = [(113.608, 34.705), (113.595, 34.707), (113.595, 34.702)]
    before = client.post("/api/v1/locate", params={"at": "2019-06-01"}, json={"points": points})
    assert before.json()["results"] == [None, None, None]
    later = client.post("/api/v1/locate", params={"at": "2021-06-01"}, json={"points": points})
    assert [x["code"] for x in later.json()["results"]] == [
        "410103901001001001",
        "410103902001",
        "410103902",
    ]


def test_batch_answer_is_the_same_gzipped_or_not(client: TestClient) -> None:
    points = [(113.608, 34.705), (113.602, 34.703), (113.70, 34.70)] * 40
    plain = client.post(
        "/api/v1/locate", json={"points": points}, headers={"accept-encoding": "identity"}
    )
    packed = client.post(
        "/api/v1/locate", json={"points": points}, headers={"accept-encoding": "gzip"}
    )
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.json() == plain.json() and plain.json()["count"] == 120
