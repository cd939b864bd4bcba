"""A month of plausible working history on top of the demo's cases, written in SQL in the
demo's transaction: partner units (共建单位), callbacks (回访) with rework, approved and pending
exceptions, 吹哨 calls with report-ins (some late), rework counts, volunteers and 三单制
service orders. Every choice is a hash
of the case's code, so the same seed gives the same history. Names are fictional."""

from __future__ import annotations

from psycopg2.extensions import cursor as Cursor

# 共建单位, fictional; each serves one community (chosen by its rank in code order).
PARTNERS = [
    ("嵩岳市政养护有限公司（演示）", ["管道疏通", "井盖维修", "路面修补"], 0),
    ("金水源管道服务部（演示）", ["下水道疏通", "化粪池清掏"], 1),
    ("康宁社区卫生服务站（演示）", ["上门认证", "健康随访", "送医送药"], 2),
    ("红枫物业服务有限公司（演示）", ["楼道清理", "门禁维修", "充电桩维护"], 3),
    ("青禾志愿服务中心（演示）", ["送轮椅", "助老陪护", "政策宣传"], 4),
]
DEMO_NOTE = "演示数据"

# A stable number 0-9999 for a case: the hash of its code (so a reload repeats the history).
_H = "(('x' || substr(md5(h.public_code), 1, 8))::bit(32)::int & 2147483647) %% 10000"

STEPS = [
    # Rework counts from the history the generator wrote (failed 核查 are 返工).
    """
    UPDATE hazards h SET rework_count = x.n
      FROM (SELECT hazard_id, count(*) AS n FROM hazard_events
             WHERE action = 'fail_verification' GROUP BY hazard_id) x
     WHERE x.hazard_id = h.id AND h.public_code LIKE %(prefix)s
    """,
    # 回访: eight in ten closed cases are called back a working day later (or by now):
    # 85% 满意, 10% 基本满意, 5% 不满意; a third of the answers come through the receipt link.
    f"""
    WITH c AS (
        SELECT h.*, {_H} AS k FROM hazards h
         WHERE h.public_code LIKE %(prefix)s AND h.status = 'closed'
           AND h.duplicate_of_id IS NULL AND h.closed_at IS NOT NULL
    ), picked AS (
        SELECT c.*, CASE WHEN k %% 100 < 85 THEN 'satisfied'
                         WHEN k %% 100 < 95 THEN 'basically_satisfied'
                         ELSE 'dissatisfied' END AS rating,
               least(gis_work_add(c.closed_at, 4 * 3600), now()) AS at
          FROM c WHERE k %% 10 < 8
    ), cb AS (
        INSERT INTO case_callbacks (hazard_id, rating, comment, via, taken_by, closed_at,
                                    handler_person_id, handler_department_id, grid_path,
                                    created_at)
        SELECT id, rating,
               CASE rating WHEN 'dissatisfied' THEN '处理不彻底，希望再看看'
                           WHEN 'basically_satisfied' THEN '处理及时，现场还需清理'
                           ELSE '感谢网格员' END,
               CASE WHEN k %% 3 = 0 THEN 'receipt' ELSE 'staff' END,
               CASE WHEN k %% 3 = 0 THEN 'reporter' ELSE '社区回访员' END,
               closed_at, assignee_person_id, assignee_department_id, grid_path, at
          FROM picked
        RETURNING hazard_id, rating, created_at
    )
    INSERT INTO hazard_events (hazard_id, action, from_status, to_status, actor_name, note,
                               data, created_at)
    SELECT hazard_id, 'callback', 'closed', 'closed', '社区回访员', NULL,
           jsonb_build_object('callback', jsonb_build_object('rating', rating)), created_at
      FROM cb
    """,
    # 延期: 6% of dispatched cases asked for 2 工作日 two working hours after dispatch, and
    # got it an hour later from the community; the deadline moved accordingly.
    f"""
    WITH c AS (
        SELECT h.*, {_H} AS k FROM hazards h
         WHERE h.public_code LIKE %(prefix)s AND h.dispatched_at IS NOT NULL
           AND h.due_at IS NOT NULL
    ), asked AS (
        SELECT c.*, gis_work_add(c.dispatched_at, 2 * 3600) AS req_at
          FROM c WHERE k %% 100 < 6
    ), ok AS (
        SELECT asked.*, req_at + interval '1 hour' AS dec_at FROM asked
         WHERE req_at + interval '1 hour' < now()
           AND (resolved_at IS NULL OR req_at + interval '1 hour' < resolved_at)
    ), x AS (
        INSERT INTO case_exceptions (hazard_id, kind, status, reason, extension, from_status,
                                     requested_by, requester_name, requester_role,
                                     requester_person_id, requested_at, decided_by,
                                     decider_name, decider_role, decided_at, grid_path)
        SELECT id, 'extension', 'approved', '等待配件到货',
               '{{"amount": 2, "unit": "work_days", "text": "2 工作日"}}', 'dispatched',
               'demo', '网格员', 'field_staff', assignee_person_id, req_at, 'demo', '社区书记',
               'community_staff', dec_at, grid_path
          FROM ok
        RETURNING hazard_id
    )
    UPDATE hazards h
       SET due_at = gis_work_due(h.due_at, '{{"amount": 2, "unit": "work_days"}}')
      FROM x WHERE x.hazard_id = h.id
    """,
    # Pending requests for the approval queue: 延期 on 4% of the cases still being handled.
    f"""
    INSERT INTO case_exceptions (hazard_id, kind, status, reason, extension, from_status,
                                 requested_by, requester_name, requester_role,
                                 requester_person_id, requested_at, grid_path)
    SELECT h.id, 'extension', 'pending', '居民不在家，需预约上门',
           '{{"amount": 1, "unit": "work_days", "text": "1 工作日"}}', h.status, 'demo',
           '网格员', 'field_staff', h.assignee_person_id,
           least(h.dispatched_at + interval '3 hours', now()), h.grid_path
      FROM hazards h
     WHERE h.public_code LIKE %(prefix)s AND h.status IN ('dispatched', 'in_progress')
       AND {_H} %% 100 BETWEEN 6 AND 9
    """,
    # 退回 approved before the present dispatch: 2% of dispatched cases (准确派遣率).
    f"""
    INSERT INTO case_exceptions (hazard_id, kind, status, reason, from_status, requested_by,
                                 requester_name, requester_role, requested_at, decided_by,
                                 decider_name, decider_role, decided_at, grid_path)
    SELECT h.id, 'send_back', 'approved', '不属于本网格，请改派', 'dispatched', 'demo', '网格员',
           'field_staff', h.dispatched_at - interval '2 hours', 'demo', '社区书记',
           'community_staff', h.dispatched_at - interval '1 hour', h.grid_path
      FROM hazards h
     WHERE h.public_code LIKE %(prefix)s AND h.dispatched_at IS NOT NULL
       AND {_H} %% 100 BETWEEN 10 AND 11
       AND h.dispatched_at - interval '2 hours' > h.reported_at
    """,
    # 作废: one in ten reports still waiting for 立案 turns out to be a repeated entry.
    f"""
    WITH v AS (
        UPDATE hazards h SET status = 'voided', version = version + 1
         WHERE h.public_code LIKE %(prefix)s AND h.status = 'reported'
           AND {_H} %% 100 < 10
        RETURNING h.id, h.grid_path, h.reported_at
    ), x AS (
        INSERT INTO case_exceptions (hazard_id, kind, status, reason, from_status,
                                     requested_by, requester_name, requester_role,
                                     requested_at, decided_by, decider_name, decider_role,
                                     decided_at, grid_path)
        SELECT id, 'void', 'approved', '重复录入', 'reported', 'demo', '社区受理员',
               'community_staff', least(reported_at + interval '2 hours', now()), 'demo',
               '街道网格中心', 'street_staff', least(reported_at + interval '3 hours', now()),
               grid_path
          FROM v
        RETURNING hazard_id, decided_at
    )
    INSERT INTO hazard_events (hazard_id, action, from_status, to_status, actor_name, note,
                               data, created_at)
    SELECT hazard_id, 'approve_void', 'reported', 'voided', '街道网格中心', '重复录入', '{{}}',
           decided_at
      FROM x
    """,
    # 吹哨: 12% of the cases sent to a department were whistled an hour after dispatch; the
    # department reports in halfway to its 2 工作时 deadline (one in five three hours after
    # it: late), and finishes when the case is resolved.
    f"""
    WITH c AS (
        SELECT h.*, {_H} AS k FROM hazards h
         WHERE h.public_code LIKE %(prefix)s AND h.assignee_department_id IS NOT NULL
           AND h.dispatched_at IS NOT NULL AND h.dispatched_at + interval '6 hours' < now()
    ), w AS (
        INSERT INTO whistle_calls (hazard_id, department_id, party_name, status, report_limit,
                                   act_limit, report_due_at, act_due_at, called_at, called_by,
                                   reported_in_at, finished_at, note, grid_path)
        SELECT c.id, c.assignee_department_id, d.name_zh,
               CASE WHEN c.resolved_at IS NOT NULL THEN 'finished' ELSE 'reported_in' END,
               '{{"amount": 2, "unit": "work_hours", "text": "2 工作时"}}',
               '{{"amount": 3, "unit": "work_days", "text": "3 工作日"}}',
               due.report_due,
               gis_work_add(c.dispatched_at + interval '1 hour', 3 * 8 * 3600),
               c.dispatched_at + interval '1 hour', '社区书记',
               CASE WHEN c.k %% 5 = 0 THEN due.report_due + interval '3 hours'
                    ELSE c.dispatched_at + interval '1 hour'
                         + (due.report_due - c.dispatched_at - interval '1 hour') / 2 END,
               c.resolved_at, '需职能部门到场处置', c.grid_path
          FROM c JOIN departments d ON d.id = c.assignee_department_id
          CROSS JOIN LATERAL (SELECT gis_work_add(c.dispatched_at + interval '1 hour', 2 * 3600)
                                     AS report_due) due
         WHERE c.k %% 100 < 12 AND due.report_due + interval '3 hours' < now()
        RETURNING id, hazard_id, called_at, reported_in_at, finished_at, status
    ), ev AS (
        INSERT INTO whistle_events (call_id, action, from_status, to_status, actor_name,
                                    created_at)
        SELECT id, 'call', NULL, 'called', '社区书记', called_at FROM w
        UNION ALL
        SELECT id, 'report_in', 'called', 'reported_in', '部门联络员', reported_in_at FROM w
        UNION ALL
        SELECT id, 'finish', 'reported_in', 'finished', '部门联络员', finished_at
          FROM w WHERE finished_at IS NOT NULL
        RETURNING call_id
    )
    INSERT INTO hazard_events (hazard_id, action, from_status, to_status, actor_name, note,
                               data, created_at)
    SELECT w.hazard_id, 'whistle', st.status, st.status, '社区书记', '需职能部门到场处置',
           jsonb_build_object('calls', jsonb_build_array(w.id)), w.called_at
      FROM w
      -- the state the case was in when the whistle blew (its history is a chain of states)
      CROSS JOIN LATERAL (SELECT e.to_status AS status FROM hazard_events e
                           WHERE e.hazard_id = w.hazard_id AND e.created_at <= w.called_at
                           ORDER BY e.created_at DESC, e.id DESC LIMIT 1) st
    """,
]


INSERT_PARTNER = """
    INSERT INTO partner_units (name, offers, contact_name, grid_id, grid_path, note)
    SELECT %(name)s, %(offers)s, '联络员', g.id, g.path, '演示数据'
      FROM grids g
     WHERE g.level = 'community' AND g.valid_to IS NULL
     ORDER BY g.code OFFSET %(rank)s LIMIT 1
    ON CONFLICT (name) DO NOTHING
"""


def add_history(cur: Cursor, prefix: str, services: dict[str, str]) -> dict[str, int]:
    """Write the demo's working history (see the module docstring) in the caller's
    transaction; ``services`` maps the codes of layers/services.yaml to their names. Return
    how many rows of each kind it added."""
    for statement in STEPS:
        cur.execute(statement, {"prefix": prefix + "%"})
    for name, offers, rank in PARTNERS:
        cur.execute(INSERT_PARTNER, {"name": name, "offers": offers, "rank": rank})
    add_service_orders(cur, services)
    cur.execute(COUNTS, {"prefix": prefix + "%"})
    names = ("hazard_events", "callbacks", "exceptions", "whistle_calls", "partner_units",
             "volunteers", "service_orders")  # fmt: skip
    return dict(zip(names, cur.fetchone(), strict=True))


# What the history added (the generator's own rows have no callback, whistle or void).
COUNTS = """
    SELECT (SELECT count(*) FROM hazard_events e JOIN hazards h ON h.id = e.hazard_id
             WHERE h.public_code LIKE %(prefix)s
               AND e.action IN ('callback', 'whistle', 'approve_void')),
           (SELECT count(*) FROM case_callbacks),
           (SELECT count(*) FROM case_exceptions),
           (SELECT count(*) FROM whistle_calls),
           (SELECT count(*) FROM partner_units WHERE note = '演示数据'),
           (SELECT count(*) FROM volunteers WHERE note = '演示数据'),
           (SELECT count(*) FROM service_orders WHERE public_code LIKE 'DEMO-FW-%%')
"""


# 三单制: volunteers of every community (fictional names) and a month of service orders.
VOLUNTEERS = """
    INSERT INTO volunteers (name, skills, party_member, grid_id, grid_path, note)
    SELECT s.surname || n.given, n.skills, (n.i %% 3 <> 2), g.id, g.path, '演示数据'
      FROM (SELECT id, path, row_number() OVER (ORDER BY code) AS k FROM grids
             WHERE level = 'community' AND valid_to IS NULL) g
      CROSS JOIN LATERAL (VALUES
          (1, '建国', ARRAY['上门认证', '政策宣传']), (2, '秀兰', ARRAY['助老陪护', '送轮椅']),
          (3, '志强', ARRAY['下水道疏通', '家电维修']), (4, '丽华', ARRAY['健康随访', '助老陪护'])
      ) AS n (i, given, skills)
      CROSS JOIN LATERAL (SELECT (ARRAY['王', '李', '张', '刘', '陈', '杨', '赵', '黄', '周',
                                        '吴'])[1 + ((g.k * 7 + n.i) %% 10)] AS surname) s
"""

ORDERS = """
    WITH micro AS (
        SELECT m.id, m.path, gis_grid_chain(m.id) AS chain, ST_PointOnSurface(m.geom) AS pt,
               row_number() OVER (ORDER BY m.code) AS k
          FROM grids m WHERE m.level = 'micro_grid' AND m.valid_to IS NULL
    ), n AS (SELECT count(*) AS c FROM micro),
    o AS (
        SELECT i, 1 + (i * 37) %% (SELECT c FROM n) AS mk,
               (%(codes)s::text[])[1 + i %% cardinality(%(codes)s::text[])] AS service_type,
               now() - make_interval(hours => 6 + (i * 11) %% (29 * 24)) AS at
          FROM generate_series(1, 90) AS i
    ), placed AS (
        INSERT INTO service_orders (public_code, service_type, description, geom, grid_id,
                                    grid_path, grid_chain, status, ordered_at, dispatched_at,
                                    taken_at, done_at, rated_at, hours, rating, volunteer_id,
                                    updated_at)
        SELECT 'DEMO-FW-' || lpad(o.i::text, 4, '0'), o.service_type,
               '居民点单：' || t.name_zh, m.pt, m.id, m.path, m.chain,
               st.status, o.at,
               CASE WHEN st.status <> 'ordered' THEN o.at + interval '2 hours' END,
               CASE WHEN st.status IN ('taken', 'done', 'rated') THEN o.at + interval '3 hours'
               END,
               CASE WHEN st.status IN ('done', 'rated') THEN o.at + interval '5 hours' END,
               CASE WHEN st.status = 'rated' THEN o.at + interval '1 day' END,
               CASE WHEN st.status IN ('done', 'rated') THEN 1 + (o.i %% 4) * 0.5 END,
               CASE WHEN st.status = 'rated'
                    THEN CASE WHEN o.i %% 17 = 0 THEN 'basically_satisfied'
                              ELSE 'satisfied' END END,
               CASE WHEN st.status <> 'ordered' THEN
                   (SELECT v.id FROM volunteers v
                     WHERE v.grid_path && m.path AND v.note = '演示数据'
                     ORDER BY v.id OFFSET o.i %% 4 LIMIT 1) END,
               now()
          FROM o
          JOIN micro m ON m.k = o.mk
          JOIN unnest(%(codes)s::text[], %(names)s::text[]) AS t (code, name_zh)
            ON t.code = o.service_type
          CROSS JOIN LATERAL (SELECT CASE
                  WHEN o.at > now() - interval '8 hours' THEN 'ordered'
                  WHEN o.at > now() - interval '1 day' THEN 'taken'
                  WHEN o.i %% 10 = 0 THEN 'cancelled'
                  WHEN o.i %% 5 = 0 THEN 'done'
                  ELSE 'rated' END AS status) st
        RETURNING id, status, ordered_at, dispatched_at, taken_at, done_at, rated_at, hours,
                  rating
    )
    -- each order's history: the moves that brought it to its state (the community cancelled
    -- the cancelled ones an hour after dispatching them, with a reason)
    INSERT INTO service_order_events (order_id, action, from_status, to_status, actor_name,
                                      note, data, created_at)
    SELECT id, 'order', NULL, 'ordered', '居民', NULL, '{}'::jsonb, ordered_at FROM placed
    UNION ALL
    SELECT id, 'dispatch', 'ordered', 'dispatched', '社区书记', NULL, '{}', dispatched_at
      FROM placed WHERE dispatched_at IS NOT NULL
    UNION ALL
    SELECT id, 'take', 'dispatched', 'taken', '志愿者', NULL, '{}', taken_at
      FROM placed WHERE taken_at IS NOT NULL
    UNION ALL
    SELECT id, 'finish', 'taken', 'done', '志愿者', NULL, jsonb_build_object('hours', hours),
           done_at
      FROM placed WHERE done_at IS NOT NULL
    UNION ALL
    SELECT id, 'rate', 'done', 'rated', '社区回访员', NULL,
           jsonb_build_object('rating', rating), rated_at
      FROM placed WHERE rated_at IS NOT NULL
    UNION ALL
    SELECT id, 'cancel', 'dispatched', 'cancelled', '社区书记', '居民已自行解决', '{}',
           dispatched_at + interval '1 hour'
      FROM placed WHERE status = 'cancelled'
"""


def remove_history(cur: Cursor) -> None:
    """Delete what add_history wrote outside the demo's cases (before its grids go)."""
    # An empty parameter dict makes psycopg2 read %% as %, as in every statement here.
    cur.execute("DELETE FROM service_orders WHERE public_code LIKE 'DEMO-FW-%%'", {})
    cur.execute("DELETE FROM volunteers WHERE note = '演示数据'", {})
    cur.execute(
        "DELETE FROM whistle_calls WHERE partner_id IN"
        " (SELECT id FROM partner_units WHERE note = '演示数据')",
        {},
    )
    cur.execute("DELETE FROM partner_units WHERE note = '演示数据'", {})


def add_service_orders(cur: Cursor, services: dict[str, str]) -> None:
    """Volunteers and a month of 三单制 orders (deterministic: no randomness at all)."""
    cur.execute(VOLUNTEERS, {})
    codes = sorted(services)
    cur.execute(ORDERS, {"codes": codes, "names": [services[c] for c in codes]})
