"""``gis-service doctor``: what an operator should look at, in Chinese and English.

Disk use of every folder the service writes, free space, the largest tables, dead-row bloat,
indexes never used, queries running long, the newest backup, WAL archiving, and whether the
schema is current. Each finding carries a level (ok, warn) and a suggested action.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from gis_service.config import Settings
from gis_service.db import migrate
from gis_service.db.engine import make_engine
from gis_service.ops.backup import ARCHIVE_RE, list_archives
from gis_service.ops.files import tree_size
from gis_service.ops.pgtools import database_for
from gis_service.ops.redact import redact

LONG_QUERY_SECONDS = 60
BACKUP_WARN_HOURS = 48
FREE_WARN_FRACTION = 0.10

TABLE_SIZES = text(
    """
    SELECT c.oid::regclass::text AS name, c.reltuples::bigint AS rows,
           pg_table_size(c.oid) AS table_bytes, pg_indexes_size(c.oid) AS index_bytes,
           pg_total_relation_size(c.oid) AS total_bytes
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname !~ '^pg_(toast|temp)'
     ORDER BY total_bytes DESC LIMIT :limit
    """
)
# Dead rows left by updates and deletes that (auto)vacuum has not reclaimed yet.
BLOAT = text(
    """
    SELECT relid::regclass::text AS name, n_live_tup AS live, n_dead_tup AS dead,
           round(100.0 * n_dead_tup / greatest(n_live_tup + n_dead_tup, 1), 1) AS dead_pct,
           pg_table_size(relid) AS table_bytes,
           greatest(last_vacuum, last_autovacuum) AS last_vacuum
      FROM pg_stat_user_tables
     WHERE n_dead_tup > 1000 AND n_dead_tup > 0.2 * greatest(n_live_tup, 1)
     ORDER BY n_dead_tup DESC LIMIT 20
    """
)
# Unique and primary-key indexes enforce rules even when never scanned: not listed.
UNUSED_INDEXES = text(
    """
    SELECT s.indexrelid::regclass::text AS name, s.relid::regclass::text AS table_name,
           pg_relation_size(s.indexrelid) AS bytes
      FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
     WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
     ORDER BY bytes DESC LIMIT 30
    """
)
STATS_SINCE = text("SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()")
LONG_QUERIES = text(
    """
    SELECT pid, state, usename, extract(epoch FROM now() - query_start)::int AS seconds,
           left(query, 300) AS query
      FROM pg_stat_activity
     WHERE pid <> pg_backend_pid() AND state IS NOT NULL AND state <> 'idle'
       AND backend_type = 'client backend'
       AND query_start < now() - make_interval(secs => :seconds)
     ORDER BY query_start LIMIT 20
    """
)
DATABASE_SIZE = text("SELECT pg_database_size(current_database())")
ARCHIVER = text(
    "SELECT current_setting('archive_mode'), archived_count, failed_count, last_archived_time, "
    "last_failed_time FROM pg_stat_archiver"
)

# (中文, English) of every heading and message.
TEXT: dict[str, tuple[str, str]] = {
    "title": ("gis-service 体检报告", "gis-service health report"),
    "disk": ("磁盘占用", "Disk use"),
    "free": ("剩余空间", "Free space"),
    "free_low": ("剩余空间不足 10%，请清理或扩容", "less than 10% free: clean up or add space"),
    "tables": ("最大的表", "Largest tables"),
    "bloat": ("膨胀（死行）", "Bloat (dead rows)"),
    "bloat_none": ("没有明显膨胀", "no notable bloat"),
    "bloat_fix": ("建议执行 VACUUM (ANALYZE)", "run VACUUM (ANALYZE) on them"),
    "unused": ("从未使用的索引", "Indexes never used"),
    "unused_none": ("没有", "none"),
    "unused_note": (
        "统计自 {since} 起；删除前请确认业务低峰期也未使用",
        "statistics since {since}; check a full business cycle before dropping any",
    ),
    "long": ("长时间运行的查询", "Long-running queries"),
    "long_none": ("没有超过 {s} 秒的查询", "none running over {s} s"),
    "backups": ("备份", "Backups"),
    "backup_none": (
        "没有找到备份：请执行 gis-service backup",
        "no backup found: run gis-service backup",
    ),
    "backup_old": ("最新备份已超过 {h} 小时", "the newest backup is over {h} hours old"),
    "backup_ok": ("最新备份 {name}（{age} 小时前）", "newest backup {name} ({age} hours ago)"),
    "wal": ("WAL 归档（时间点恢复）", "WAL archiving (point-in-time recovery)"),
    "wal_off": ("未开启（设置 GIS_WAL_ARCHIVE_DIR）", "off (set GIS_WAL_ARCHIVE_DIR)"),
    "wal_failed": (
        "归档失败 {n} 次，请查看 PostgreSQL 日志",
        "{n} failed archive attempts: see the PostgreSQL log",
    ),
    "schema": ("数据库结构版本", "Schema revision"),
    "schema_old": ("需要执行 gis-service db upgrade", "needs gis-service db upgrade"),
    "database": ("数据库", "Database"),
}


def _t(key: str, lang: str, **kw: Any) -> str:
    zh, en = TEXT[key]
    zh, en = zh.format(**kw), en.format(**kw)
    return {"zh": zh, "en": en}.get(lang, f"{zh} / {en}")


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def examine(settings: Settings, long_seconds: float = LONG_QUERY_SECONDS) -> dict[str, Any]:
    """Collect the findings (no output: render() words them); queries running longer than
    ``long_seconds`` are listed."""
    db = database_for(settings)
    folders = {
        "data": settings.data_path,
        "photos": settings.photos_path,
        "photo_archive": settings.photo_archive_path,
        "backups": settings.backups_path,
    }
    if db.cluster is not None:
        folders["postgresql"] = db.cluster.home
    if settings.wal_archive_dir:
        folders["wal_archive"] = settings.wal_archive_dir
    disk = {name: {"path": str(p), "bytes": tree_size(p)} for name, p in folders.items()}
    usage = shutil.disk_usage(settings.data_path if settings.data_path.exists() else "/")
    report: dict[str, Any] = {
        "long_seconds": long_seconds,
        "checked_at": datetime.now(UTC).isoformat(),
        "database": db.label,
        "disk": disk,
        "free": {"bytes": usage.free, "total": usage.total, "fraction": usage.free / usage.total},
    }
    engine = make_engine(db.url, pool_size=1)
    try:
        with engine.connect() as conn:
            report["database_bytes"] = conn.execute(DATABASE_SIZE).scalar_one()
            sizes = conn.execute(TABLE_SIZES, {"limit": 15}).mappings()
            report["tables"] = [dict(r) for r in sizes]
            report["bloat"] = [
                {**dict(r), "last_vacuum": r["last_vacuum"] and r["last_vacuum"].isoformat()}
                for r in conn.execute(BLOAT).mappings()
            ]
            report["unused_indexes"] = [dict(r) for r in conn.execute(UNUSED_INDEXES).mappings()]
            since = conn.execute(STATS_SINCE).scalar()
            report["stats_since"] = since.isoformat() if since else None
            report["long_queries"] = [
                {**dict(r), "query": redact(r["query"] or "")}
                for r in conn.execute(LONG_QUERIES, {"seconds": long_seconds}).mappings()
            ]
            mode, archived, failed, last_ok, last_failed = conn.execute(ARCHIVER).one()
            report["wal"] = {
                "configured": settings.wal_archive_dir is not None and db.cluster is not None,
                "archive_mode": mode,
                "archived": archived,
                "failed": failed,
                "last_archived": last_ok.isoformat() if last_ok else None,
                "last_failed": last_failed.isoformat() if last_failed else None,
            }
        current, head = migrate.current(engine), migrate.head(engine)
        report["schema"] = {"current": current, "head": head, "up_to_date": current == head}
    finally:
        engine.dispose()
    archives = list_archives(settings.backups_path)
    if archives:
        newest = archives[-1]
        stamp = ARCHIVE_RE.match(newest.name).group(1)  # type: ignore[union-attr]
        made = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        report["backup"] = {
            "newest": str(newest),
            "bytes": newest.stat().st_size,
            "age_hours": round((datetime.now(UTC) - made).total_seconds() / 3600, 1),
            "count": len(archives),
        }
    else:
        report["backup"] = None
    return report


def render(report: dict[str, Any], lang: str = "both") -> str:
    """The report as text in Chinese, English or both."""
    out = [f"== {_t('title', lang)} ==", f"{_t('database', lang)}: {report['database']}", ""]
    out.append(f"-- {_t('disk', lang)} --")
    for name, entry in report["disk"].items():
        out.append(f"  {name:<14} {_human(entry['bytes']):>10}  {entry['path']}")
    free = report["free"]
    line = f"  {_t('free', lang)}: {_human(free['bytes'])} / {_human(free['total'])}"
    if free["fraction"] < FREE_WARN_FRACTION:
        line += f"  [WARN] {_t('free_low', lang)}"
    out += [line, ""]
    out.append(f"-- {_t('tables', lang)} ({_human(report['database_bytes'])}) --")
    for t in report["tables"]:
        out.append(
            f"  {t['name']:<28} {max(t['rows'], 0):>10,} rows  {_human(t['table_bytes']):>9} "
            f"+ idx {_human(t['index_bytes']):>9}"
        )
    out += ["", f"-- {_t('bloat', lang)} --"]
    if report["bloat"]:
        for b in report["bloat"]:
            out.append(f"  [WARN] {b['name']:<28} {b['dead']:,} dead ({b['dead_pct']}%)")
        out.append(f"  {_t('bloat_fix', lang)}")
    else:
        out.append(f"  {_t('bloat_none', lang)}")
    out += ["", f"-- {_t('unused', lang)} --"]
    for i in report["unused_indexes"]:
        out.append(f"  {i['name']:<40} {_human(i['bytes']):>9}  ({i['table_name']})")
    if not report["unused_indexes"]:
        out.append(f"  {_t('unused_none', lang)}")
    out.append(f"  {_t('unused_note', lang, since=report['stats_since'] or '?')}")
    out += ["", f"-- {_t('long', lang)} --"]
    for q in report["long_queries"]:
        out.append(f"  [WARN] pid {q['pid']} {q['seconds']} s {q['state']}: {q['query'][:120]}")
    if not report["long_queries"]:
        out.append(f"  {_t('long_none', lang, s=report['long_seconds'])}")
    out += ["", f"-- {_t('backups', lang)} --"]
    backup = report["backup"]
    if backup is None:
        out.append(f"  [WARN] {_t('backup_none', lang)}")
    elif backup["age_hours"] > BACKUP_WARN_HOURS:
        out.append(f"  [WARN] {_t('backup_old', lang, h=BACKUP_WARN_HOURS)}: {backup['newest']}")
    else:
        name = backup["newest"].rsplit("/", 1)[-1]
        out.append(f"  {_t('backup_ok', lang, name=name, age=backup['age_hours'])}")
    out += ["", f"-- {_t('wal', lang)} --"]
    wal = report["wal"]
    if not wal["configured"]:
        out.append(f"  {_t('wal_off', lang)}")
    else:
        out.append(
            f"  archive_mode={wal['archive_mode']} archived={wal['archived']} "
            f"last={wal['last_archived']}"
        )
        if wal["failed"]:
            out.append(f"  [WARN] {_t('wal_failed', lang, n=wal['failed'])}")
    schema = report["schema"]
    out += ["", f"-- {_t('schema', lang)} --", f"  {schema['current']} (head {schema['head']})"]
    if not schema["up_to_date"]:
        out.append(f"  [WARN] {_t('schema_old', lang)}")
    return "\n".join(out)
