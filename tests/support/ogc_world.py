"""A synthetic dataset for the OGC API tests and the real clients' tests: a street of 250
micro-grids in a regular lattice, people, facilities of three types and hazards, with the real
layer catalog. Built once per session as a template."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.support.databases import CATALOG, Databases, Template

# Micro-grids are 0.001° squares in 10 rows of 25 from (113.600, 34.700); facilities are
# sewage covers, e-bike chargers and sewer pipes.
MICRO_COUNT = 250

# Grids: a street, a community, two grids side by side and a special grid; micro-grids below.
_GRIDS = """
INSERT INTO grids (code, name, level, parent_id, geom, attributes, valid_from) VALUES
 ('410103900', '测试街道', 'street', NULL,
  ST_Multi(ST_MakeEnvelope(113.600, 34.700, 113.625, 34.710, 4326)),
  '{"population": 30000, "households": 9000}', '2020-01-01'),
 ('410103900001', '测试社区', 'community', NULL,
  ST_Multi(ST_MakeEnvelope(113.600, 34.700, 113.625, 34.710, 4326)),
  '{"population": 30000}', '2020-01-01');
UPDATE grids SET parent_id = (SELECT id FROM grids WHERE code = '410103900')
 WHERE code = '410103900001';
INSERT INTO grids (code, name, level, parent_id, geom, attributes, valid_from)
SELECT c, n, 'grid', (SELECT id FROM grids WHERE code = '410103900001'),
       ST_Multi(ST_MakeEnvelope(x0, 34.700, x1, 34.710, 4326)), '{}', '2020-01-01'
  FROM (VALUES ('410103900001001', '第一网格', 113.600, 113.613),
               ('410103900001002', '第二网格', 113.613, 113.625)) v (c, n, x0, x1);
INSERT INTO grids (code, name, level, parent_id, geom, attributes, valid_from) VALUES
 ('410103900001901', '测试小学', 'special',
  (SELECT id FROM grids WHERE code = '410103900001'),
  ST_Multi(ST_MakeEnvelope(113.6012, 34.7012, 113.6028, 34.7028, 4326)),
  '{"unit_type": "school", "staff": 120}', '2021-09-01');
INSERT INTO grids (code, name, level, parent_id, geom, attributes, valid_from)
SELECT '410103900001' || CASE WHEN i % 25 < 13 THEN '001' ELSE '002' END
           || lpad(i::text, 3, '0'),
       (i + 1) || '号楼', 'micro_grid',
       (SELECT id FROM grids
         WHERE code = '410103900001' || CASE WHEN i % 25 < 13 THEN '001' ELSE '002' END),
       ST_Multi(ST_MakeEnvelope(113.600 + (i % 25) * 0.001, 34.700 + (i / 25) * 0.001,
                                113.601 + (i % 25) * 0.001, 34.701 + (i / 25) * 0.001, 4326)),
       jsonb_build_object(
           'kind', CASE WHEN i % 3 = 0 THEN 'compound' ELSE 'building' END,
           'households', 20 + i % 40,
           'population', 50 + i,
           'unmanaged_compound', i % 7 = 0,
           'building', jsonb_build_object('floors', 3 + i % 30, 'built_year', 1980 + i % 40,
                                          'property_company',
                                          CASE WHEN i % 7 = 0 THEN NULL ELSE '演示物业' END)),
       '2022-01-01'
  FROM generate_series(0, 249) AS i;
-- A redrawn micro-grid: its old version has ended and must not be served.
INSERT INTO grids (code, name, level, parent_id, geom, valid_from, valid_to)
SELECT code, name || '（旧）', level, parent_id, geom, '2019-01-01', '2022-01-01'
  FROM grids WHERE code = '410103900001001000';
"""

_PEOPLE = """
INSERT INTO people (name, work_phone, mobile_phone)
SELECT '负责人' || g.code, '0371-6' || lpad(g.id::text, 7, '0'), '139' || lpad(g.id::text, 8, '0')
  FROM grids g WHERE g.valid_to IS NULL AND (g.level <> 'micro_grid' OR g.id % 5 <> 0);
INSERT INTO grid_assignments (grid_id, person_id, role, is_primary, valid_from)
SELECT g.id, p.id,
       CASE g.level WHEN 'street' THEN 'party_secretary' WHEN 'community' THEN 'party_secretary'
                    WHEN 'grid' THEN 'grid_leader' WHEN 'special' THEN 'special_grid_leader'
                    ELSE 'micro_grid_member' END,
       true, '2020-01-01'
  FROM grids g JOIN people p ON p.name = '负责人' || g.code
 WHERE g.valid_to IS NULL;
"""

_FACILITIES = """
INSERT INTO facilities (code, type_code, name, status, geom, attributes)
SELECT '4101030102' || lpad(i::text, 6, '0'), 'sewage_cover', '污水井' || i,
       (ARRAY['in_service', 'in_service', 'damaged', 'under_repair', 'planned'])[1 + i % 5],
       ST_SetSRID(ST_MakePoint(113.6003 + (i % 50) * 0.0005, 34.7003 + (i / 50) * 0.002), 4326),
       jsonb_build_object('material', (ARRAY['ductile_iron', 'composite'])[1 + i % 2],
                          'size_mm', 600 + (i % 3) * 100, 'anti_fall_net', i % 2 = 0,
                          'owner', '市政')
  FROM generate_series(0, 159) AS i;
INSERT INTO facilities (code, type_code, name, status, geom, attributes)
SELECT '4101039102' || lpad(i::text, 6, '0'), 'ebike_charger',
       CASE WHEN i % 10 = 0 THEN NULL ELSE '充电桩' || i END,
       (ARRAY['in_service', 'damaged', 'retired'])[1 + i % 3],
       ST_SetSRID(ST_MakePoint(113.6007 + (i % 20) * 0.0012, 34.7006 + (i / 20) * 0.0018), 4326),
       jsonb_build_object('ports', 4 + i % 9, 'payment', 'qr_code', 'auto_cutoff', i % 4 <> 0)
  FROM generate_series(0, 99) AS i;
INSERT INTO facilities (code, type_code, name, status, geom, attributes)
SELECT '4101039302' || lpad(i::text, 6, '0'), 'sewer_pipe', '污水管' || i, 'in_service',
       ST_SetSRID(ST_MakeLine(ST_MakePoint(113.6001 + i * 0.0006, 34.7002),
                              ST_MakePoint(113.6001 + i * 0.0006, 34.7095)), 4326),
       jsonb_build_object('diameter_mm', 300 + (i % 4) * 100, 'depth_m', 1.5 + (i % 5) * 0.5)
  FROM generate_series(0, 39) AS i;
"""

_HAZARDS = """
INSERT INTO hazards (public_code, category_code, description, severity, status, source, geom,
                     grid_id, reporter_name, reporter_phone, reported_at, due_at)
SELECT 'H2024' || lpad(i::text, 5, '0'),
       (ARRAY['manhole_cover_sunken', 'sewer_blockage', 'charger_fault'])[1 + i % 3],
       '测试隐患 ' || i,
       (ARRAY['low', 'medium', 'high', 'critical'])[1 + i % 4],
       (ARRAY['reported', 'accepted', 'dispatched', 'in_progress', 'resolved', 'closed',
              'rejected'])[1 + i % 7],
       'resident', pt, gis_finest_grid(pt), '举报人' || i, '1380000' || lpad(i::text, 4, '0'),
       timestamptz '2024-05-01 00:00+00' + i * interval '1 day',
       CASE WHEN i % 2 = 0 THEN now() - interval '1 day' ELSE now() + interval '10 days' END
  FROM generate_series(0, 59) AS i,
       LATERAL (SELECT ST_SetSRID(ST_MakePoint(113.6005 + (i % 12) * 0.002,
                                               34.7005 + (i / 12) * 0.0019), 4326) AS pt) p;
"""


def _build(engine: Engine) -> None:
    with engine.begin() as conn:
        cursor = conn.connection.cursor()  # plain DB-API: the blocks hold literal '%'
        for block in (_GRIDS, _PEOPLE, _FACILITIES, _HAZARDS):
            cursor.execute(block)


OGC = Template("ogc", CATALOG, _build)


def build_ogc_database(databases: Databases, prefix: str = "ogc") -> str:
    """A fresh copy of the dataset above; its URL."""
    return databases.new(prefix, OGC)
