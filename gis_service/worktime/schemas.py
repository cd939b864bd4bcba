"""The office's working calendar and the time limits of categories, as the YAML declares them
(layers/calendar.yaml; the time_limits of each category)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# 工作时 and 工作日 count working time only; 小时 is calendar time (自然时), for emergencies
# whose clock runs through nights and holidays.
LimitUnit = Literal["work_hours", "work_days", "hours"]
UNIT_NAMES_ZH: dict[str, str] = {"work_hours": "工作时", "work_days": "工作日", "hours": "小时"}
_UNITS_BY_NAME = {v: k for k, v in UNIT_NAMES_ZH.items()}
# The text of a limit, as the YAML and requests write it, and the pattern the OpenAPI
# document states: an amount over 0 and at most 500 (a deadline must end within the 1000
# days gis_work_add looks ahead), with at most two decimals, then the unit.
_AMOUNT = (
    r"(500(\.00?)?|[1-4][0-9]{2}(\.[0-9]{1,2})?|[1-9][0-9]?(\.[0-9]{1,2})?"
    r"|0\.(0[1-9]|[1-9][0-9]?))"
)
LIMIT_PATTERN = rf"^\s*{_AMOUNT}\s*(工作时|工作日|小时)\s*$"
_LIMIT = re.compile(LIMIT_PATTERN)
_PERIOD = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class TimeLimit(BaseModel):
    """A time limit: '4 工作时', '2 工作日' or '1 小时' in YAML and in requests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # At most 500: a deadline must end within the 1000 days gis_work_add looks ahead.
    amount: float = Field(gt=0, le=500)
    unit: LimitUnit

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            m = _LIMIT.match(value)
            if not m:
                raise ValueError(
                    f"write a limit as '<number> 工作时', '<number> 工作日' or '<number> 小时', "
                    f"not {value!r}"
                )
            unit = m.group(m.lastindex or 0)
            amount = float(value.strip().removesuffix(unit))
            return {"amount": amount, "unit": _UNITS_BY_NAME[unit]}
        return value

    @property
    def text(self) -> str:
        """The limit as the YAML writes it, e.g. '2 工作日'."""
        amount = int(self.amount) if self.amount == int(self.amount) else self.amount
        return f"{amount} {UNIT_NAMES_ZH[self.unit]}"

    def as_json(self) -> dict[str, Any]:
        """What the database and the API carry (gis_limit_seconds reads amount and unit)."""
        return {"amount": self.amount, "unit": self.unit, "text": self.text}


class TimeLimits(BaseModel):
    """立案, 处置 and 结案 limits of a category (GB/T 30428.8: filing, handling, closing).

    accept runs from the report to 立案, handle from 派遣 to the handler's 反馈, close from
    反馈 to 结案 (核查 included)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accept: TimeLimit
    handle: TimeLimit
    close: TimeLimit

    def as_json(self) -> dict[str, Any]:
        """The three limits as JSON."""
        return {k: getattr(self, k).as_json() for k in ("accept", "handle", "close")}


def _minutes(hh: str, mm: str) -> int:
    return int(hh) * 60 + int(mm)


class CalendarDef(BaseModel):
    """layers/calendar.yaml: working hours, weekend, and the office's own overrides of the
    public calendar that the `holidays` package supplies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    working_hours: list[str] = Field(
        min_length=1, max_length=6, description="Periods of a working day, 'HH:MM-HH:MM'."
    )
    weekend: list[int] = Field(default_factory=lambda: [6, 7], max_length=6)
    public_holidays: bool = Field(
        default=True, description="Take China's public holidays and 调休 from `holidays`."
    )
    first_year: int = Field(ge=2000, le=2100)
    last_year: int = Field(ge=2000, le=2100)
    days_off: dict[date, str] = Field(default_factory=dict)
    workdays: dict[date, str] = Field(default_factory=dict)

    @field_validator("working_hours")
    @classmethod
    def _periods(cls, v: list[str]) -> list[str]:
        last_end = -1
        for period in v:
            m = _PERIOD.match(period)
            if not m:
                raise ValueError(f"write a period as 'HH:MM-HH:MM', not {period!r}")
            start, end = _minutes(m.group(1), m.group(2)), _minutes(m.group(3), m.group(4))
            if end <= start or end > 24 * 60:
                raise ValueError(f"period {period} ends before it starts")
            if start < last_end:
                raise ValueError(f"period {period} overlaps the one before; list them in order")
            last_end = end
        return v

    @field_validator("weekend")
    @classmethod
    def _weekdays(cls, v: list[int]) -> list[int]:
        if any(d < 1 or d > 7 for d in v) or len(set(v)) != len(v):
            raise ValueError("weekend lists ISO weekdays 1 (Monday) to 7 (Sunday), once each")
        return sorted(v)

    @model_validator(mode="after")
    def _consistent(self) -> CalendarDef:
        if self.last_year < self.first_year:
            raise ValueError("last_year is before first_year")
        if self.last_year - self.first_year > 30:
            raise ValueError("the calendar spans at most 30 years")
        both = sorted(set(self.days_off) & set(self.workdays))
        if both:
            raise ValueError(f"listed as day off and as workday: {', '.join(map(str, both))}")
        return self

    @property
    def periods(self) -> list[tuple[int, int]]:
        """The working periods in minutes after local midnight."""
        out = []
        for period in self.working_hours:
            m = _PERIOD.match(period)
            assert m is not None  # checked above
            out.append((_minutes(m.group(1), m.group(2)), _minutes(m.group(3), m.group(4))))
        return out

    @property
    def day_seconds(self) -> int:
        """The length of a working day (one 工作日) in seconds."""
        return sum(end - start for start, end in self.periods) * 60
