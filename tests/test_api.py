"""The REST API under /api/v1 on the demo district: grids, facilities, hazards, batch
locate, paging, CSV, datums and bad input."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_service.geo.datums import from_wgs84

PRIVATE = ("reporter_name", "reporter_phone", "mobile_phone", "idempotency_key")


def _scalar(engine: Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


@pytest.fixture(scope="module")
def grid_ids(demo_engine: Engine) -> dict[str, int]:
    """Ids of a known grid at each level, all on one chain."""
    with demo_engine.connect() as conn:
        micro = conn.execute(
            text(
                "SELECT id, path FROM grids WHERE level = 'micro_grid' AND valid_to IS NULL"
                " ORDER BY code LIMIT 1"
            )
        ).one()
    street, community, grid, micro_id = micro.path
    return {"street": street, "community": community, "grid": grid, "micro_grid": micro_id}


def _walk(client: TestClient, url: str, params: dict) -> list[dict]:
    """Follow next links to the end; return every feature."""
    features = []
    r = client.get(url, params=params)
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        features += body["features"]
        assert body["numberReturned"] == len(body["features"])
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        if not nxt:
            return features
        r = client.get(nxt[0])


def test_grid_list_by_level_pages_to_the_end(demo_client: TestClient, demo_engine) -> None:
    expected = _scalar(
        demo_engine, "SELECT count(*) FROM grids WHERE level = 'grid' AND valid_to IS NULL"
    )
    feats = _walk(demo_client, "/api/v1/grids", {"level": "grid", "limit": 150})
    assert len(feats) == expected
    assert len({f["id"] for f in feats}) == expected
    assert all(f["properties"]["level"] == "grid" for f in feats)
    assert all(f["properties"]["leader"]["role"] == "grid_leader" for f in feats)


def test_limit_above_maximum_is_clamped(demo_client: TestClient) -> None:
    r = demo_client.get("/api/v1/grids", params={"level": "micro_grid", "limit": 100000})
    assert r.status_code == 200
    body = r.json()
    assert body["numberReturned"] == 1000
    nxt = next(link["href"] for link in body["links"] if link["rel"] == "next")
    assert "limit=1000" in nxt and "offset=1000" in nxt


def test_grid_search_parent_and_bbox(demo_client: TestClient, grid_ids) -> None:
    body = demo_client.get("/api/v1/grids", params={"q": "嵩山路"}).json()
    assert [f["properties"]["name"] for f in body["features"]] == ["嵩山路街道"]
    kids = demo_client.get("/api/v1/grids", params={"parent": grid_ids["street"]}).json()
    assert kids["numberMatched"] > 0
    assert {f["properties"]["parent_id"] for f in kids["features"]} == {grid_ids["street"]}
    box = demo_client.get(
        "/api/v1/grids", params={"bbox": "113.60,34.70,113.61,34.71", "level": "micro_grid"}
    ).json()
    for f in box["features"]:
        xs = [c[0] for ring in f["geometry"]["coordinates"][0] for c in ring]
        assert min(xs) <= 113.61 and max(xs) >= 113.60


def test_children_ancestors_and_subtree(demo_client: TestClient, grid_ids) -> None:
    kids = demo_client.get(f"/api/v1/grids/{grid_ids['grid']}/children").json()
    assert grid_ids["micro_grid"] in {f["id"] for f in kids["features"]}
    anc = demo_client.get(f"/api/v1/grids/{grid_ids['micro_grid']}/ancestors").json()
    assert [f["id"] for f in anc["features"]] == [
        grid_ids["street"],
        grid_ids["community"],
        grid_ids["grid"],
    ]
    assert demo_client.get("/api/v1/grids/99999999/children").status_code == 404


def test_summary_matches_the_database(demo_client: TestClient, demo_engine, grid_ids) -> None:
    gid = grid_ids["community"]
    body = demo_client.get(f"/api/v1/grids/{gid}/summary").json()
    assert body["grid"]["id"] == gid
    assert any(p["role"] == "party_secretary" and p["work_phone"] for p in body["people"])
    sub = body["subtree"]
    open_sql = (
        "SELECT count(*) FROM hazards WHERE grid_path @> ARRAY[CAST(:g AS bigint)]"
        " AND status NOT IN ('closed', 'rejected', 'voided')"
    )
    assert sub["open_hazards"] == _scalar(demo_engine, open_sql, g=gid)
    assert sum(sub["open_hazards_by_category"].values()) == sub["open_hazards"]
    assert sum(sub["open_hazards_by_status"].values()) == sub["open_hazards"]
    fac = _scalar(
        demo_engine,
        "SELECT count(*) FROM facilities f, grids g WHERE g.id = :g"
        " AND ST_Intersects(f.geom, g.geom)",
        g=gid,
    )
    assert sub["facilities"] == fac
    assert set(sub["grids_by_level"]) == {"grid", "micro_grid"} | (
        {"special"} if "special" in sub["grids_by_level"] else set()
    )


def test_grid_hazards_are_open_by_default(demo_client: TestClient, demo_engine) -> None:
    street = _scalar(demo_engine, "SELECT id FROM grids WHERE name = '五里堡街道'")
    feats = _walk(demo_client, f"/api/v1/grids/{street}/hazards", {"limit": 50})
    assert feats and all(f["properties"]["status"] not in ("closed", "rejected") for f in feats)
    everything = demo_client.get(
        f"/api/v1/grids/{street}/hazards", params={"status": "all", "limit": 1}
    ).json()
    assert everything["numberMatched"] > len(feats)


def test_facilities_near_radius_uses_metres(demo_client: TestClient, demo_engine) -> None:
    lon, lat = 113.6200, 34.7200
    r = demo_client.get("/api/v1/facilities", params={"near": f"{lon},{lat}", "radius": 300})
    body = r.json()
    expected = _scalar(
        demo_engine,
        "SELECT count(*) FROM facilities WHERE ST_DWithin(geom::geography,"
        " ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography, 300)",
        x=lon,
        y=lat,
    )
    assert body["numberMatched"] == expected > 0
    assert all(f["properties"]["distance_m"] <= 300 for f in body["features"])


def test_facilities_by_type_and_bbox(demo_client: TestClient) -> None:
    body = demo_client.get(
        "/api/v1/facilities",
        params={"type": "sewage_cover", "bbox": "113.60,34.70,113.64,34.74", "limit": 500},
    ).json()
    assert body["numberReturned"] > 0
    for f in body["features"]:
        assert f["properties"]["type"] == "sewage_cover"
        x, y = f["geometry"]["coordinates"]
        assert 113.60 <= x <= 113.64 and 34.70 <= y <= 34.74
    r = demo_client.get("/api/v1/facilities", params={"type": "teleporter"})
    assert r.status_code == 422 and "teleporter" in r.json()["message"]


def test_nearest_facilities_knn(demo_client: TestClient) -> None:
    body = demo_client.get(
        "/api/v1/facilities/nearest", params={"lon": 113.62, "lat": 34.72, "k": 7}
    ).json()
    dists = [f["properties"]["distance_m"] for f in body["features"]]
    assert len(dists) == 7 and dists == sorted(dists)
    one = demo_client.get(
        "/api/v1/facilities/nearest",
        params={"lon": 113.62, "lat": 34.72, "k": 3, "type": "camera"},
    ).json()
    assert {f["properties"]["type"] for f in one["features"]} == {"camera"}


def test_facility_with_grid_chain(demo_client: TestClient, demo_engine) -> None:
    fid = _scalar(
        demo_engine,
        "SELECT id FROM facilities WHERE GeometryType(geom) = 'POINT' ORDER BY id LIMIT 1",
    )
    f = demo_client.get(f"/api/v1/facilities/{fid}").json()
    assert [g["level"] for g in f["properties"]["grid_chain"]] == [
        "street",
        "community",
        "grid",
        "micro_grid",
    ]
    assert demo_client.get("/api/v1/facilities/999999999").status_code == 404


def test_hazard_filters(demo_client: TestClient, demo_engine) -> None:
    body = demo_client.get(
        "/api/v1/hazards", params={"status": "dispatched,in_progress", "limit": 1000}
    ).json()
    assert {f["properties"]["status"] for f in body["features"]} <= {"dispatched", "in_progress"}
    assert body["numberMatched"] == _scalar(
        demo_engine, "SELECT count(*) FROM hazards WHERE status IN ('dispatched', 'in_progress')"
    )
    body = demo_client.get(
        "/api/v1/hazards", params={"category": "sewer_blockage", "status": "all"}
    ).json()
    assert body["numberMatched"] > 0
    assert {f["properties"]["category"] for f in body["features"]} == {"sewer_blockage"}
    overdue = demo_client.get("/api/v1/hazards", params={"overdue": "true"}).json()
    assert overdue["numberMatched"] > 0
    assert all(f["properties"]["overdue"] for f in overdue["features"])
    since = demo_client.get(
        "/api/v1/hazards", params={"since": "2000-01-01T00:00:00Z", "until": "2000-01-02T00:00:00Z"}
    ).json()
    assert since["numberMatched"] == 0
    bad = demo_client.get("/api/v1/hazards", params={"status": "lost"})
    assert bad.status_code == 422 and "lost" in bad.json()["message"]


def test_hazard_with_history_and_no_private_fields(demo_client: TestClient, demo_engine) -> None:
    hid = _scalar(demo_engine, "SELECT id FROM hazards WHERE status = 'closed' LIMIT 1")
    r = demo_client.get(f"/api/v1/hazards/{hid}")
    h = r.json()
    actions = [e["action"] for e in h["properties"]["history"]]
    # the demo's history calls some closed cases back (回访) after their close
    last_close = len(actions) - 1 - actions[::-1].index("close")
    assert actions[0] == "report" and set(actions[last_close + 1 :]) <= {"callback"}, actions
    for text_ in (r.text, demo_client.get("/api/v1/hazards", params={"limit": 1000}).text):
        for field in PRIVATE:
            assert field not in text_
    phones = _scalar(demo_engine, "SELECT array_agg(reporter_phone) FROM hazards")
    listing = demo_client.get("/api/v1/hazards", params={"status": "all", "limit": 1000}).text
    assert not any(p and p in listing for p in phones)


def test_csv_output(demo_client: TestClient) -> None:
    r = demo_client.get("/api/v1/hazards", params={"f": "csv", "status": "all", "limit": 20})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 20 and "lon" in rows[0] and "reporter_phone" not in rows[0]
    r = demo_client.get("/api/v1/grids", params={"level": "street"}, headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert {"嵩山路街道", "铭功路街道", "五里堡街道"} <= {row["name"] for row in rows}
    assert rows[0]["wkt"].startswith("MULTIPOLYGON")
    r = demo_client.get("/api/v1/facilities", params={"f": "csv", "limit": 5})
    assert len(list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))) == 5


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_output_in_chinese_datums(demo_client: TestClient, grid_ids, datum: str) -> None:
    gid = grid_ids["micro_grid"]
    wgs = demo_client.get(f"/api/v1/grids/{gid}").json()["geometry"]["coordinates"]
    out = demo_client.get(f"/api/v1/grids/{gid}", params={"crs": datum}).json()
    got = np.array(out["geometry"]["coordinates"][0][0])
    src = np.array(wgs[0][0])
    exp = np.column_stack(from_wgs84(src[:, 0], src[:, 1], datum))
    assert np.abs(got - exp).max() < 2e-7
    body = demo_client.get(
        "/api/v1/hazards", params={"crs": datum, "limit": 5, "status": "all"}
    ).json()
    assert len(body["features"]) == 5


def test_gcj02_bbox_and_near_are_converted(demo_client: TestClient) -> None:
    w = demo_client.get(
        "/api/v1/facilities", params={"bbox": "113.60,34.70,113.62,34.72", "limit": 1}
    ).json()
    (x0, x1), (y0, y1) = from_wgs84([113.60, 113.62], [34.70, 34.72], "gcj02")
    g = demo_client.get(
        "/api/v1/facilities",
        params={"bbox": f"{x0},{y0},{x1},{y1}", "crs": "gcj02", "limit": 1},
    ).json()
    assert g["numberMatched"] == pytest.approx(w["numberMatched"], rel=0.02)


def test_batch_locate(demo_client: TestClient, demo_engine) -> None:
    with demo_engine.connect() as conn:
        pts = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p), id FROM (SELECT id, ST_PointOnSurface(geom) AS p"
                " FROM grids WHERE level = 'micro_grid' ORDER BY code LIMIT 300) s"
            )
        ).all()
    points = [[x, y] for x, y, _ in pts] + [[120.0, 30.0]]
    r = demo_client.post("/api/v1/locate", json={"points": points})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 301
    assert [res["grid_id"] for res in body["results"][:-1]] == [gid for _, _, gid in pts]
    assert body["results"][-1] is None
    assert len(body["results"][0]["chain"]) == 4


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"points": [[0.0, 0.0]] * 10001}, 422),
        ({"points": [[200.0, 0.0]]}, 422),
        ({"points": []}, 422),
        ({"points": [[113.6, 34.7]], "crs": "epsg:3857"}, 422),
        ({"points": [[113.6, 34.7]], "extra": 1}, 422),
    ],
)
def test_batch_locate_bad_input(demo_client: TestClient, payload: dict, status: int) -> None:
    r = demo_client.post("/api/v1/locate", content=json.dumps(payload))
    assert r.status_code == status
    assert set(r.json()) == {"code", "message", "details"}


@pytest.mark.parametrize(
    ("url", "params", "status"),
    [
        ("/api/v1/grids", {"bbox": "1,2,3"}, 422),
        ("/api/v1/grids", {"bbox": "a,b,c,d"}, 422),
        ("/api/v1/grids", {"bbox": "113.6,34.7,190,34.8"}, 422),
        ("/api/v1/grids", {"bbox": "113.6,34.7,113.7,34.8,1"}, 422),
        ("/api/v1/grids", {"crs": "epsg:2385"}, 422),
        ("/api/v1/grids", {"level": "province"}, 422),
        ("/api/v1/grids", {"colour": "red"}, 400),
        ("/api/v1/facilities", {"near": "113.6"}, 422),
        ("/api/v1/facilities", {"near": "113.6,34.7", "radius": 100000}, 422),
        ("/api/v1/hazards", {"limit": 0}, 422),
        ("/api/v1/hazards", {"offset": -1}, 422),
        ("/api/v1/hazards/0", {}, 422),
        ("/api/v1/locate", {"lon": 113.6, "lat": 34.7, "foo": 1}, 400),
    ],
)
def test_bad_input_is_a_clear_4xx(
    demo_client: TestClient, url: str, params: dict, status: int
) -> None:
    r = demo_client.get(url, params=params)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message", "details"} and body["message"]


def test_bbox_reads_as_on_ogc(demo_client: TestClient) -> None:
    """/api lists read a bbox as /ogc does (one rule, stated in both documents; issue 11,
    finding 12): minLon > maxLon crosses the antimeridian, latitudes past a pole or in the
    wrong order are read as meant, and a large box is answered (the lists are paged)."""

    def ids(bbox: str) -> list:
        r = demo_client.get("/api/v1/grids", params={"bbox": bbox, "limit": 1000})
        assert r.status_code == 200, (bbox, r.text)
        return sorted(f["id"] for f in r.json()["features"])

    inside = ids("113.6,34.7,113.7,34.8")
    assert inside
    assert ids("113.6,34.8,113.7,34.7") == inside  # latitudes in the wrong order
    assert ids("113.6,34.7,0,113.7,34.8,0") == inside  # with heights (ignored)
    assert ids("170,-90,-170,90") == []  # across the antimeridian: far from here
    assert ids("170,-90,113.7,95") == ids("-180,-90,180,90")  # round the back to 113.7
    r = demo_client.get("/api/v1/grids", params={"bbox": "100,20,130,50", "limit": 5})
    assert r.status_code == 200 and len(r.json()["features"]) == 5  # large: paged, not refused
    r = demo_client.get("/api/v1/hazards", params={"since": "2026-02-01", "until": "2026-01-01"})
    assert r.status_code == 200 and r.json()["features"] == []  # a reversed span holds nothing


@pytest.mark.parametrize(
    "query",
    [
        "",
        "limit=2",
        "bbox=113.6,34.7,113.7,34.8&limit=3&offset=6",
        "offset=4&limit=2&type=gas_cover&type=sewer_bend_well&api_key=s3cr%20t",
        "q=%E4%BA%95+%E7%9B%96&f=json&limit=1&offset=0&blank=",
        "api_key=k&near=113.64,34.72&radius=250.5&limit=5&offset=5&limit=6",
    ],
)
def test_page_links_read_as_starlettes_url_helpers_write_them(query: str) -> None:
    """page_links reads the query once; each link must be what the URL helpers it replaced
    (remove api_key, then include_query_params) gave, parameter for parameter."""
    from starlette.requests import Request

    from gis_service.http.listing import Page, page_links

    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "server": ("testserver", 80),
        "path": "/api/v1/facilities",
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver")],
    }
    request = Request(scope)
    page = Page(limit=2, offset=4)
    url = request.url.remove_query_params(["api_key"])
    expected = {
        "self": str(url),
        "next": str(url.include_query_params(limit=2, offset=6)),
        "prev": str(url.include_query_params(limit=2, offset=2)),
        "alternate": str(url.include_query_params(f="csv")),
    }
    links = {x["rel"]: x["href"] for x in page_links(request, page, returned=2, matched=100)}
    assert links == expected
    assert "api_key" not in "".join(links.values())
