"""Body caps: the general cap, and the larger ones of the upload endpoints."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.aio import run_async

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


def test_upload_is_not_read_before_the_caller_is_known(demo_client: TestClient) -> None:
    """An anonymous 200 MB upload to /api/v1/imports is refused with 401 before its body is
    read (issue 11, finding 6: it used to be read and spooled to disk first). The app is
    driven at the ASGI level with a body that counts how much of it was pulled."""
    app = demo_client.app
    chunk, chunks = b"x" * MB, 200
    pulled = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < chunks}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/imports",
        "raw_path": b"/api/v1/imports",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"multipart/form-data; boundary=xyz"),
            (b"content-length", str(chunks * MB).encode()),
        ],
        "client": ("198.51.100.1", 4321),
        "server": ("testserver", 80),
        "state": {},
    }
    run_async(app(scope, receive, send))
    assert sent[0]["status"] == 401
    assert pulled <= 1, f"{pulled} MB of an anonymous upload were read"


def test_small_bodies_have_a_small_cap(demo_client: TestClient) -> None:
    """A login, a user or a key is a few fields: more than 64 KiB is 413 as it streams."""
    big = {"username": "x" * (70 * 1024), "password": "y"}
    r = demo_client.post("/api/v1/auth/login", json=big)
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
