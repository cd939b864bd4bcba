"""The demo's hazards: a few hundred reports in every state, each with a history that
follows the service's workflow, and the seed story's sewer blockages."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Point

from gis_service.demo.facilities import facility_types
from gis_service.demo.people import People
from gis_service.demo.records import DemoEvent, DemoFacility, DemoHazard
from gis_service.demo.shapes import M_PER_DEG_LAT, M_PER_DEG_LON, metres_to_deg, sample_points
from gis_service.demo.territory import Node
from gis_service.hazards.states import SOURCE_NOTES
from gis_service.hazards.workflow import MAIN_LINE, is_allowed, main_line_states, target_status

HAZARD_PREFIX = "DEMO-"
HISTORY_DAYS = 90

# Descriptions by category code ({p}: the place, {f}: the facility type), in the words of the
# seed articles where they have them. A category not listed gets a plain generic sentence.
_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "sewer_blockage": (
        "{p}下水道堵塞，污水外溢",
        "{p}排污管道堵塞，一楼卫生间返水",
        "{p}折角井淤积，污水漫到路面",
        "{p}户管窨井堵塞，院内污水横流，气味很大",
    ),
    "waterlogging": ("{p}雨后积水严重，没过脚踝", "{p}门口低洼处积水，居民出行困难"),
    "manhole_cover_sunken": ("{p}{f}下沉，车辆经过有异响", "{p}{f}下沉约5厘米，容易绊倒行人"),
    "manhole_cover_missing": ("{p}{f}缺失，存在跌落风险", "{p}{f}破损松动，踩上去晃动"),
    "wall_damage": ("{p}围墙倾斜，墙体裂缝扩大", "{p}围墙局部开裂，有砖块掉落"),
    "road_collapse": ("{p}路面塌陷，形成约半米深坑", "{p}路面下沉开裂，疑似下方管道渗漏"),
    "solar_heater_leak": ("{p}楼顶太阳能热水器漏水，顺外墙流下", "{p}太阳能管道漏水，楼道墙面渗水"),
    "flying_wire_charging": (
        "{p}有居民从窗户拉线给电动车充电（飞线充电）",
        "{p}楼道内私拉电线给电动车充电",
    ),
    "charger_fault": ("{p}{f}故障，无法充电", "{p}{f}外壳破损，线头外露"),
    "charger_installation_request": (
        "{p}居民反映电动车充电难，希望增设充电桩",
        "{p}居民联名申请安装电动自行车充电桩",
    ),
    "clutter": ("{p}院内乱堆乱放杂物", "{p}院内堆放建筑垃圾，长期无人清理"),
    "corridor_clutter": ("{p}楼道乱堆乱放杂物，堵塞消防通道", "{p}楼道内停放电动车、堆放纸箱"),
    "graffiti": ("{p}墙面小广告乱贴乱画", "{p}单元门口张贴大量小广告"),
    "parking_disorder": ("{p}车辆乱停乱放，堵塞消防通道", "{p}非机动车占用盲道停放"),
    "door_access_fault": ("{p}单元门禁损坏，外来人员随意进出", "{p}门禁刷卡失灵，居民进出不便"),
    "neighbour_dispute": ("{p}两户居民因养犬问题发生争执", "{p}邻里因噪音问题发生纠纷，需要调解"),
    "dog_nuisance": ("{p}有人遛狗不拴绳，居民担心安全", "{p}犬只夜间吠叫扰民"),
    "camera_fault": ("{p}{f}离线，画面无信号", "{p}{f}被树枝遮挡"),
    "gas_leak": ("{p}附近闻到明显燃气味", "{p}{f}周边有燃气味，疑似管道泄漏"),
    "public_facility_damage": ("{p}{f}损坏，存在安全隐患", "{p}{f}松动，需要维修"),
    "illegal_construction": ("{p}楼顶私搭乱建彩钢房", "{p}一楼住户违规扩建院墙"),
    "illegal_activity_clue": ("{p}有人疑似从事非法集资宣传", "{p}出租屋人员频繁进出，情况可疑"),
    "mass_incident_risk": (
        "{p}部分居民因物业问题聚集，情绪激动",
        "{p}多名居民反映同一问题，拟集体上访",
    ),
}

_STATUS_WEIGHTS = {
    "reported": 28,
    "accepted": 20,
    "rejected": 14,
    "dispatched": 32,
    "in_progress": 32,
    "resolved": 24,
    "verified": 20,
    "closed": 110,
}
# The states along the loop's main line, from the workflow itself.
_PATH = main_line_states()
_SOURCES = (
    ("patrol", 0.4),
    ("resident", 0.25),
    ("hotline", 0.2),
    ("camera", 0.1),
    ("superior", 0.05),
)
_SEVERITIES = ("low", "medium", "high", "critical")
_NOTES = {
    "report": "上报",
    "accept": "情况属实，予以立案",
    "reject": "经核实不属于本辖区职责范围，不予立案",
    "dispatch": "派遣处置",
    "escalate": "社区吹哨、部门报到：需专业力量处置，已通知{d}",
    "start": "已到现场，开始处置",
    "resolve": "处置完毕，已反馈",
    "fail_verification": "核查未通过，现场仍有问题，退回重新处置",
    "verify": "现场核查，处置到位",
    "close": "居民满意，结案",
}


def _categories(catalog: Any) -> list[Any]:
    cats = getattr(catalog, "hazard_categories", {}) or {}
    return [cats[k] for k in sorted(cats)]


def _weight(cat: Any) -> float:
    demo = getattr(cat, "demo", None)
    value = getattr(demo, "weight", None) if demo is not None else None
    if value is None and isinstance(demo, dict):
        value = demo.get("weight")
    return 1.0 if value is None else float(value)


def _templates(cat: Any) -> tuple[str, ...]:
    code = str(getattr(cat, "code", ""))
    name = str(getattr(cat, "name_zh", "")) or code
    return _DESCRIPTIONS.get(code, (f"{{p}}发现{name}问题，请尽快处理",))


def _is_sewer(cat: Any) -> bool:
    code = str(getattr(cat, "code", "")).lower()
    return "sewer" in code or "下水" in str(getattr(cat, "name_zh", ""))


def _departments(catalog: Any) -> dict[str, Any]:
    deps = getattr(catalog, "departments", {}) or {}
    if isinstance(deps, dict):
        return deps
    return {getattr(d, "code", str(d)): d for d in deps}


def _next_status(step: str, status: str | None) -> str:
    """Where ``step`` leads from ``status`` by the service's own workflow; a step the
    workflow does not allow is a bug of this generator, not a story to tell."""
    if step == "report":
        return "reported"
    assert status is not None and is_allowed(step, status), (step, status)
    return target_status(step, status)


class _HazardMaker:
    """Builds hazards one by one from a shared random stream."""

    def __init__(
        self,
        catalog: Any,
        micros: list[Node],
        facilities: list[tuple[DemoFacility, Node]],
        people: People,
        now: datetime,
        rng: np.random.Generator,
    ) -> None:
        self.rng = rng
        self.now = now
        self.people = people
        self.micros = micros
        self.cats = _categories(catalog)
        self.departments = _departments(catalog)
        by_type: dict[str, list[tuple[DemoFacility, Node]]] = defaultdict(list)
        for fac, micro in facilities:
            by_type[fac.type_code].append((fac, micro))
        self.by_type = by_type
        self.type_names = {
            str(ft.code): str(getattr(ft, "name_zh", ft.code)) for ft in facility_types(catalog)
        }
        self.inner = {id(m): shapely.buffer(m.geom, -metres_to_deg(2.0)) for m in micros}
        self.residents = 0
        self.serial = 0

    def _resident(self) -> tuple[str, str]:
        self.residents += 1
        n = self.residents
        return self.people.name(), f"100-9{n // 1000:03d}-{n % 1000:04d}"

    def _location(
        self, cat: Any, micro: Node | None
    ) -> tuple[float, float, Node, DemoFacility | None]:
        rng = self.rng
        types = [t for t in getattr(cat, "facility_types", []) or [] if self.by_type.get(t)]
        if types:
            pool = [x for t in types for x in self.by_type[t]]
            if micro is not None:
                local = [x for x in pool if x[1] is micro]
                pool = (
                    local or [x for x in pool if x[1].parent.parent is micro.parent.parent] or pool
                )
            fac, fmicro = pool[int(rng.integers(len(pool)))]
            if isinstance(fac.geom, LineString):
                base = fac.geom.interpolate(float(rng.uniform(0, 1)), normalized=True)
            else:
                base = fac.geom
            # Reports land within a couple of metres of the facility (GPS scatter).
            r, a = float(rng.uniform(0, 1.5)), float(rng.uniform(0, 2 * math.pi))
            pt = Point(
                base.x + r * math.cos(a) / M_PER_DEG_LON,
                base.y + r * math.sin(a) / M_PER_DEG_LAT,
            )
            if not fmicro.geom.contains(pt):
                pt = base
            return round(pt.x, 7), round(pt.y, 7), fmicro, fac
        target = micro or self.micros[int(rng.integers(len(self.micros)))]
        area = self.inner[id(target)]
        if area.is_empty:
            area = target.geom
        ((x, y),) = sample_points(area, 1, rng)
        return round(float(x), 7), round(float(y), 7), target, None

    def make(
        self, status: str, cat: Any, micro: Node | None = None, rework: bool = False
    ) -> DemoHazard:
        """One hazard of ``cat`` in ``status``, optionally in a given micro-grid."""
        rng = self.rng
        lon, lat, m, fac = self._location(cat, micro)
        grid, comm = m.parent, m.parent.parent
        street = comm.parent
        key = self.people.by_key
        member = f"{m.code}:micro_grid_member:1"
        leader = f"{grid.code}:grid_leader:1"
        grid_member = f"{grid.code}:grid_member:1"
        director = f"{comm.code}:director:1"
        secretary = f"{comm.code}:party_secretary:1"
        source = str(rng.choice([s for s, _ in _SOURCES], p=[p for _, p in _SOURCES]))
        if source == "patrol":
            reporter_key = grid_member if rng.random() < 0.6 else member
            reporter_name, reporter_phone = key[reporter_key].name, key[reporter_key].mobile_phone
        elif source in ("resident", "hotline"):
            reporter_key = None
            reporter_name, reporter_phone = self._resident()
        elif source == "camera":
            reporter_key, reporter_name, reporter_phone = None, "视频巡查", None
        else:
            reporter_key, reporter_name, reporter_phone = (
                None,
                "区网格化服务管理中心",
                "0371-55500000",
            )
        default_sev = str(getattr(cat, "default_severity", "medium"))
        sev_i = _SEVERITIES.index(default_sev) if default_sev in _SEVERITIES else 1
        sev_i = int(np.clip(sev_i + rng.choice([-1, 0, 0, 0, 1]), 0, 3))
        sla = float(getattr(cat, "sla_hours", 72) or 72)
        dept = getattr(cat, "default_department", None)
        dept = dept if dept in self.departments else None
        dept_name = str(getattr(self.departments.get(dept), "name_zh", dept or ""))
        # Who handles it: the grid leader or the micro-grid member, or the category's
        # department, either directly or after the community blows the whistle (社区吹哨、
        # 部门报到). A community-level department is the community itself: no whistle.
        external = dept is not None and getattr(self.departments[dept], "level", "") != "community"
        to_department = external and rng.random() < 0.35
        escalate = external and not to_department and rng.random() < 0.3
        handler: str | None = None if to_department else (leader if rng.random() < 0.6 else member)

        # The steps taken, then their durations; the hazard is placed in time backwards from
        # now so every timestamp lies within HISTORY_DAYS and none is in the future.
        steps: list[str] = ["report"]
        if status == "rejected":
            steps.append("reject")
        elif status != "reported":
            # Along the workflow's main line up to the status asked for, with the side steps.
            reached = _PATH.index(status)
            for action, state in zip(MAIN_LINE, _PATH[1:], strict=True):
                if _PATH.index(state) > reached:
                    break
                steps.append(action)
                if action == "dispatch" and escalate:
                    steps.append("escalate")
                if action == "resolve" and rework:
                    # Rework: a failed verification sends the case back to dispatched,
                    # so the handler starts and resolves it again.
                    steps += ["fail_verification", "start", "resolve"]
        hours = {
            "accept": (0.1, 6),
            "reject": (0.2, 8),
            "dispatch": (0.1, 4),
            "escalate": (0.5, 12),
            "start": (0.5, 24),
            "resolve": (1, max(2.0, sla * 0.9)),
            "fail_verification": (2, 24),
            "verify": (1, 24),
            "close": (0.2, 12),
        }
        gaps = [0.0] + [float(rng.uniform(*hours[s])) for s in steps[1:]]
        offsets = np.cumsum(gaps)  # hours after the report
        total = float(offsets[-1])
        horizon = HISTORY_DAYS * 24.0 - total - 1
        if status in ("dispatched", "in_progress"):
            since_dispatch = float(offsets[-1] - offsets[steps.index("dispatch")])
            if rng.random() < 0.4:
                # Overdue: the deadline (dispatch + SLA) has passed.
                idle = float(rng.uniform(sla * 1.1, sla * 3 + 48)) - since_dispatch
            else:
                idle = float(rng.uniform(0, max(0.2, sla * 0.8 - since_dispatch)))
            idle = max(0.1, idle)
        elif status in ("reported", "accepted"):
            idle = float(rng.uniform(0.1, 72))
        else:
            idle = float(rng.uniform(1, max(2.0, horizon)))
        idle = min(idle, max(0.1, horizon))
        reported_at = self.now - timedelta(hours=total + idle)
        reported_at = reported_at.replace(microsecond=0)
        times = [reported_at + timedelta(seconds=round(o * 3600)) for o in offsets]

        place = m.name if comm.name.startswith("演示") else f"{comm.name}{m.name}"
        templates = _templates(cat)
        ftype = self.type_names.get(fac.type_code, "设施") if fac else "设施"
        description = templates[int(rng.integers(len(templates)))].format(p=place, f=ftype)

        self.serial += 1
        h = DemoHazard(
            public_code=f"{HAZARD_PREFIX}{self.serial:05d}",
            category_code=str(cat.code),
            description=description,
            severity=_SEVERITIES[sev_i],
            status=status,
            source=source,
            lon=lon,
            lat=lat,
            facility_code=fac.code if fac else None,
            reporter_name=reporter_name,
            reporter_phone=reporter_phone,
            reported_at=reported_at,
            address=f"郑州市二七区{street.name}{comm.name}{m.name}",
            location_accuracy_m={"patrol": 5.0, "camera": 3.0, "resident": 10.0}.get(source, 30.0),
            micro_grid_code=m.code,
        )
        # The community director accepts and closes, its party secretary dispatches, the
        # handler starts and resolves, and the grid leader verifies (the director when the
        # grid leader handled it: nobody verifies their own work).
        verifier = director if handler == leader else leader
        status_now: str | None = None
        for step, at in zip(steps, times, strict=True):
            actor: str | None = None
            actor_name: str | None = None
            note = _NOTES[step]
            if step == "report":
                actor = reporter_key
                actor_name = reporter_name
                note = SOURCE_NOTES[source]
            elif step == "accept":
                actor = director
                h.accepted_at = at
            elif step == "reject":
                actor = director
            elif step == "dispatch":
                actor = secretary
                h.dispatched_at = at
                h.due_at = at + timedelta(hours=sla)
                if to_department:
                    h.assignee_department_code = dept
                    note = f"派遣至{dept_name}"
                else:
                    assert handler is not None
                    h.assignee_person_key = handler
                    note = f"派遣至{key[handler].name}"
            elif step == "escalate":
                actor = handler
                note = note.format(d=dept_name)
                handler = None
                h.assignee_person_key = None
                h.assignee_department_code = dept
            elif step == "start":
                actor = handler
                if handler is None:
                    actor_name = dept_name
                    note = f"{dept_name}已报到，到场处置"
            elif step == "resolve":
                actor = handler
                h.resolved_at = at
                if handler is None:
                    actor_name = dept_name
            elif step == "fail_verification":
                actor = verifier
                h.resolved_at = None
            elif step == "verify":
                actor = verifier
                h.verified_at = at
            else:  # close
                actor = director
                h.closed_at = at
            to = _next_status(step, status_now)
            if actor is not None and actor_name is None:
                actor_name = key[actor].name
            h.events.append(DemoEvent(step, status_now, to, at, actor, note, actor_name))
            status_now = to
        assert status_now == status, (status_now, status)
        return h


def make_hazards(
    catalog: Any,
    micros: list[Node],
    facilities: list[tuple[DemoFacility, Node]],
    people: People,
    story: Node | None,
    now: datetime,
    rng: np.random.Generator,
) -> list[DemoHazard]:
    """A few hundred hazards in every status; the seed story's sewer blockages included."""
    maker = _HazardMaker(catalog, micros, facilities, people, now, rng)
    cats = maker.cats
    if not cats:
        return []
    weights = np.asarray([_weight(c) for c in cats], dtype=float)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(cats), 1 / len(cats))
    statuses = [s for s, n in _STATUS_WEIGHTS.items() for _ in range(n)]
    statuses = [statuses[i] for i in rng.permutation(len(statuses))]
    out: list[DemoHazard] = []
    rework_done = False
    for status in statuses:
        cat = cats[int(rng.choice(len(cats), p=weights))]
        # At least one case failed verification and was reworked (the first verified/closed
        # one), plus a few more at random.
        eligible = status in ("verified", "closed")
        rework = eligible and (not rework_done or rng.random() < 0.03)
        rework_done = rework_done or rework
        out.append(maker.make(status, cat, rework=rework))
    # The seed story: sewer blockages in 五里堡南社区, the worst at 51号院.
    sewer = [c for c in cats if _is_sewer(c)]
    if story is not None and sewer:
        community = story.parent.parent
        story_micros = [m for g in community.children for m in g.children]
        for i, status in enumerate(("closed", "closed", "in_progress", "dispatched", "reported")):
            micro = story if i in (0, 2) else story_micros[int(rng.integers(len(story_micros)))]
            out.append(maker.make(status, sewer[0], micro=micro))
    return out
