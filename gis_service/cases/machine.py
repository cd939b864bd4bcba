"""One engine for every kind of case: a state machine as data (states with Chinese names,
moves with their sources, target, scope and guard), read by the API, the permission rule and
the clients' buttons alike. Hazards, service orders and 吹哨 calls each define one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gis_service.errors import Conflict, StaleVersion


def sql_list(values: Iterable[str]) -> str:
    """A SQL list of our own constants, such as ``('closed', 'rejected')`` (no user input)."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def sql_names(names: dict[str, str]) -> str:
    """A SQL VALUES list (code, name) of our own constants, to name a state in a query."""
    return "(VALUES " + ", ".join(f"('{k}', '{v}')" for k, v in names.items()) + ")"


@dataclass(frozen=True)
class Move:
    """One action: the states it may start from and the state it leads to (None: stays)."""

    action: str
    name_zh: str
    sources: tuple[str, ...]
    target: str | None
    # The auth scope the move needs: 'dispatch' for the community's decisions, 'write' for
    # the handler's own work.
    scope: str
    # A fact the case must show besides its state (e.g. 'pending:extension': a request
    # waiting for approval; 'no_pending': none waiting), or None.
    guard: str | None = None


@dataclass(frozen=True)
class Machine:
    """The states and moves of one kind of case."""

    kind: str
    statuses: dict[str, str]
    moves: tuple[Move, ...]
    closed: tuple[str, ...] = ()
    by_action: dict[str, Move] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_action", {m.action: m for m in self.moves})
        for m in self.moves:
            unknown = [
                s for s in (*m.sources, m.target) if s is not None and s not in self.statuses
            ]
            if unknown:
                raise ValueError(f"{self.kind}.{m.action}: unknown states {unknown}")

    @property
    def actions(self) -> tuple[str, ...]:
        """Every action, in the order the machine lists them."""
        return tuple(self.by_action)

    def move(self, action: str) -> Move:
        """The move called ``action`` (KeyError when there is none)."""
        return self.by_action[action]

    def allowed(self, status: str, facts: Iterable[str] | None = None) -> list[str]:
        """The actions the machine allows from ``status`` given the case's facts (a guarded
        move needs its fact; with ``facts`` None, guards are not looked at)."""
        known = None if facts is None else set(facts)
        return [
            m.action
            for m in self.moves
            if status in m.sources and (known is None or m.guard is None or m.guard in known)
        ]

    def is_allowed(self, action: str, status: str, facts: Iterable[str] | None = None) -> bool:
        """True when ``action`` may start from ``status`` (and its guard holds)."""
        return action in self.allowed(status, facts)

    def target(self, action: str, status: str) -> str:
        """The state ``action`` leads to from ``status``."""
        target = self.by_action[action].target
        return status if target is None else target

    def table(self) -> list[dict[str, object]]:
        """Every move with its sources, target, scope and guard, for the API and clients."""
        return [
            {
                "action": m.action,
                "name_zh": m.name_zh,
                "from": list(m.sources),
                "to": m.target or "(unchanged)",
                "scope": m.scope,
                "guard": m.guard,
            }
            for m in self.moves
        ]


def check_move(
    machine: Machine, action: str, status: str, sent: int, version: int, what: str
) -> None:
    """Refuse a move on a stale copy (412) or from a state that does not allow it (409);
    ``what`` names the case in the message, e.g. "Order FW20261130-000001"."""
    if sent != version:
        raise StaleVersion(
            f"{what} changed since you loaded it (you sent version {sent}, it is now "
            f"{version}). Reload it.",
            version=version,
        )
    if not machine.is_allowed(action, status):
        allowed = machine.allowed(status)
        raise Conflict(
            f"'{action}' is not possible while {what} is {status} "
            f"({machine.statuses[status]}). Allowed now: {', '.join(allowed) or 'none'}.",
            code="move_not_allowed",
            status=status,
            action=action,
            allowed=allowed,
        )
