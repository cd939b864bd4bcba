"""Body caps: the general cap, and the larger ones of the upload endpoints."""

from __future__ import annotations

from fastapi.testclient import TestClient

MB = 1024 * 1024


def test_general_cap_is_413_in_the_error_shape(demo_client: TestClient) -> None:
    r = demo_client.post(
        "/api/v1/locate",
        content=b"x" * (17 * MB),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"


def test_photo_reports_may_carry_more_than_the_general_cap(demo_client: TestClient) -> None:
    # 20 MB of photos (two of 10 MB) is within 5 × 10 MB: the cap must not answer 413;
    # the hazard endpoint then judges the content itself (here: not real images).
    files = [("photos", (f"p{i}.jpg", b"\xff\xd8\xff" + b"0" * (10 * MB - 3))) for i in range(2)]
    data = {"category": "sewer_blockage", "lon": "113.62", "lat": "34.72", "description": "测试"}
    r = demo_client.post("/api/v1/hazards", data=data, files=files)
    assert r.status_code != 413, r.text
    assert 400 <= r.status_code < 500
