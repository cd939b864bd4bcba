"""Operations on real PostGIS: backup → wipe → restore, a backup killed with -9, damaged
archives, retention, photo archiving, the doctor, /metrics (parsed by prometheus_client's own
parser), JSON request logs without secrets, and the audit export.

One writable demo database serves the whole module (loading the demo is the slow part).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gis_service.app import create_app
from gis_service.cli import app as cli_app
from gis_service.config import PROJECT_ROOT, Settings
from gis_service.db.engine import make_engine
from gis_service.hazards.sql import OVERDUE
from gis_service.hazards.states import CLOSED_STATUSES
from gis_service.http.observability import JsonFormatter
from gis_service.ops import backup as ops_backup
from gis_service.ops.backup import backup, list_archives, prune, read_manifest, verify
from gis_service.ops.doctor import examine, render
from gis_service.ops.hygiene import archive_photos
from gis_service.ops.pgtools import OpsError, database_for
from gis_service.ops.restore import restore
from tests.support.authkit import app_settings, bearer_for, key_for, make_user
from tests.support.databases import DEMO, POSTGIS, Databases

runner = CliRunner()
PHONE = "13812345678"


# ---- the world --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ops_url(databases: Databases) -> str:
    """A writable demo database for this module."""
    return databases.new("ops", DEMO)


@pytest.fixture(scope="module")
def ops_engine(ops_url: str) -> Iterator[Engine]:
    eng = make_engine(ops_url, pool_size=2)
    yield eng
    eng.dispose()


def _jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (seed % 256, 80, 160)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture(scope="module")
def src_data(ops_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with photos of a hazard closed three years ago (rows and files)."""
    data = tmp_path_factory.mktemp("ops-src")
    with ops_engine.begin() as conn:
        hazard = conn.execute(
            text("SELECT id FROM hazards WHERE status = 'closed' ORDER BY id LIMIT 1")
        ).scalar_one()
        conn.execute(
            text("UPDATE hazards SET closed_at = now() - interval '3 years' WHERE id = :id"),
            {"id": hazard},
        )
        for i in range(2):
            pid = uuid.uuid4()
            folder = data / "photos" / str(hazard) / str(pid)
            folder.mkdir(parents=True)
            body = _jpeg(i)
            for name in ("original.jpg", "public.jpg", "thumb.jpg"):
                (folder / name).write_bytes(body)
            conn.execute(
                text(
                    "INSERT INTO hazard_photos (id, hazard_id, position, content_type, bytes, "
                    "width, height, sha256) VALUES (:id, :h, :i, 'image/jpeg', :n, 8, 8, :sha)"
                ),
                {
                    "id": pid,
                    "h": hazard,
                    "i": i,
                    "n": len(body),
                    "sha": hashlib.sha256(body).hexdigest(),
                },
            )
    return data


@pytest.fixture(scope="module")
def archive(ops_url: str, src_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One backup of the module's database and photos."""
    result = backup(Settings(database_url=ops_url, data_dir=src_data), to=src_data / "bk")
    return Path(result["archive"])


def _stats(url: str) -> dict:
    from gis_service.ops.backup import table_stats

    conn = database_for(Settings(database_url=url)).connect()
    try:
        with conn.cursor() as cur:
            return table_stats(cur)
    finally:
        conn.close()


def _files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---- backup and restore -------------------------------------------------------------------------
def test_backup_wipe_restore_gives_identical_counts_and_checksums(
    archive: Path, ops_url: str, src_data: Path, databases: Databases, tmp_path: Path
) -> None:
    manifest = read_manifest(archive)
    assert manifest["photos"] == {
        "files": 6,
        "bytes": manifest["photos"]["bytes"],
        "rows": 2,
        "missing": 0,
        "missing_sample": [],
    }
    assert manifest["tables"]["public.hazards"]["rows"] > 100
    assert manifest["database"]["schema_revision"]
    assert {"db.dump", "photos.sha256"} <= set(manifest["files"])
    assert any(name.startswith("layers/") for name in manifest["files"])
    assert verify(archive)["photos"] == 6

    target_url = databases.new("restore", POSTGIS)
    dst = tmp_path / "dst"
    settings = Settings(database_url=target_url, data_dir=dst)
    result = restore(settings, archive)
    assert result["layers"] == "same as the layers/ in force"
    source_stats = _stats(ops_url)
    assert _stats(target_url) == source_stats == manifest["tables"]
    assert _files(dst / "photos") == _files(src_data / "photos")

    # A disaster in the restored copy: rows and photos gone.
    eng = make_engine(target_url, pool_size=1)
    with eng.begin() as conn:
        conn.execute(text("DELETE FROM hazard_photos"))
        conn.execute(text("DELETE FROM audit_log"))
    eng.dispose()
    shutil.rmtree(dst / "photos" / next(iter(os.listdir(dst / "photos"))))
    (dst / "photos" / "stray.txt").write_text("x")
    with pytest.raises(OpsError, match="not empty"):
        restore(settings, archive)
    result = restore(settings, archive, force=True)
    assert _stats(target_url) == source_stats
    assert _files(dst / "photos") == _files(src_data / "photos")
    # What --force replaced is kept aside, not deleted.
    kept = [p for p in dst.iterdir() if p.name.startswith("photos.before-restore-")]
    assert len(kept) == 1 and (kept[0] / "stray.txt").exists()


def _backup_process(url: str, data: Path, folder: Path, pause: float) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIS_")}
    env.update(
        DATABASE_URL=url,
        GIS_DATA_DIR=str(data),
        GIS_BACKUP_PAUSE_BEFORE_PUBLISH=str(pause),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "gis_service", "backup", "--to", str(folder)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"backup ended early: {proc.stdout.read().decode()}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the backup never reached the point to kill it at")


def _has_manifest(path: Path) -> bool:
    try:
        with tarfile.open(path, "r:") as tar:
            return "manifest.json" in tar.getnames()
    except (tarfile.TarError, OSError, EOFError):
        return False


def test_kill_9_during_backup_never_leaves_an_archive_that_claims_to_be_complete(
    ops_url: str, src_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "bk"
    # 1. Killed while pg_dump runs.
    proc = _backup_process(ops_url, src_data, folder, 0)
    _wait_for(lambda: any(folder.glob(".*.dump.partial")), proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list_archives(folder) == []
    # 2. Killed with the whole archive written, manifest included, just before the rename:
    #    still only a hidden .partial, which nothing takes for an archive.
    proc = _backup_process(ops_url, src_data, folder, 60)
    partial: list[Path] = []

    def written() -> bool:
        partial[:] = [p for p in folder.glob(".gis-backup-*.tar.partial") if _has_manifest(p)]
        return bool(partial)

    _wait_for(written, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list_archives(folder) == []
    assert [p.name for p in folder.iterdir() if not p.name.startswith(".")] == []
    with pytest.raises(OpsError, match="interrupted"):
        read_manifest(partial[0])
    # 3. The next backup clears the leftovers and publishes a complete archive.
    result = backup(Settings(database_url=ops_url, data_dir=src_data), to=folder)
    assert list_archives(folder) == [Path(result["archive"])]
    assert sorted(p.name for p in folder.iterdir()) == [
        ".gis-backup.lock",
        Path(result["archive"]).name,
    ]
    verify(Path(result["archive"]))


def test_damaged_or_truncated_archives_are_refused(
    archive: Path, databases: Databases, tmp_path: Path
) -> None:
    truncated = tmp_path / "gis-backup-20260101T000000Z.tar"
    data = archive.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(OpsError, match=r"no manifest|not a readable"):
        read_manifest(truncated)
    # One flipped byte inside the dump: the manifest is intact, the checksum is not.
    damaged = tmp_path / "gis-backup-20260101T000001Z.tar"
    with tarfile.open(archive) as tar:
        offset = tar.getmember("db.dump").offset_data
    flipped = bytearray(data)
    flipped[offset + 100] ^= 0xFF
    damaged.write_bytes(bytes(flipped))
    with pytest.raises(OpsError, match="damaged"):
        verify(damaged)
    target = databases.new("damaged", POSTGIS)
    with pytest.raises(OpsError, match="damaged"):
        restore(Settings(database_url=target, data_dir=tmp_path / "d"), damaged)
    assert _stats(target) == {}  # nothing was restored


def test_retention_keeps_the_newest(tmp_path: Path) -> None:
    names = [f"gis-backup-2026110{d}T020000Z.tar" for d in range(1, 6)]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".gis-backup-20261106T020000Z.tar.partial").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not a backup")
    assert [p.name for p in prune(tmp_path, 3)] == names[:2]
    result = runner.invoke(cli_app, ["backup", "prune", "--keep", "2", "--to", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert [p.name for p in list_archives(tmp_path)] == names[3:]
    assert (tmp_path / "notes.txt").exists()
    with pytest.raises(OpsError, match="at least 1"):
        prune(tmp_path, 0)


def test_schedule_examples_run_real_commands() -> None:
    """The cron and systemd examples call commands and options that exist."""
    deploy = PROJECT_ROOT / "deploy"
    lines = [
        line
        for path in sorted(deploy.rglob("*"))
        if path.is_file()
        for line in path.read_text().splitlines()
        if "gis-service " in line and not line.lstrip().startswith("#")
    ]
    commands = [re.search(r"gis-service ((?:backup|pitr|doctor)[^;&|\n]*)", ln) for ln in lines]
    commands = [c.group(1).split() for c in commands if c]
    assert any(c[0] == "backup" and "--keep" in c for c in commands), commands
    assert any(c[:2] == ["pitr", "base-backup"] for c in commands), commands
    for cmd in commands:
        head: list[str] = []
        for token in cmd:
            if not re.fullmatch(r"[a-z][a-z-]*", token) or len(head) == 2:
                break
            head.append(token)
        result = runner.invoke(cli_app, [*head, "--help"])
        assert result.exit_code == 0, (cmd, result.output)
        for option in (t.split("=")[0] for t in cmd if t.startswith("--")):
            assert option in result.output, (cmd, option)
    timer = (deploy / "systemd" / "gis-service-backup.timer").read_text()
    assert "OnCalendar=" in timer and "Persistent=true" in timer


# ---- photo hygiene ------------------------------------------------------------------------------
def test_archive_photos_of_long_closed_hazards(
    ops_url: str, ops_engine: Engine, src_data: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(src_data / "photos", data / "photos")
    settings = Settings(database_url=ops_url, data_dir=data)
    dry = archive_photos(settings, 2)
    assert dry["dry_run"] and dry["photos"] == 2
    assert archive_photos(settings, 5)["photos"] == 0  # closed 3 years ago, not 5
    moved = archive_photos(settings, 2, apply=True)
    assert moved["photos"] == 2
    assert not any((data / "photos").rglob("*.jpg"))
    with ops_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT hazard_id, id::text, archived_to FROM hazard_photos")
        ).all()
        audit = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'archive_photos'")
        ).scalar_one()
    assert audit == 1
    for hazard, pid, where in rows:
        assert where == f"{hazard}/{pid}"
        assert (settings.photo_archive_path / where / "thumb.jpg").is_file()
    # Still served, from the archive.
    with TestClient(create_app(app_settings(ops_url, data))) as client:
        hazard, pid, _ = rows[0]
        r = client.get(f"/api/v1/hazards/{hazard}/photos/{pid}", params={"variant": "thumb"})
        assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
    # A backup finds every photo in the archive folder.
    result = backup(settings, to=tmp_path / "bk")
    manifest = read_manifest(Path(result["archive"]))
    assert manifest["photos"]["missing"] == 0 and manifest["photos"]["files"] == 6
    # Put the rows back for the other tests of the module.
    with ops_engine.begin() as conn:
        conn.execute(text("UPDATE hazard_photos SET archived_to = NULL, archived_at = NULL"))
        conn.execute(text("DELETE FROM audit_log WHERE action = 'archive_photos'"))


# ---- doctor ----------------------------------------------------------------------------------
def test_doctor_reports_sizes_bloat_unused_indexes_and_long_queries(
    ops_url: str, ops_engine: Engine, tmp_path: Path
) -> None:
    # A connection of its own: its statistics reach the server when it closes.
    scratch = database_for(Settings(database_url=ops_url)).connect()
    scratch.autocommit = True
    with scratch.cursor() as cur:
        cur.execute("CREATE TABLE doctor_scratch AS SELECT generate_series(1, 20000) AS n")
        cur.execute("DELETE FROM doctor_scratch WHERE n > 100")
    scratch.close()
    stop = threading.Event()

    def slow() -> None:
        eng = make_engine(ops_url, pool_size=1)
        with eng.connect() as conn:
            # A phone number in the query text must not reach the report.
            conn.execute(text(f"SELECT pg_sleep(4), '{PHONE}'"))
        eng.dispose()
        stop.set()

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        time.sleep(1.5)
        report = examine(Settings(database_url=ops_url, data_dir=tmp_path), long_seconds=1)
    finally:
        thread.join()
        with ops_engine.begin() as conn:
            conn.execute(text("DROP TABLE doctor_scratch"))
    assert report["tables"] and report["database_bytes"] > 0
    assert report["tables"][0]["total_bytes"] >= report["tables"][-1]["total_bytes"]
    assert any(b["name"] == "doctor_scratch" for b in report["bloat"]), report["bloat"]
    assert report["unused_indexes"], "a fresh database has indexes never scanned"
    slow_q = [q for q in report["long_queries"] if "pg_sleep" in q["query"]]
    assert slow_q and PHONE not in slow_q[0]["query"]
    assert report["schema"]["up_to_date"] and report["backup"] is None
    zh, en = render(report, "zh"), render(report, "en")
    assert "体检报告" in zh and "最大的表" in zh and "从未使用的索引" in zh
    assert "Largest tables" in en and "Indexes never used" in en and "体检" not in en
    assert "没有找到备份" in render(report, "both") and "no backup found" in render(report)
    result = runner.invoke(
        cli_app,
        ["doctor", "--lang", "en"],
        env={"DATABASE_URL": ops_url, "GIS_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0 and "Disk use" in result.output, result.output


# ---- metrics -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def metrics_client(ops_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = app_settings(
        ops_url, tmp_path_factory.mktemp("metrics"), metrics_allow=["10.0.0.0/8", "::1"]
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _scrape(client: TestClient) -> dict:
    r = client.get("/metrics", headers={"X-Forwarded-For": "10.1.2.3"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def _sample(families: dict, family: str, sample: str, **labels: str) -> float:
    found = [
        s.value
        for s in families[family].samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(found)


def test_metrics_are_not_public(metrics_client: TestClient, ops_engine: Engine) -> None:
    settings = metrics_client.app.state.settings
    assert metrics_client.get("/metrics").status_code == 401
    outside = metrics_client.get("/metrics", headers={"X-Forwarded-For": "192.168.1.9"})
    assert outside.status_code == 401 and outside.json()["code"] == "unauthorized"
    assert (
        metrics_client.get("/metrics", headers={"X-Forwarded-For": "10.9.8.7"}).status_code == 200
    )
    with ops_engine.connect() as conn:
        grid = conn.execute(text("SELECT min(id) FROM grids")).scalar_one()
    viewer = make_user(ops_engine, "viewer", grid=grid)
    r = metrics_client.get("/metrics", headers=bearer_for(ops_engine, settings, viewer["id"]))
    assert r.status_code == 403
    admin = make_user(ops_engine, "admin")
    r = metrics_client.get("/metrics", headers=bearer_for(ops_engine, settings, admin["id"]))
    assert r.status_code == 200
    _, reader = key_for(ops_engine, ["metrics"])
    assert metrics_client.get("/metrics", headers={"X-API-Key": reader}).status_code == 200
    _, other = key_for(ops_engine, ["read"])
    assert metrics_client.get("/metrics", headers={"X-API-Key": other}).status_code == 403
    # Prometheus can send the key as a query parameter (scrape_config params).
    assert metrics_client.get("/metrics", params={"api_key": reader}).status_code == 200


def test_metrics_parse_and_count_by_route_template(
    metrics_client: TestClient, ops_engine: Engine
) -> None:
    with ops_engine.connect() as conn:
        grids = conn.execute(text("SELECT id FROM grids ORDER BY id LIMIT 2")).scalars().all()
        # open: not in the one list of closed states (the demo voids some reports)
        open_by_status = dict(
            conn.execute(
                text(
                    "SELECT status, count(*) FROM hazards t WHERE status <> ALL (:closed) "
                    "GROUP BY status"
                ),
                {"closed": list(CLOSED_STATUSES)},
            ).all()
        )
        overdue = conn.execute(text(f"SELECT count(*) FROM hazards t WHERE {OVERDUE}")).scalar()
    before = _scrape(metrics_client)
    route = "/api/v1/grids/{grid_id}"
    n0 = _sample(before, "gis_http_requests", "gis_http_requests_total", route=route, status="200")
    for gid in grids:
        assert metrics_client.get(f"/api/v1/grids/{gid}").status_code == 200
    assert metrics_client.get("/tiles/hazards/12/3340/1623.pbf").status_code in (200, 204)
    after = _scrape(metrics_client)
    n1 = _sample(after, "gis_http_requests", "gis_http_requests_total", route=route, status="200")
    assert n1 - n0 == 2
    labels = {s.labels.get("route") for s in after["gis_http_requests"].samples}
    assert not labels & {f"/api/v1/grids/{g}" for g in grids}, labels
    count = _sample(
        after,
        "gis_http_request_duration_seconds",
        "gis_http_request_duration_seconds_count",
        route=route,
    )
    inf = _sample(
        after,
        "gis_http_request_duration_seconds",
        "gis_http_request_duration_seconds_bucket",
        route=route,
        le="+Inf",
    )
    assert count == inf >= 2
    for status, n in open_by_status.items():
        assert _sample(after, "gis_hazards_open", "gis_hazards_open", status=status) == n
    assert _sample(after, "gis_hazards_overdue", "gis_hazards_overdue") == overdue
    assert "gis_import_runs" in after and _sample(after, "gis_database_up", "gis_database_up") == 1
    assert "gis_db_pool_connections_in_use" in after and "gis_db_pool_connections_max" in after
    misses = _sample(
        after, "gis_tile_cache_requests", "gis_tile_cache_requests_total", result="miss"
    ) - _sample(before, "gis_tile_cache_requests", "gis_tile_cache_requests_total", result="miss")
    assert misses == 1


def test_metrics_sum_over_several_workers(ops_url: str, tmp_path: Path) -> None:
    """Two uvicorn workers, requests spread over both; every scrape sums them all."""
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp = tmp_path / "mp"
    mp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIS_")}
    env.update(
        DATABASE_URL=ops_url,
        GIS_DATA_DIR=str(tmp_path / "data"),
        GIS_METRICS_ALLOW="127.0.0.1/32",
        GIS_LOAD_DEMO="false",
        PROMETHEUS_MULTIPROC_DIR=str(mp),
    )
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--factory", "gis_service.app:create_app",
            "--workers", "2", "--port", str(port), "--log-level", "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        n = 0
        pids: set[str] = set()
        # A new connection each: the kernel hands them to either worker; go on until both
        # have answered some (each worker writes its own counter file).
        while n < 20 or (len(pids) < 2 and n < 400):
            with httpx.Client() as c:
                assert c.get(f"{base}/api/v1/grids", params={"limit": 1}).status_code == 200
            n += 1
            pids = {p.name.split("_")[-1] for p in mp.glob("counter_*.db")}
        assert len(pids) == 2, f"both workers should have answered: {pids}"
        for _ in range(4):  # whichever worker answers the scrape
            with httpx.Client() as c:
                body = c.get(f"{base}/metrics").text
            fams = {f.name: f for f in text_string_to_metric_families(body)}
            total = _sample(
                fams, "gis_http_requests", "gis_http_requests_total", route="/api/v1/grids"
            )
            assert total == n
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


# ---- logs -------------------------------------------------------------------------------------
def test_request_log_is_json_without_secrets_or_phones(
    metrics_client: TestClient, ops_engine: Engine
) -> None:
    key, secret = key_for(ops_engine, ["read", "report", "open311"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("gis.access")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        r = metrics_client.get("/open311/v2/services.json", params={"api_key": secret})
        assert r.status_code == 200
        with ops_engine.connect() as conn:
            lon, lat, category = conn.execute(
                text(
                    "SELECT ST_X(p), ST_Y(p), (SELECT code FROM hazard_categories LIMIT 1) FROM "
                    "(SELECT ST_PointOnSurface(geom) p FROM grids WHERE level = 'micro_grid' "
                    "LIMIT 1) s"
                )
            ).one()
        r = metrics_client.post(
            "/api/v1/hazards",
            headers={"X-API-Key": secret},
            json={
                "category": category,
                "lon": lon,
                "lat": lat,
                "description": f"井盖松动，联系 {PHONE}",
                "reporter_phone": PHONE,
            },
        )
        assert r.status_code in (200, 201), r.text
        r = metrics_client.post(
            "/api/v1/auth/login", json={"username": "nobody", "password": "hunter2-secret-pw"}
        )
        assert r.status_code in (401, 429)
        # Free text with a phone or a key is masked on its way out too.
        logging.getLogger("gis.test").error("failed for %s with key %s", PHONE, secret)
        logging.getLogger("gis.test").removeHandler(handler)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    out = stream.getvalue()
    lines = [json.loads(line) for line in out.splitlines()]
    requests = [ln for ln in lines if ln.get("event") == "request"]
    assert [ln["route"] for ln in requests] == [
        "/open311/v2/services.{fmt}",
        "/api/v1/hazards",
        "/api/v1/auth/login",
    ]
    assert requests[0]["caller"] == f"api_key:{key['id']}" and requests[0]["status"] == 200
    assert all(isinstance(ln["duration_ms"], float) for ln in requests)
    for forbidden in (secret, PHONE, "hunter2", "api_key="):
        assert forbidden not in out, forbidden
    formatted = JsonFormatter().format(
        logging.LogRecord("gis.test", logging.ERROR, "", 0, "call %s key %s", (PHONE, secret), None)
    )
    assert PHONE not in formatted and secret not in formatted


# ---- audit export ------------------------------------------------------------------------------
def test_audit_export_by_date_range(
    metrics_client: TestClient, ops_engine: Engine, ops_url: str, tmp_path: Path
) -> None:
    settings = metrics_client.app.state.settings
    admin = make_user(ops_engine, "admin")
    headers = bearer_for(ops_engine, settings, admin["id"])
    with ops_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (at, principal_kind, principal_name, action, object_type,"
                " object_id, after) VALUES (:at, 'system', 'system', 'export_test', 'hazard', "
                ":oid, CAST(:after AS jsonb))"
            ),
            [
                {"at": datetime(2025, 3, d, 1, tzinfo=UTC), "oid": str(d), "after": '{"a": 1}'}
                for d in (1, 2, 3)
            ],
        )
    # 2025-03-02 01:00 UTC is 09:00 in Shanghai: the local day 2025-03-02 holds exactly one.
    r = metrics_client.get(
        "/api/v1/audit/export",
        params={"since": "2025-03-02", "until": "2025-03-03"},
        headers=headers,
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["object_id"] for row in rows] == ["2"]
    assert rows[0]["at"] == "2025-03-02T01:00:00Z" and json.loads(rows[0]["after"]) == {"a": 1}
    r = metrics_client.get(
        "/api/v1/audit/export",
        params={"since": "2025-03-01T00:00:00+00:00", "until": "2025-03-04", "format": "json"},
        headers=headers,
    )
    assert r.status_code == 200
    exported = [json.loads(line) for line in r.text.splitlines()]
    assert [e["object_id"] for e in exported if e["action"] == "export_test"] == ["1", "2", "3"]
    reversed_span = {"since": "2025-03-04", "until": "2025-03-01"}  # holds nothing: a header
    r = metrics_client.get("/api/v1/audit/export", params=reversed_span, headers=headers)
    assert r.status_code == 200 and len(r.text.splitlines()) == 1, r.text
    for bad in ({"since": "yesterday"},
                {"since": "2025-03-01\x00"}, {"since": "99999-01-01"}):  # fmt: skip
        r = metrics_client.get("/api/v1/audit/export", params=bad, headers=headers)
        # a NUL is refused at the edge (400 nul_character), the rest by the route (422)
        assert r.status_code == (400 if "\x00" in bad["since"] else 422), (bad, r.text)
    assert (
        metrics_client.get("/api/v1/audit/export", params={"since": "2025-03-01"}).status_code
        == 401
    )
    out = tmp_path / "audit.jsonl"
    result = runner.invoke(
        cli_app,
        ["audit", "export", "--since", "2025-03-01", "--until", "2025-03-03", "--format", "json",
         "-o", str(out)],
        env={"DATABASE_URL": ops_url, "GIS_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ids = [json.loads(line)["object_id"] for line in out.read_text().splitlines()]
    assert ids == ["1", "2"]
    with ops_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE action = 'export_test'"))


def test_backup_cli_lists_and_verifies(archive: Path) -> None:
    result = runner.invoke(cli_app, ["backup", "list", "--to", str(archive.parent)])
    assert result.exit_code == 0 and archive.name in result.output
    result = runner.invoke(cli_app, ["backup", "verify", str(archive)])
    assert result.exit_code == 0 and json.loads(result.output)["photos"] == 6
    result = runner.invoke(cli_app, ["backup", "verify", str(archive.parent / "nope.tar")])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert ops_backup.archive_name(datetime(2026, 12, 1, 1, 30, tzinfo=UTC), "Pre Upgrade") == (
        "gis-backup-20261201T013000Z-pre-upgrade.tar"
    )
    assert timedelta(0) < datetime.now(UTC) - datetime.fromisoformat(
        read_manifest(archive)["created_at"].replace("Z", "+00:00")
    )
