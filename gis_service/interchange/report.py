"""What an import found: findings that name the row, the field and what to do."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]

# How many findings of one kind a report keeps in full; the counts stay exact.
MAX_PER_KIND = 200


@dataclass
class Finding:
    """One problem: where it is (row, field, code), what is wrong and how to fix it."""

    severity: Severity
    kind: str
    message: str
    fix: str = ""
    row: int | None = None
    field: str | None = None
    code: str | None = None
    value: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The finding without empty keys."""
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

    def line(self) -> str:
        """One human-readable line for the terminal."""
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.code:
            where.append(f"code {self.code}")
        if self.field:
            where.append(f"field '{self.field}'")
        head = f"[{', '.join(where)}] " if where else ""
        tail = f" → {self.fix}" if self.fix else ""
        return f"{self.severity.upper()} {self.kind}: {head}{self.message}{tail}"


class ImportRefused(Exception):
    """The whole file cannot be imported (format, layer, coordinate system, mapping)."""

    def __init__(self, message: str, fix: str = "", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.details = details


@dataclass
class Report:
    """Everything an import (or a dry run) found and did."""

    layer: str
    source: str = ""
    driver: str = ""
    crs: str = ""
    rows: int = 0
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    status: str = "pending"  # checked | imported | refused
    dry_run: bool = False
    run_id: int | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    _per_kind: Counter = field(default_factory=Counter, repr=False)
    _totals: Counter = field(default_factory=Counter, repr=False)

    def add(self, finding: Finding) -> None:
        """Record a finding (beyond MAX_PER_KIND of one kind only the count grows)."""
        key = (finding.severity, finding.kind)
        self._totals[key] += 1
        if self._per_kind[key] < MAX_PER_KIND:
            self._per_kind[key] += 1
            self.findings.append(finding)

    def error(self, kind: str, message: str, fix: str = "", **where: Any) -> None:
        """Record an error: the import will not write anything."""
        self.add(Finding("error", kind, message, fix, **where))

    def warn(self, kind: str, message: str, fix: str = "", **where: Any) -> None:
        """Record a warning: the import goes ahead."""
        self.add(Finding("warning", kind, message, fix, **where))

    @property
    def errors(self) -> int:
        """How many errors (all of them, not only those kept)."""
        return sum(n for (sev, _), n in self._totals.items() if sev == "error")

    @property
    def warnings(self) -> int:
        """How many warnings."""
        return sum(n for (sev, _), n in self._totals.items() if sev == "warning")

    @property
    def ok(self) -> bool:
        """True when nothing stops the import."""
        return self.errors == 0

    def kinds(self) -> dict[str, int]:
        """Finding counts by ``severity:kind``."""
        return {f"{sev}:{kind}": n for (sev, kind), n in sorted(self._totals.items())}

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "layer": self.layer,
            "status": self.status,
            "dry_run": self.dry_run,
            "source": self.source,
            "driver": self.driver,
            "crs": self.crs,
            "rows": self.rows,
            "errors": self.errors,
            "warnings": self.warnings,
            "counts": self.counts,
            "finding_counts": self.kinds(),
            "findings": [f.as_dict() for f in self.findings],
            "run_id": self.run_id,
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }

    def text(self, limit: int = 50) -> str:
        """The report for a terminal: findings (errors first), then the counts."""
        lines = [
            f"{self.layer} from {self.source} ({self.driver}, {self.crs}): {self.rows} rows",
        ]
        ordered = sorted(self.findings, key=lambda f: (f.severity != "error", f.row or 0))
        for f in ordered[:limit]:
            lines.append("  " + f.line())
        hidden = self.errors + self.warnings - min(limit, len(ordered))
        if hidden > 0:
            lines.append(f"  … and {hidden} more (counts by kind: {self.kinds()})")
        if self.counts:
            lines.append("  " + ", ".join(f"{k}: {v}" for k, v in self.counts.items()))
        lines.append(f"  {self.errors} error(s), {self.warnings} warning(s) → {self.status}")
        return "\n".join(lines)
