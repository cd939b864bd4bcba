"""Which hazards the public sees, one rule on every route (issue 11, finding 10).

The rule: the public fields of a hazard (category, description, status, address, place,
dates) are public in every state, closed ones too, as FixMyStreet shows fixed reports (it
builds trust that reports are handled); personal data (the reporter, the history's actors and
notes) never. The map's layers (OGC collection, tiles) draw the open ones, which need
attention. Before, anonymous lists and Open311 showed closed hazards while the address search
hid them and the README said the public saw open hazards only.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_service.hazards.states import CLOSED_STATUSES


@pytest.fixture(scope="module")
def closed(demo_engine: Engine) -> dict:
    """A closed demo hazard with an address and a reporter."""
    with demo_engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT id, public_code, address, status FROM hazards"
                " WHERE status = ANY (:closed) AND address IS NOT NULL"
                " AND reporter_name IS NOT NULL ORDER BY id LIMIT 1"
            ),
            {"closed": list(CLOSED_STATUSES)},
        ).one()
    return dict(row._mapping)


def _no_personal_data(body: str, doc: object = None) -> None:
    assert '"reporter":{' not in body.replace(" ", "")
    assert "reporter_phone" not in body and "reporter_name" not in body


def test_the_public_sees_closed_hazards_public_fields_everywhere(
    demo_client: TestClient, closed: dict
) -> None:
    # a list filtered by status
    r = demo_client.get("/api/v1/hazards", params={"status": "closed,rejected", "limit": 200})
    assert r.status_code == 200
    assert closed["id"] in [f["id"] for f in r.json()["features"]]
    _no_personal_data(r.text)
    # one hazard, by id and by its public code
    for ref in (closed["id"], closed["public_code"]):
        r = demo_client.get(f"/api/v1/hazards/{ref}")
        assert r.status_code == 200, r.text
        props = r.json()["properties"]
        assert props["status"] == closed["status"] and props["reporter"] is None
        assert all(e["actor"] is None and e["note"] is None for e in props["history"])
    # the search box: by code and by address
    for q in (closed["public_code"], closed["address"]):
        r = demo_client.get("/api/v1/search", params={"q": q})
        assert r.status_code == 200
        assert closed["id"] in [i["id"] for i in r.json()["items"] if i["kind"] != "grid"], q
    # Open311
    r = demo_client.get(f"/open311/v2/requests/{closed['public_code']}.json")
    assert r.status_code == 200 and r.json()[0]["status"] == "closed"
    _no_personal_data(r.text)


def test_the_map_layers_draw_open_hazards(demo_client: TestClient, closed: dict) -> None:
    r = demo_client.get("/ogc/collections/hazards_open/items", params={"limit": 1000})
    assert r.status_code == 200
    statuses = {f["properties"]["status"] for f in r.json()["features"]}
    assert statuses and not statuses & set(CLOSED_STATUSES)
