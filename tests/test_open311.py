"""Open311 GeoReport v2 through an off-the-shelf client, in JSON and XML.

The client is the ``georeport`` package from PyPI (requests + xmltodict), talking to a real
uvicorn server on the loopback. It reads services, service definitions and requests; it has
no POST, so requests are created the way the spec describes (form-encoded, with api_key)
using ``requests`` directly, then read back through the client.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import requests
import xmltodict
from georeport import GeoReport
from sqlalchemy import text

from gis_service.auth.admin import create_key
from tests.support.databases import Databases
from tests.support.hazard_world import World, build_world, jpeg_with_gps
from tests.support.servers import Server


@pytest.fixture(scope="module")
def served(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    with build_world(databases, tmp_path_factory.mktemp("o311"), "ho311") as world:
        with world.engine.connect() as conn:
            _, key = create_key(conn, None, name="12345热线", scopes=["open311"])
            _, read_key = create_key(conn, None, name="只读", scopes=["read"])
        with Server(world.settings) as base:
            yield {
                "world": world,
                "base": f"{base}/open311/v2",
                "key": key,
                "read_key": read_key,
            }


def _post(served: dict, fmt: str = "json", **fields: object) -> requests.Response:
    data = {
        "api_key": served["key"],
        "service_code": "clutter",
        "lat": "34.703",
        "long": "113.603",
        "description": "楼下乱堆杂物",
        "first_name": "王",
        "last_name": "五",
        "phone": "138-0000-1111",
        "email": "wang@example.org",
        **fields,
    }
    return requests.post(f"{served['base']}/requests.{fmt}", data=data, timeout=30)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_client_lists_services(served: dict, fmt: str) -> None:
    client = GeoReport(served["base"], output_format=fmt)
    services = client.get_service_list()
    by_code = {s["service_code"]: s for s in services}
    world: World = served["world"]
    assert set(by_code) == set(world.client.app.state.catalog.hazard_categories)
    clutter = by_code["clutter"]
    assert clutter["service_name"] == "乱堆乱放"
    assert str(clutter["metadata"]).lower() == "true"
    assert clutter["type"] == "realtime"
    definition = client.get_service_definition("manhole_cover_sunken")
    assert definition["service_code"] == "manhole_cover_sunken"
    attrs = definition["attributes"]
    if fmt == "xml":
        attrs = attrs["attribute"]
    codes = [a["code"] for a in attrs]
    assert codes == ["severity", "accuracy_m", "facility_code"]
    severity = attrs[0]
    values = severity["values"] if fmt == "json" else severity["values"]["value"]
    assert [v["key"] for v in values] == ["low", "medium", "high", "critical"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_post_then_read_back(served: dict, fmt: str) -> None:
    r = _post(served, fmt, **{"attribute[severity]": "high", "attribute[accuracy_m]": "6"})
    assert r.status_code == 201, r.text
    if fmt == "json":
        created = r.json()[0]
    else:
        assert r.headers["content-type"].startswith("text/xml")
        created = xmltodict.parse(r.content)["service_requests"]["request"]
    rid, token = created["service_request_id"], created["token"]
    assert rid.startswith("YH")
    client = GeoReport(served["base"], output_format=fmt)
    req = client.get_service_request(rid)
    assert req["service_request_id"] == rid
    assert req["status"] == "open"
    assert req["service_code"] == "clutter"
    assert req["description"] == "楼下乱堆杂物"
    assert abs(float(req["lat"]) - 34.703) < 1e-6 and abs(float(req["long"]) - 113.603) < 1e-6
    assert req["agency_responsible"] == "西网格长（网格长）"
    requested = datetime.fromisoformat(req["requested_datetime"])
    assert requested.tzinfo is not None and requested.utcoffset().total_seconds() == 8 * 3600
    assert "已上报" in req["status_notes"]
    # the hazard behind it: routed, severity from the attribute, contact kept private
    world: World = served["world"]
    hid = world.scalar("SELECT id FROM hazards WHERE public_code = :c", c=rid)
    props = world.client.get(f"/api/v1/hazards/{hid}").json()["properties"]
    assert props["grid_id"] == world.grids["west_grid"]
    assert props["severity"] == "high" and props["source"] == "resident"
    assert "138-0000-1111" not in str(req) and "wang@example.org" not in str(req)
    assert world.scalar("SELECT reporter_phone FROM hazards WHERE id = :id", id=hid) == (
        "138-0000-1111"
    )
    # the token leads to the same id
    t = requests.get(f"{served['base']}/tokens/{token}.{fmt}", timeout=30)
    assert t.status_code == 200
    got = (
        t.json()[0] if fmt == "json" else xmltodict.parse(t.content)["service_requests"]["request"]
    )
    assert got == {"service_request_id": rid, "token": token}


def test_status_follows_the_loop(served: dict) -> None:
    world: World = served["world"]
    rid = _post(served).json()[0]["service_request_id"]
    hid = world.scalar("SELECT id FROM hazards WHERE public_code = :c", c=rid)
    client = GeoReport(served["base"])
    assert world.act(hid, "accept").status_code == 200
    r = world.act(hid, "dispatch", assignee_department="erqi_urban_management")
    assert r.status_code == 200
    req = client.get_service_request(rid)
    assert req["status"] == "open"
    assert req["agency_responsible"] == "二七区城市管理局"
    assert req["expected_datetime"] is not None
    assert datetime.fromisoformat(req["expected_datetime"]).tzinfo is not None
    for action in ("start", "resolve", "verify", "close"):
        assert world.act(hid, action).status_code == 200
    req = client.get_service_request(rid)
    assert req["status"] == "closed" and "已结案" in req["status_notes"]
    closed = client.get_service_requests(status="closed")
    assert rid in [x["service_request_id"] for x in closed]
    opened = client.get_service_requests(status="open")
    assert rid not in [x["service_request_id"] for x in opened]


def test_request_filters(served: dict) -> None:
    a = _post(served).json()[0]["service_request_id"]
    b = _post(served, service_code="graffiti", description="小广告").json()[0]["service_request_id"]
    client = GeoReport(served["base"])
    both = client.get_service_requests(service_request_id=f"{a},{b}")
    assert {x["service_request_id"] for x in both} == {a, b}
    graffiti = client.get_service_requests(service_code="graffiti")
    assert b in [x["service_request_id"] for x in graffiti]
    assert a not in [x["service_request_id"] for x in graffiti]
    past = client.get_service_requests(
        start_date="2020-01-01T00:00:00Z", end_date="2020-02-01T00:00:00Z"
    )
    assert past == []
    # XML with several requests is a list under <service_requests>
    xml_client = GeoReport(served["base"], output_format="xml")
    many = xml_client.get_service_requests(service_request_id=f"{a},{b}")
    assert {x["service_request_id"] for x in many} == {a, b}


def test_media_url_serves_the_public_photo(served: dict) -> None:
    world: World = served["world"]
    r = world.client.post(
        "/api/v1/hazards",
        data={"category": "clutter", "lon": "113.604", "lat": "34.704", "description": "照片"},
        files=[("photos", ("p.jpg", jpeg_with_gps(), "image/jpeg"))],
        headers=world.auth("field"),
    )
    rid = r.json()["properties"]["public_code"]
    req = GeoReport(served["base"]).get_service_request(rid)
    photo = requests.get(req["media_url"], timeout=30)
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert b"GPS-Phone" not in photo.content


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_errors_in_the_spec_form(served: dict, fmt: str) -> None:
    def errors(resp: requests.Response) -> list[dict]:
        if fmt == "json":
            return resp.json()
        parsed = xmltodict.parse(resp.content)["errors"]["error"]
        return parsed if isinstance(parsed, list) else [parsed]

    base = served["base"]
    cases = [
        (requests.get(f"{base}/services/nope.{fmt}", timeout=30), 404),
        (requests.get(f"{base}/requests/YH00000000-000000.{fmt}", timeout=30), 404),
        (requests.get(f"{base}/tokens/nothing.{fmt}", timeout=30), 404),
        (requests.get(f"{base}/requests.{fmt}", params={"status": "lost"}, timeout=30), 400),
        (
            requests.get(
                f"{base}/requests.{fmt}",
                params={"start_date": "2020-01-01T00:00:00Z", "end_date": "2021-01-01T00:00:00Z"},
                timeout=30,
            ),
            400,
        ),
        (_post(served, fmt, api_key=""), 401),
        (_post(served, fmt, api_key="not-a-key"), 401),
        (_post(served, fmt, api_key=served["read_key"]), 403),
        (_post(served, fmt, lat="", long=""), 400),
        (_post(served, fmt, service_code="nope"), 404),
        (_post(served, fmt, lat="34.703", long="113.700"), 422),  # outside every grid
        (_post(served, fmt, phone="call me"), 400),
    ]
    for resp, status in cases:
        assert resp.status_code == status, resp.text
        errs = errors(resp)
        assert len(errs) == 1
        assert int(errs[0]["code"]) == status
        assert errs[0]["description"]
    # the 422 names the nearest grid, as the REST API does
    outside = _post(served, fmt, lat="34.703", long="113.700")
    assert "410103900002001" in errors(outside)[0]["description"]


def test_demo_district_requests(demo_client, demo_engine) -> None:
    """On the demo district, every recent hazard is a request with the right open/closed."""
    from sqlalchemy import text

    from gis_service.hazards.states import CLOSED_STATUSES

    r = demo_client.get("/open311/v2/requests.json")
    assert r.status_code == 200
    docs = r.json()
    with demo_engine.connect() as conn:
        # the demo's history voids (作废) some reports: closed too, by the one list of states
        expected = dict(
            conn.execute(
                text(
                    "SELECT public_code, status = ANY (:closed) FROM hazards "
                    "WHERE reported_at >= now() - interval '90 days'"
                ),
                {"closed": list(CLOSED_STATUSES)},
            ).all()
        )
    assert len(docs) == min(len(expected), 1000)
    for doc in docs:
        assert doc["status"] == ("closed" if expected[doc["service_request_id"]] else "open")
        assert doc["agency_responsible"]
        assert datetime.fromisoformat(doc["requested_datetime"]).tzinfo is not None
    xml = demo_client.get("/open311/v2/requests.xml", params={"status": "open"})
    parsed = xmltodict.parse(xml.content)["service_requests"]["request"]
    assert len(parsed) == sum(1 for closed in expected.values() if not closed)


def test_xml_survives_control_characters(served: dict) -> None:
    """A description with characters XML 1.0 cannot hold (a vertical tab, a form feed) is
    filtered on the way in, and the XML documents stay parseable (issue 11, finding 11)."""
    r = _post(served, description="井盖\x0b塌陷\x0c，请处理", first_name="王\x1b")
    assert r.status_code == 201, r.text
    code = r.json()[0]["service_request_id"]
    xml = requests.get(f"{served['base']}/requests/{code}.xml", timeout=30)
    doc = xmltodict.parse(xml.content)
    assert doc["service_requests"]["request"]["description"] == "井盖塌陷，请处理"
    # Text stored before the filter existed is cleaned on the way out as well.
    world: World = served["world"]
    with world.engine.begin() as conn:
        conn.execute(
            text("UPDATE hazards SET address = :a WHERE public_code = :c"),
            {"a": "二七路\x0b1号", "c": code},
        )
    listed = requests.get(f"{served['base']}/requests/{code}.xml", timeout=30)
    assert xmltodict.parse(listed.content)["service_requests"]["request"]["address"] == "二七路1号"


def test_the_form_takes_what_it_states(served: dict) -> None:
    """Issue 11, finding 12: the form states lat and long as required and each name up to 50
    characters; two names of 50 made a reporter name of 101 and a 400 (now cut at 100)."""
    r = _post(served, first_name="王" * 50, last_name="五" * 50)
    assert r.status_code == 201, r.text
    r = _post(served, **{"attribute[severity]": "extreme"})  # stated as the report's enum
    assert r.status_code == 400, r.text
