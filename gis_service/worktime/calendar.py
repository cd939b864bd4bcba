"""Which days break the weekly rule: China's public holidays and adjusted working days (调休)
from the `holidays` package, then the office's own overrides from layers/calendar.yaml.

`holidays` follows the State Council's yearly notice (国务院办公厅关于部分节假日安排的通知),
including the weekends worked in exchange (weekend_workdays); for a year whose notice it does
not yet carry it still knows the statutory holidays. The office corrects or adds days in YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import holidays

from gis_service.worktime.schemas import CalendarDef


@dataclass(frozen=True)
class DayRule:
    """A day that differs from the weekly rule (or that the office names)."""

    day: date
    workday: bool
    name: str
    source: str  # 'package' or 'office'


def _weekend(day: date, cal: CalendarDef) -> bool:
    return day.isoweekday() in cal.weekend


def special_days(cal: CalendarDef) -> list[DayRule]:
    """Every day of the calendar's years that is not what its weekday says, by date."""
    rules: dict[date, DayRule] = {}
    if cal.public_holidays:
        years = range(cal.first_year, cal.last_year + 1)
        cn = holidays.China(years=years, language="zh_CN")
        for day, name in cn.items():
            if not _weekend(day, cal):
                rules[day] = DayRule(day, False, name, "package")
        for day in sorted(cn.weekend_workdays):
            if cal.first_year <= day.year <= cal.last_year and _weekend(day, cal):
                rules[day] = DayRule(day, True, "调休上班", "package")
    for day, name in cal.days_off.items():
        rules[day] = DayRule(day, False, name, "office")
    for day, name in cal.workdays.items():
        rules[day] = DayRule(day, True, name, "office")
    return [rules[d] for d in sorted(rules)]
