"""吹哨报到: on any case a community calls in departments or partner units, each of which must
report in (报到) by a deadline and act by another; late report-ins are flagged and counted."""
