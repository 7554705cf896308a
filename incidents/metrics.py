"""Trends across incidents. Plain functions over querysets, so they are testable without HTTP."""

from collections import defaultdict

from django.db.models import Count
from django.db.models.functions import TruncMonth

from .models import Incident, Severity


def monthly_counts(user, since) -> list[dict]:
    """Incidents per month and severity, oldest month first: [{"month", "total", "by_severity"}]."""
    rows = (
        Incident.objects.visible_to(user)
        .filter(started_at__gte=since)
        .annotate(month=TruncMonth("started_at"))
        .values("month", "severity")
        .annotate(n=Count("id"))
        .order_by("month")
    )
    months: dict = defaultdict(lambda: dict.fromkeys(Severity.values, 0))
    for row in rows:
        months[row["month"]][row["severity"]] = row["n"]
    return [
        {"month": month, "total": sum(counts.values()), "by_severity": counts}
        for month, counts in sorted(months.items())
    ]
