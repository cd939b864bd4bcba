"""The demo's people: fictional names and phones, and the staff of every grid."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from gis_service.demo.records import DemoAssignment, DemoGrid, DemoPerson

_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
_GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红建国志文斌辉鹏宇浩凯"
    "晨欣怡思雨佳琪嘉颖婷雪梅海波俊峰亮成龙新春光荣晓东云飞慧丹宁安福德永利"
)


class People:
    """Fictional people with unique names and clearly fictional phone numbers."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.people: list[DemoPerson] = []
        self.by_key: dict[str, DemoPerson] = {}
        self._names: set[str] = set()

    def name(self, rng: np.random.Generator | None = None) -> str:
        """A unique two- or three-character Chinese name (drawn from ``rng``, default ours)."""
        rng = rng or self.rng
        while True:
            surname = _SURNAMES[int(rng.integers(len(_SURNAMES)))]
            size = 1 if rng.random() < 0.3 else 2
            given = "".join(_GIVEN[int(i)] for i in rng.integers(len(_GIVEN), size=size))
            if surname + given not in self._names:
                self._names.add(surname + given)
                return surname + given

    def add(self, key: str, **attributes: Any) -> DemoPerson:
        """Create a person (work phone 0371-555xxxxx; mobile 100-xxxx-xxxx, not a real range)."""
        n = len(self.people) + 1
        person = DemoPerson(
            key=key,
            name=self.name(),
            work_phone=f"0371-555{n:05d}",
            mobile_phone=f"100-{n // 10000:04d}-{n % 10000:04d}",
            attributes=attributes,
        )
        self.people.append(person)
        self.by_key[key] = person
        return person


_ROLES: dict[str, tuple[tuple[str, bool], ...]] = {
    "street": (("party_secretary", True), ("director", False)),
    "community": (("party_secretary", True), ("director", False), ("community_police", False)),
    "grid": (("grid_leader", True), ("grid_member", False)),
    "micro_grid": (("micro_grid_member", True), ("building_head", False)),
    "special": (("special_grid_leader", True),),
}


def staff(grids: list[DemoGrid], people: People) -> list[DemoAssignment]:
    """Every grid's people: exactly one primary, plus deputies by level."""
    out: list[DemoAssignment] = []
    for g in grids:
        roles = list(_ROLES[g.level])
        if g.level == "grid" and people.rng.random() < 0.5:
            roles.append(("grid_member", False))  # busy grids have two members
        counts: dict[str, int] = defaultdict(int)
        for role, primary in roles:
            counts[role] += 1
            key = f"{g.code}:{role}:{counts[role]}"
            people.add(key, party_member=bool(primary or people.rng.random() < 0.4))
            out.append(DemoAssignment(g.code, key, role, primary))
    return out
