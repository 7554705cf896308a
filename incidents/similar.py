"""Similar past incidents and recurrence notes, for the incident page and the guided write-up.

An incident is similar when it shares services, contributing-factor categories or words with
the one being read or written. Each shares something a reader can check, so each result says
what: "Also on checkout", "Also a monitoring & alerting gap", "Also mentions “canary”".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.contrib.humanize.templatetags.humanize import ordinal
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from .models import ContributingFactor, FactorCategory, Incident, Service
from .search import any_of, keywords, terms_in

# How much each kind of overlap counts.
SERVICE_POINTS = 3
CATEGORY_POINTS = 2
TEXT_POINTS_TOP, TEXT_POINTS = 3, 1  # the 10 best word matches, the next 40
RECURRENCE_DAYS = 90

# "3rd incident with … on checkout in 90 days"
RECURRENCE_PHRASES = {
    FactorCategory.CHANGE: "a change or deploy as a factor",
    FactorCategory.CONFIGURATION: "a configuration factor",
    FactorCategory.CAPACITY: "a capacity factor",
    FactorCategory.DEPENDENCY: "a dependency factor",
    FactorCategory.MONITORING: "a monitoring & alerting gap",
    FactorCategory.TOOLING: "a tooling factor",
    FactorCategory.DOCUMENTATION: "a documentation or runbook gap",
    FactorCategory.PROCESS: "a process factor",
    FactorCategory.COMMUNICATION: "a communication factor",
    FactorCategory.WORKLOAD: "workload or fatigue as a factor",
    FactorCategory.DESIGN: "a design factor",
    FactorCategory.TESTING: "a testing gap",
    FactorCategory.UNKNOWN: "an unexplained factor",
}


def split_param(request, name: str, limit: int = 20) -> list[str]:
    """A list parameter given repeated (?a=x&a=y) or comma-separated (?a=x,y), de-duplicated."""
    values: list[str] = []
    for raw in request.GET.getlist(name)[:limit]:
        for value in raw.split(","):
            value = value.strip()[:100]
            if value and value not in values:
                values.append(value)
    return values[:limit]


@dataclass
class Similar:
    incident: Incident
    score: int
    services: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # category values
    words: list[str] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        reasons = []
        if self.services:
            reasons.append("Also on " + _and(self.services))
        if self.categories:
            phrases = [RECURRENCE_PHRASES.get(c, "the same factor") for c in self.categories]
            reasons.append("Also had " + _and(phrases))
        if self.words:
            reasons.append("Also mentions " + _and([f"“{word}”" for word in self.words]))
        return reasons


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def find_similar(
    user, *, services=(), categories=(), text: str = "", exclude_slug: str = "", limit: int = 5
) -> list[Similar]:
    """Up to `limit` published incidents this person may read that share the most services,
    factor categories and distinctive words with what is given, best first (newest on ties).

    Scores are summed in one grouped query over the link tables (points per shared service,
    per shared factor category, for ranking high on the words), so the cost follows the
    number of matches, not the number of incidents; only the few shown are then read.
    """
    candidates = Incident.objects.visible_to(user).published()
    if exclude_slug:
        candidates = candidates.exclude(slug=exclude_slug)
    words = keywords(text)
    text_hits = [pk for pk, _ in any_of(words, candidates, limit=50)]
    scores = _scores(candidates, services, categories, text_hits)
    if not scores:
        return []
    chosen = _best(scores, limit)
    incidents = {
        incident.pk: incident
        for incident in Incident.objects.filter(pk__in=chosen)
        .only("id", "slug", "title", "severity", "status", "started_at")
        .prefetch_related("services")
    }
    results = [
        Similar(incident=incidents[pk], score=scores[pk]) for pk in chosen if pk in incidents
    ]
    shared: dict[int, set] = {pk: set() for pk in chosen}
    if categories:
        for pk, category in (
            ContributingFactor.objects.filter(incident_id__in=chosen, category__in=categories)
            .values_list("incident_id", "category")
            .distinct()
        ):
            shared[pk].add(category)
    present = terms_in([pk for pk in chosen if pk in text_hits], words)
    for result in results:
        incident = result.incident
        result.services = [s.name for s in incident.services.all() if s.slug in services]
        result.categories = [c for c in categories if c in shared[incident.pk]]
        result.words = [str(term) for term in present.get(incident.pk, [])][:4]
    return results


def _scores(candidates, services, categories, text_hits) -> dict[int, int]:
    """{incident id: points} for every candidate that shares anything, in one query."""
    parts, params = [], []
    if services:
        marks = ", ".join(["%s"] * len(services))
        parts.append(
            f"SELECT t.incident_id AS incident_id, {SERVICE_POINTS} AS points "
            f"FROM incidents_incident_services t JOIN incidents_service s ON s.id = t.service_id "
            f"WHERE s.slug IN ({marks})"
        )
        params += services
    if categories:
        marks = ", ".join(["%s"] * len(categories))
        parts.append(
            f"SELECT f.incident_id AS incident_id, {CATEGORY_POINTS} AS points FROM "
            f"(SELECT DISTINCT incident_id, category FROM incidents_contributingfactor "
            f"WHERE category IN ({marks})) f"
        )
        params += categories
    for points, ids in ((TEXT_POINTS_TOP, text_hits[:10]), (TEXT_POINTS, text_hits[10:])):
        if ids:
            marks = ", ".join(["%s"] * len(ids))
            parts.append(
                f"SELECT id AS incident_id, {points} AS points FROM incidents_incident "
                f"WHERE id IN ({marks})"
            )
            params += ids
    if not parts:
        return {}
    allowed, allowed_params = candidates.order_by().values("pk").query.sql_with_params()
    sql = (
        f"SELECT p.incident_id, SUM(p.points) FROM ({' UNION ALL '.join(parts)}) p "
        f"WHERE p.incident_id IN ({allowed}) GROUP BY p.incident_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (*params, *allowed_params))
        return {pk: int(score) for pk, score in cursor.fetchall()}


MAX_TIED = 2_000


def _best(scores: dict[int, int], limit: int) -> list[int]:
    """The ids of the `limit` best scores, best first; among equal scores, the newest. One
    query, for the tie at the cut only (the started_at index answers it without reading rows);
    the few above the cut are put in date order when they are fetched."""
    cut = sorted(scores.values(), reverse=True)[min(limit, len(scores)) - 1]
    above = [pk for pk, score in scores.items() if score > cut]
    tied = [pk for pk, score in scores.items() if score == cut]
    # A huge tie (every incident on a busy service) is narrowed to the latest ids first.
    tied = sorted(tied, reverse=True)[:MAX_TIED]
    tied = list(
        Incident.objects.filter(pk__in=tied)
        .order_by("-started_at", "-id")
        .values_list("pk", flat=True)[: limit - len(above)]
    )
    return above + tied


@dataclass(frozen=True)
class Recurrence:
    count: int  # this one included
    text: str


def recurrence_notes(
    user, *, services=(), categories=(), exclude_slug: str = "", reference=None,
    days: int = RECURRENCE_DAYS, limit: int = 3,
) -> list[Recurrence]:  # fmt: skip
    """ "3rd incident with a monitoring & alerting gap on checkout in 90 days": how many incidents
    this person may read, in the `days` before `reference` (now by default), had the same
    factor category on the same service — counting the one being written."""
    if not categories and not services:
        return []
    reference = reference or timezone.now()
    window = Incident.objects.visible_to(user).filter(
        started_at__gt=reference - dt.timedelta(days=days), started_at__lte=reference
    )
    if exclude_slug:
        window = window.exclude(slug=exclude_slug)
    if categories and services:
        rows = (
            ContributingFactor.objects.filter(
                incident__in=window, category__in=categories, incident__services__slug__in=services
            )
            .values("category", "incident__services__slug", "incident__services__name")
            .annotate(n=Count("incident_id", distinct=True))
        )
        counts = [((r["category"], r["incident__services__name"]), r["n"]) for r in rows]
    elif categories:
        rows = (
            ContributingFactor.objects.filter(incident__in=window, category__in=categories)
            .values("category")
            .annotate(n=Count("incident_id", distinct=True))
        )
        counts = [((r["category"], None), r["n"]) for r in rows]
    else:
        rows = (
            Service.objects.filter(slug__in=services, incidents__in=window)
            .values("name")
            .annotate(n=Count("incidents", distinct=True))
        )
        counts = [((None, r["name"]), r["n"]) for r in rows]
    notes = []
    for (category, service), n in sorted(counts, key=lambda item: (-item[1], item[0][0] or "",
                                                                     item[0][1] or "")):  # fmt: skip
        total = n + 1
        text = f"{ordinal(total)} incident"
        if category:
            text += f" with {RECURRENCE_PHRASES.get(category, 'the same factor')}"
        if service:
            text += f" on {service}"
        text += f" in {days} days"
        notes.append(Recurrence(count=total, text=text))
    return notes[:limit]
