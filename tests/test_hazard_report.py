"""Reporting a hazard: routing and its snapshot, outside every grid, datums, idempotent
retries, duplicate suggestions, asset snapping, photos and EXIF stripping, privacy."""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from gis_service.geo.datums import from_wgs84
from tests.support.databases import Databases
from tests.support.hazard_world import (
    BOUNDARY_LON,
    MANHOLE,
    NEAR_MANHOLE,
    World,
    build_world,
    jpeg_with_gps,
    png_bytes,
)


@pytest.fixture(scope="module")
def world(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(databases, tmp_path_factory.mktemp("report"), "hrep") as w:
        yield w


def test_report_is_routed_and_snapshotted(world: World) -> None:
    r = world.client.post(
        "/api/v1/hazards",
        json={
            "category": "clutter",
            "lon": 113.603,
            "lat": 34.703,
            "accuracy_m": 8,
            "description": "院内乱堆乱放杂物",
            "reporter_name": "张三",
            "reporter_phone": "139-0000-0000",
        },
        headers=world.auth("field"),
    )
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/api/v1/hazards/{r.json()['id']}"
    assert r.headers["etag"] == '"1"'
    props = r.json()["properties"]
    assert props["status"] == "reported"
    assert props["public_code"].startswith("YH") and "-" in props["public_code"]
    assert props["grid_id"] == world.grids["west_grid"]
    assert [g["code"] for g in props["grid_chain"]] == [
        "410103900",
        "410103900001",
        "410103900001001",
    ]
    assert props["responsible"]["name"] == "西网格长"
    assert props["responsible"]["role"] == "grid_leader"
    assert props["responsible"]["work_phone"] == "0371-4000"
    assert props["department"] == "二七区城市管理局" or props["department"]  # category default
    assert props["source"] == "patrol"  # staff with a person default to patrol
    assert props["location_accuracy_m"] == 8
    hid = r.json()["id"]
    dept = world.scalar(
        "SELECT d.code FROM hazards h JOIN departments d ON d.id = h.department_id "
        "WHERE h.id = :id",
        id=hid,
    )
    assert dept == world.client.app.state.catalog.hazard_categories["clutter"].default_department
    # the report is the first step of the history, and audited
    history = props["history"]
    assert [e["action"] for e in history] == ["report"]
    assert (
        world.scalar(
            "SELECT count(*) FROM audit_log WHERE object_type = 'hazard' AND object_id = :id "
            "AND action = 'hazard.report'",
            id=str(hid),
        )
        == 1
    )


def test_reporter_contact_is_private(world: World) -> None:
    hid = world.report(None, reporter_name="李四", reporter_phone="137-1111-2222")["id"]
    public = world.client.get(f"/api/v1/hazards/{hid}").text
    assert "137-1111-2222" not in public and "李四" not in public
    staff = world.client.get(f"/api/v1/hazards/{hid}", headers=world.auth("west_community"))
    assert staff.json()["properties"]["reporter"]["phone"] == "137-1111-2222"
    # staff of another community do not see it either
    other = world.client.get(f"/api/v1/hazards/{hid}", headers=world.auth("east_community"))
    assert "137-1111-2222" not in other.text
    # the public list never shows it
    listing = world.client.get("/api/v1/hazards", params={"limit": 1000}).text
    assert "137-1111-2222" not in listing


def test_anonymous_report_is_a_resident_report(world: World) -> None:
    body = world.report(None)
    assert body["properties"]["source"] == "resident"
    r = world.client.post(
        "/api/v1/hazards",
        json={
            "category": "clutter",
            "lon": 113.603,
            "lat": 34.703,
            "description": "x",
            "source": "superior",
        },
    )
    assert r.status_code == 422 and "anonymous" in r.json()["message"]


def test_point_on_a_shared_boundary_goes_to_the_smaller_code(world: World) -> None:
    body = world.report("admin", lon=BOUNDARY_LON, lat=34.71)
    assert body["properties"]["grid_id"] == world.grids["west_grid"]
    body = world.report("admin", lon=BOUNDARY_LON + 1e-6, lat=34.71)
    assert body["properties"]["grid_id"] == world.grids["east_grid"]
    assert body["properties"]["responsible"]["name"] == "东网格长"


def test_outside_every_grid_names_the_nearest(world: World) -> None:
    r = world.client.post(
        "/api/v1/hazards",
        json={"category": "clutter", "lon": 113.625, "lat": 34.71, "description": "x"},
        headers=world.auth("admin"),
    )
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "outside_grids"
    assert body["details"]["nearest_grid"]["code"] == "410103900002001"  # finest of the ties
    assert 400 < body["details"]["distance_m"] < 500  # 0.005° of longitude at 34.7°N ≈ 457 m
    assert "m away" in body["message"]


def test_gcj02_and_bd09_input_is_converted(world: World) -> None:
    wlon, wlat = 113.603, 34.703
    for datum in ("gcj02", "bd09"):
        lon, lat = (float(v) for v in from_wgs84(wlon, wlat, datum))
        body = world.report("admin", lon=lon, lat=lat, crs=datum)
        x, y = body["geometry"]["coordinates"]
        assert abs(x - wlon) < 1e-6 and abs(y - wlat) < 1e-6
        assert body["properties"]["grid_id"] == world.grids["west_grid"]


def test_redrawn_grids_keep_the_old_snapshot(world: World) -> None:
    old = world.report("admin", lon=113.607, lat=34.713)
    assert old["properties"]["grid_id"] == world.grids["west_grid"]
    with world.engine.begin() as conn:
        # The west grid is redrawn: the old version ends, a new one (new id, new leader) starts.
        conn.execute(
            text(
                "UPDATE grids SET valid_to = now() WHERE id = 9004;"
                "INSERT INTO people (id, name, work_phone) VALUES (8100, '新网格长', '0371-9999');"
            )
        )
        new_id = conn.execute(
            text(
                "INSERT INTO grids (code, name, level, parent_id, geom) "
                "SELECT code, '西一网格(新)', level, parent_id, geom FROM grids WHERE id = 9004 "
                "RETURNING id"
            )
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO grid_assignments (grid_id, person_id, role, is_primary) "
                "VALUES (:g, 8100, 'grid_leader', true)"
            ),
            {"g": new_id},
        )
    try:
        new = world.report("admin", lon=113.607, lat=34.713)
        assert new["properties"]["grid_id"] == new_id
        assert new["properties"]["responsible"]["name"] == "新网格长"
        assert new["properties"]["grid_chain"][-1]["name"] == "西一网格(新)"
        again = world.client.get(f"/api/v1/hazards/{old['id']}").json()["properties"]
        assert again["grid_id"] == world.grids["west_grid"]
        assert again["responsible"]["name"] == "西网格长"
        assert again["grid_chain"][-1]["name"] == "西一网格"
    finally:
        with world.engine.begin() as conn:
            conn.execute(
                text("UPDATE hazards SET grid_id = NULL WHERE grid_id = :g"), {"g": new_id}
            )
            conn.execute(text("DELETE FROM grids WHERE id = :g"), {"g": new_id})
            conn.execute(text("UPDATE grids SET valid_to = NULL WHERE id = 9004"))


def test_idempotency_keys_belong_to_their_caller(world: World) -> None:
    """A key another caller used finds nothing of theirs: a new report, not a 422 naming
    somebody else's report; an Open311 token lookup does not find a REST report by its key
    (issue 11, finding 10)."""
    body = {"category": "graffiti", "lon": 113.612, "lat": 34.712, "description": "小广告"}
    key = "shared-key-" + uuid.uuid4().hex[:8]
    first = world.client.post(
        "/api/v1/hazards", json=body, headers={**world.auth("field"), "Idempotency-Key": key}
    )
    assert first.status_code == 201, first.text
    other = world.client.post(
        "/api/v1/hazards",
        json={**body, "description": "另一个人的另一件事"},
        headers={**world.auth("street"), "Idempotency-Key": key},
    )
    assert other.status_code == 201, other.text
    assert other.json()["id"] != first.json()["id"]
    anonymous = world.client.post(
        "/api/v1/hazards", json={**body, "description": "匿名"}, headers={"Idempotency-Key": key}
    )
    assert anonymous.status_code == 201 and anonymous.json()["id"] not in (
        first.json()["id"],
        other.json()["id"],
    )
    looked_up = world.client.get(f"/open311/v2/tokens/{key}.json")
    assert looked_up.status_code == 404, looked_up.text


def test_idempotent_retry_returns_the_first_report(world: World) -> None:
    body = {
        "category": "graffiti",
        "lon": 113.612,
        "lat": 34.712,
        "description": "单元门口张贴大量小广告",
    }
    headers = {**world.auth("field"), "Idempotency-Key": "phone-42-report-0001"}
    first = world.client.post("/api/v1/hazards", json=body, headers=headers)
    again = world.client.post("/api/v1/hazards", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert again.json()["created"] is False
    assert (
        world.scalar(
            "SELECT count(*) FROM hazards WHERE idempotency_key LIKE '%|phone-42-report-0001'"
        )
        == 1
    )
    changed = world.client.post(
        "/api/v1/hazards", json={**body, "description": "另一件事"}, headers=headers
    )
    assert changed.status_code == 422
    assert changed.json()["code"] == "idempotency_key_reused"
    # the key may come as a field too
    field = world.client.post(
        "/api/v1/hazards",
        json={**body, "idempotency_key": "phone-42-report-0001"},
        headers=world.auth("field"),
    )
    assert field.status_code == 200 and field.json()["id"] == first.json()["id"]


def test_concurrent_retries_create_one_hazard(world: World) -> None:
    body = {"category": "graffiti", "lon": 113.611, "lat": 34.711, "description": "小广告"}
    headers = {**world.auth("field"), "Idempotency-Key": "race-key-000001"}
    results: list[int] = []

    def post() -> None:
        r = world.client.post("/api/v1/hazards", json=body, headers=headers)
        results.append(r.status_code)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 200, 200, 201]
    assert (
        world.scalar("SELECT count(*) FROM hazards WHERE idempotency_key LIKE '%|race-key-000001'")
        == 1
    )


def test_duplicate_suggestions(world: World) -> None:
    first = world.report("admin", category="waterlogging", lon=113.6161, lat=34.7161)
    assert first["duplicate_suggestions"] == []
    # 20 m away, same category: suggested; another category at the same spot: not
    world.report("admin", category="clutter", lon=113.6161, lat=34.7161)
    second = world.report("admin", category="waterlogging", lon=113.6163, lat=34.7162)
    sugg = second["duplicate_suggestions"]
    assert [s["id"] for s in sugg] == [first["id"]]
    assert 10 < sugg[0]["distance_m"] < 40
    # beyond the category radius: none
    radius = world.client.app.state.catalog.hazard_categories["waterlogging"].duplicate_radius_m
    far = world.report(
        "admin", category="waterlogging", lon=113.6161 + (radius + 30) / 91_500, lat=34.7161
    )
    assert first["id"] not in [s["id"] for s in far["duplicate_suggestions"]]


def test_asset_snapping(world: World) -> None:
    snapped = world.report(
        "admin", category="manhole_cover_sunken", lon=NEAR_MANHOLE[0], lat=NEAR_MANHOLE[1]
    )
    assert snapped["facility"]["code"] == "4101030301000001"
    assert snapped["facility"]["snapped"] is True
    assert 3 < snapped["facility"]["distance_m"] < 7
    assert snapped["properties"]["facility_code"] == "4101030301000001"
    # too far from any manhole (radius 15 m): no facility
    far = world.report("admin", category="manhole_cover_sunken", lon=113.607, lat=34.707)
    assert far["facility"] is None and far["properties"]["facility_code"] is None
    # a category without facility types never snaps, even next to one
    clutter = world.report("admin", category="clutter", lon=MANHOLE[0], lat=MANHOLE[1])
    assert clutter["facility"] is None
    # an explicit code is checked: it must exist and be of the category's types
    given = world.report(
        "admin",
        category="manhole_cover_sunken",
        lon=113.607,
        lat=34.707,
        facility_code="4101030301000002",
    )
    assert given["facility"]["snapped"] is False
    assert given["properties"]["facility_code"] == "4101030301000002"
    for code, fragment in (("NOPE-1", "No facility"), ("9101030301000003", "bench")):
        r = world.client.post(
            "/api/v1/hazards",
            json={
                "category": "manhole_cover_sunken",
                "lon": 113.607,
                "lat": 34.707,
                "description": "x",
                "facility_code": code,
            },
            headers=world.auth("admin"),
        )
        assert r.status_code == 422 and fragment in r.json()["message"], r.text


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"category": "nope"}, "Unknown hazard category"),
        ({"lon": 200}, "lon"),
        ({"description": ""}, "description"),
        ({"severity": "huge"}, "severity"),
        ({"source": "rumour"}, "source"),
        ({"crs": "epsg3857"}, "crs"),
        ({"reporter_phone": "call me"}, "reporter_phone"),
        ({"colour": "red"}, "colour"),
        ({"idempotency_key": "short"}, "idempotency_key"),
        # taken as sent, as documented: stripping accepted a key the document refuses
        ({"idempotency_key": " phone-42-report-0002 "}, "idempotency_key"),
    ],
)
def test_bad_reports_are_422(world: World, body: dict, fragment: str) -> None:
    full = {"category": "clutter", "lon": 113.603, "lat": 34.703, "description": "x", **body}
    r = world.client.post("/api/v1/hazards", json=full, headers=world.auth("admin"))
    assert r.status_code == 422, r.text
    assert fragment in r.text


def test_bad_bodies(world: World) -> None:
    r = world.client.post(
        "/api/v1/hazards",
        content=b"{not json",
        headers={**world.auth("admin"), "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["code"] == "bad_json"
    r = world.client.post(
        "/api/v1/hazards",
        content=b"category=clutter",
        headers={**world.auth("admin"), "Content-Type": "text/plain"},
    )
    assert r.status_code == 415
    r = world.client.post("/api/v1/hazards", json=[1, 2], headers=world.auth("admin"))
    assert r.status_code == 422
    # viewers have no 'report' scope
    r = world.client.post(
        "/api/v1/hazards",
        json={"category": "clutter", "lon": 113.603, "lat": 34.703, "description": "x"},
        headers=world.auth("viewer"),
    )
    assert r.status_code == 403


# ---- photos -----------------------------------------------------------------------------------
def _multipart_report(world: World, files: list, who: str | None = "field", **fields: object):
    data = {
        "category": "clutter",
        "lon": "113.604",
        "lat": "34.704",
        "description": "带照片的上报",
        **{k: str(v) for k, v in fields.items()},
    }
    return world.client.post("/api/v1/hazards", data=data, files=files, headers=world.auth(who))


def test_photos_are_stored_stripped_and_thumbnailed(world: World) -> None:
    jpeg = jpeg_with_gps((640, 480))
    assert Image.open(io.BytesIO(jpeg)).getexif().get_ifd(0x8825)  # the test file has GPS
    r = _multipart_report(
        world,
        [
            ("photos", ("scene.jpg", jpeg, "image/jpeg")),
            # a PNG sent under a .jpg name and a wrong content type: sniffed, not believed
            ("photos", ("other.jpg", png_bytes(), "image/jpeg")),
        ],
    )
    assert r.status_code == 201, r.text
    hid = r.json()["id"]
    photos = r.json()["properties"]["photos"]
    assert [p["content_type"] for p in photos] == ["image/jpeg", "image/png"]
    assert r.json()["properties"]["history"][0]["photos"][0]["id"] == photos[0]["id"]
    public = world.client.get(photos[0]["url"])
    assert public.status_code == 200 and public.headers["content-type"] == "image/jpeg"
    img = Image.open(io.BytesIO(public.content))
    assert img.size == (640, 480)
    exif = img.getexif()
    assert len(exif) == 0 and not exif.get_ifd(0x8825)
    assert b"GPS-Phone" not in public.content and b"TestCam" not in public.content
    thumb = world.client.get(photos[0]["thumbnail_url"])
    assert thumb.status_code == 200
    assert max(Image.open(io.BytesIO(thumb.content)).size) == world.settings.photo_thumb_px
    png = world.client.get(photos[1]["url"])
    assert png.headers["content-type"] == "image/png"
    # the original keeps its EXIF, for staff in scope only; others get 404
    orig_url = photos[0]["url"] + "?variant=original"
    assert world.client.get(orig_url).status_code == 404
    assert world.client.get(orig_url, headers=world.auth("east_community")).status_code == 404
    orig = world.client.get(orig_url, headers=world.auth("west_community"))
    assert orig.status_code == 200 and orig.content == jpeg
    assert orig.headers["cache-control"] == "private, no-store"
    # files live under the data folder
    folder = Path(world.settings.photos_path) / str(hid) / photos[0]["id"]
    assert sorted(p.name for p in folder.iterdir()) == ["original.jpg", "public.jpg", "thumb.jpg"]
    had_gps = world.scalar(
        "SELECT had_gps FROM hazard_photos WHERE id = CAST(:id AS uuid)", id=photos[0]["id"]
    )
    assert had_gps is True


def test_photo_validation(world: World, tmp_path: Path) -> None:
    before = world.scalar("SELECT count(*) FROM hazards")
    cases = [
        ([("photos", ("a.jpg", b"GIF89a" + b"\x00" * 100, "image/jpeg"))], 415, "JPEG, PNG"),
        ([("photos", ("a.txt", b"hello world", "text/plain"))], 415, "not a JPEG"),
        ([("photos", ("empty.jpg", b"", "image/jpeg"))], 422, "empty"),
        (
            [("photos", (f"p{i}.png", png_bytes(), "image/png")) for i in range(6)],
            422,
            "At most 5",
        ),
        ([("photos", ("cut.jpg", jpeg_with_gps()[:200], "image/jpeg"))], 422, "decoded"),
    ]
    for files, status, fragment in cases:
        r = _multipart_report(world, files)
        assert r.status_code == status, (fragment, r.text)
        assert fragment in r.json()["message"], r.text
    # a file over the size limit (a real JPEG padded past 10 MB)
    big = jpeg_with_gps() + b"\x00" * (world.settings.photo_max_bytes + 1)
    r = _multipart_report(world, [("photos", ("big.jpg", big, "image/jpeg"))])
    assert r.status_code == 413 and "MB" in r.json()["message"]
    # nothing was created by any refused report, and no file was left behind
    assert world.scalar("SELECT count(*) FROM hazards") == before


def test_form_fields_are_validated_too(world: World) -> None:
    r = _multipart_report(world, [], lon="east")
    assert r.status_code == 422 and "lon" in r.text
    ok = _multipart_report(world, [], severity="high")
    assert ok.status_code == 201 and ok.json()["properties"]["severity"] == "high"
