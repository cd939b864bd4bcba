"""Working time: the office's calendar (days off and 调休 working days), its working hours, the
SQL arithmetic of working time, standard class codes and 立案/处置/结案 limits on categories,
and the three deadlines of a case.

Deadlines of digital city management run in working time (GB/T 30428.8 counts 立案, 处置 and
结案 limits in 工作时/工作日): nights, weekends and public holidays do not count, adjusted
working weekends (调休) do. The day facts come from the `holidays` package and the office's
layers/calendar.yaml (synced at start-up into work_days); the arithmetic is the two SQL
functions below, so every deadline, overdue flag and statistic uses the same rule.

Revision ID: 0006_working_time
Revises: 0005_imports
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0006_working_time"
down_revision = "0005_imports"
branch_labels = None
depends_on = None

UPGRADE = [
    # Only the days that differ from the weekly rule are stored: public holidays on weekdays,
    # 调休 working weekends, and the office's own overrides.
    """
    CREATE TABLE work_days (
        day date PRIMARY KEY,
        workday boolean NOT NULL,
        name text NOT NULL,
        source text NOT NULL CONSTRAINT work_days_source
            CHECK (source IN ('package', 'office'))
    )
    """,
    """
    COMMENT ON TABLE work_days IS
        'Days that break the weekly rule: holidays on weekdays, 调休 working weekends and the '
        'office''s overrides (layers/calendar.yaml); synced at start-up.'
    """,
    # One row: the time zone, the weekend days (ISO 1-7) and the working periods of a day in
    # minutes after local midnight, e.g. {{510,720},{810,1080}} for 08:30-12:00, 13:30-18:00.
    """
    CREATE TABLE work_schedule (
        id boolean PRIMARY KEY DEFAULT true CONSTRAINT work_schedule_one_row CHECK (id),
        tz text NOT NULL DEFAULT 'Asia/Shanghai',
        weekend smallint[] NOT NULL DEFAULT '{6,7}',
        periods integer[][] NOT NULL DEFAULT '{{510,720},{810,1080}}',
        day_seconds integer NOT NULL DEFAULT 28800 CONSTRAINT work_schedule_day_positive
            CHECK (day_seconds > 0),
        first_year integer,
        last_year integer,
        synced_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "INSERT INTO work_schedule DEFAULT VALUES",
    """
    CREATE FUNCTION gis_is_workday(d date) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT coalesce(
            (SELECT workday FROM work_days WHERE day = d),
            NOT (extract(isodow FROM d)::smallint
                 = ANY (CAST((SELECT weekend FROM work_schedule) AS smallint[]))))
    $$
    """,
    # Working seconds in [a, b) (negative when b < a): the sum of the overlaps of the interval
    # with every working period of every working day it touches, in local time.
    """
    CREATE FUNCTION gis_work_seconds(a timestamptz, b timestamptz) RETURNS double precision
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        WITH s AS (SELECT tz, periods FROM work_schedule),
        w AS (
            SELECT least(a, b) AT TIME ZONE s.tz AS lo, greatest(a, b) AT TIME ZONE s.tz AS hi,
                   s.periods
              FROM s
        ),
        spans AS (
            SELECT d::date + make_interval(mins => w.periods[i][1]) AS p_start,
                   d::date + make_interval(mins => w.periods[i][2]) AS p_end,
                   w.lo, w.hi
              FROM w,
                   generate_series(w.lo::date, w.hi::date, interval '1 day') AS d,
                   generate_subscripts(w.periods, 1) AS i
             WHERE gis_is_workday(d::date)
        )
        SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE
               sign(extract(epoch FROM b - a))::double precision * coalesce(
                   (SELECT sum(greatest(0, extract(epoch FROM
                                   least(p_end, hi) - greatest(p_start, lo))))
                      FROM spans), 0) END
    $$
    """,
    # The instant when ``secs`` working seconds have passed after t. Outside working hours the
    # clock waits for the next working period (a report on Friday evening starts on Monday).
    """
    CREATE FUNCTION gis_work_add(t timestamptz, secs double precision) RETURNS timestamptz
    LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
    DECLARE
        sched record;
        local_t timestamp;
        d date;
        remaining double precision := greatest(secs, 0);
        i integer;
        p_start timestamp;
        p_end timestamp;
        avail double precision;
    BEGIN
        IF t IS NULL OR secs IS NULL THEN
            RETURN NULL;
        END IF;
        SELECT tz, periods INTO sched FROM work_schedule;
        local_t := t AT TIME ZONE sched.tz;
        d := local_t::date;
        -- A limit of at most a year of working time ends within about 800 calendar days.
        FOR n IN 0..1000 LOOP
            IF gis_is_workday(d) THEN
                FOR i IN 1..array_length(sched.periods, 1) LOOP
                    p_start := greatest(d + make_interval(mins => sched.periods[i][1]), local_t);
                    p_end := d + make_interval(mins => sched.periods[i][2]);
                    IF p_end > p_start THEN
                        avail := extract(epoch FROM p_end - p_start);
                        IF remaining <= avail THEN
                            RETURN (p_start + make_interval(secs => remaining))
                                   AT TIME ZONE sched.tz;
                        END IF;
                        remaining := remaining - avail;
                    END IF;
                END LOOP;
            END IF;
            d := d + 1;
        END LOOP;
        RAISE EXCEPTION 'working time of % s does not end within 1000 days', secs
            USING ERRCODE = 'data_exception';
    END $$
    """,
    # A limit as the catalog writes it ({"amount": 2, "unit": "work_days"}) in seconds: a
    # 工作日 is as long as the office's working day; 'hours' (小时) is calendar time, for
    # emergencies whose clock runs through nights and holidays.
    """
    CREATE FUNCTION gis_limit_seconds(lim jsonb) RETURNS double precision
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT CASE lim ->> 'unit'
                   WHEN 'work_hours' THEN (lim ->> 'amount')::double precision * 3600
                   WHEN 'work_days' THEN (lim ->> 'amount')::double precision
                                         * (SELECT day_seconds FROM work_schedule)
                   WHEN 'hours' THEN (lim ->> 'amount')::double precision * 3600
               END
    $$
    """,
    """
    CREATE FUNCTION gis_work_due(t timestamptz, lim jsonb) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN lim ->> 'unit' = 'hours'
                    THEN t + make_interval(secs => gis_limit_seconds(lim))
                    ELSE gis_work_add(t, gis_limit_seconds(lim)) END
    $$
    """,
    # Standard classes and the three limits of a category (GB/T 30428.2 and .8).
    "ALTER TABLE hazard_categories ADD COLUMN standard_class jsonb NOT NULL DEFAULT '{}'",
    "ALTER TABLE hazard_categories ADD COLUMN time_limits jsonb NOT NULL DEFAULT '{}'",
    """
    COMMENT ON COLUMN hazard_categories.time_limits IS
        'accept (立案, from report), handle (处置, from dispatch), close (结案, from the '
        'handler''s report back): {"amount": n, "unit": "work_hours"|"work_days"|"hours"}.'
    """,
    # The deadlines of a case besides due_at (处置): 立案 and 结案.
    "ALTER TABLE hazards ADD COLUMN accept_due_at timestamptz",
    "ALTER TABLE hazards ADD COLUMN close_due_at timestamptz",
]

DOWNGRADE = [
    "ALTER TABLE hazards DROP COLUMN IF EXISTS close_due_at",
    "ALTER TABLE hazards DROP COLUMN IF EXISTS accept_due_at",
    "ALTER TABLE hazard_categories DROP COLUMN IF EXISTS time_limits",
    "ALTER TABLE hazard_categories DROP COLUMN IF EXISTS standard_class",
    "DROP FUNCTION IF EXISTS gis_work_due(timestamptz, jsonb)",
    "DROP FUNCTION IF EXISTS gis_limit_seconds(jsonb)",
    "DROP FUNCTION IF EXISTS gis_work_add(timestamptz, double precision)",
    "DROP FUNCTION IF EXISTS gis_work_seconds(timestamptz, timestamptz)",
    "DROP FUNCTION IF EXISTS gis_is_workday(date)",
    "DROP TABLE IF EXISTS work_schedule",
    "DROP TABLE IF EXISTS work_days",
]


def upgrade() -> None:
    """Create the calendar tables, the working-time functions and the deadline columns."""
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Remove them again."""
    for statement in DOWNGRADE:
        op.execute(statement)
