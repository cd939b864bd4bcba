"""The states a facility (部件) may be in; mirrors the CHECK constraint facilities_status of
migration 0001 (a test compares them)."""

from __future__ import annotations

FACILITY_STATUSES = ("planned", "in_service", "damaged", "under_repair", "retired")
