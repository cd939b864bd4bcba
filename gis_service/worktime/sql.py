"""The SQL of the working calendar; the arithmetic itself is the functions of migration 0006
(gis_is_workday, gis_work_seconds, gis_work_add, gis_work_due)."""

from __future__ import annotations

from sqlalchemy import Integer, SmallInteger, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY

CLEAR_DAYS = text("DELETE FROM work_days")

INSERT_DAYS = text(
    """
    INSERT INTO work_days (day, workday, name, source)
    SELECT * FROM unnest(CAST(:days AS date[]), CAST(:workdays AS boolean[]),
                         CAST(:names AS text[]), CAST(:sources AS text[]))
    """
)

SET_SCHEDULE = text(
    """
    UPDATE work_schedule
       SET tz = :tz, weekend = :weekend, periods = :periods, day_seconds = :day_seconds,
           first_year = :first_year, last_year = :last_year, synced_at = now()
    """
).bindparams(
    bindparam("weekend", type_=ARRAY(SmallInteger)),
    bindparam("periods", type_=ARRAY(Integer, dimensions=2)),
)

SCHEDULE = text(
    "SELECT tz, weekend, periods, day_seconds, first_year, last_year FROM work_schedule"
)

# Every day of a span with whether it is worked and why (bounded by the caller).
DAYS = text(
    """
    SELECT d::date AS day, extract(isodow FROM d)::int AS weekday,
           gis_is_workday(d::date) AS workday, w.name, w.source
      FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') AS d
      LEFT JOIN work_days w ON w.day = d::date
     ORDER BY d
    """
)

DUE = text(
    """
    SELECT gis_work_due(CAST(:start AS timestamptz), CAST(:lim AS jsonb)) AS due,
           gis_limit_seconds(CAST(:lim AS jsonb)) AS seconds
    """
)

WORK_SECONDS = text("SELECT gis_work_seconds(CAST(:a AS timestamptz), CAST(:b AS timestamptz))")
