"""Trends across incidents, and the home page's look back.

Plain functions, testable without HTTP. The report reads a few columns of the incidents in
range, their action items grouped by outcome, their factors and services — six queries with
the team and service lists, whatever the number of incidents — and counts and ranks them in
Python; every figure counts only the published write-ups the reader may open. Durations are shown as distributions (median, the
90th percentile, a box plot), never as a single average that one long outage would distort.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

from django import forms
from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    Min,
    OuterRef,
    Q,
    Subquery,
    When,
)
from django.db.models.functions import Cast
from django.utils import timezone

from .actions import hidden_incidents_q, where_in_list
from .models import (
    ActionItem,
    ContributingFactor,
    FactorCategory,
    Incident,
    Service,
    Severity,
    Team,
    sql_ids,
)

DAY = 86_400
MAX_RANGE_DAYS = 3_653

# --- Database expressions -----------------------------------------------------------------


class Seconds(Func):
    """Seconds from `start` to `end` (datetimes or dates), computed by the database itself:
    Django's generic datetime arithmetic calls back into Python for every row on SQLite."""

    arity = 2
    output_field = FloatField()

    def as_sqlite(self, compiler, connection, **extra):
        (start, start_params), (end, end_params) = (
            compiler.compile(e) for e in self.source_expressions
        )
        return (
            f"((julianday({end}) - julianday({start})) * 86400.0)",
            [*end_params, *start_params],
        )

    def as_postgresql(self, compiler, connection, **extra):
        (start, start_params), (end, end_params) = (
            compiler.compile(e) for e in self.source_expressions
        )
        return (
            f"EXTRACT(EPOCH FROM (CAST({end} AS timestamptz) - CAST({start} AS timestamptz)))"
            "::double precision",
            [*end_params, *start_params],
        )


class MonthKey(Func):
    """ "2026-03" for a datetime, in the current time zone, computed in the database."""

    arity = 1
    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        offset = int(timezone.localtime().utcoffset().total_seconds())
        return f"strftime('%%Y-%%m', {sql}, %s)", [*params, f"{offset:+d} seconds"]

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"to_char({sql} AT TIME ZONE %s, 'YYYY-MM')", [
            *params,
            timezone.get_current_timezone_name(),
        ]


# --- Filters --------------------------------------------------------------------------------


def plausible_date(value: dt.date) -> None:
    """Filters take dates people mean; year 1 or 9999 would overflow date arithmetic."""
    if not dt.date(1970, 1, 1) <= value <= dt.date(2100, 12, 31):
        raise forms.ValidationError("Pick a date between 1970 and 2100.", code="implausible")


class MetricsFilterForm(forms.Form):
    team = forms.SlugField(required=False)
    service = forms.SlugField(required=False)
    since = forms.DateField(
        required=False, label="From", validators=[plausible_date],
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip
    until = forms.DateField(
        required=False, label="To", validators=[plausible_date],
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The end of the range must not be before its start.")
            data.pop("until", None)
        return data


def _aware(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def date_range(data: dict, today: dt.date) -> tuple[dt.date, dt.date]:
    """The chosen range; by default the last twelve whole months and this one; at most ten
    years (a chart of a thousand months tells nobody anything)."""
    until = data.get("until") or today
    since = data.get("since")
    if since is None:
        index = until.year * 12 + until.month - 1 - 11
        since = dt.date(index // 12, index % 12 + 1, 1)
    if (until - since).days > MAX_RANGE_DAYS:
        since = until - dt.timedelta(days=MAX_RANGE_DAYS)
    return since, until


def published_for(user):
    """`Incident.objects.visible_to(user).published()`, asked the cheap way: among published
    incidents only the few for listed teams or people can be shut out, so they are left out by
    one uncorrelated subquery instead of testing `visible_to` on every row (SQLite at 10,000
    incidents: the metrics queries 29 → 23 ms, "on this day" and the re-read 5.3 → 2.7 ms each).
    `tests/incidents/test_hidden.py` checks it admits exactly what `visible_to` does."""
    return Incident.objects.published().exclude(hidden_incidents_q(user, published_only=True))


def base_incidents(user, data: dict, today: dt.date):
    """Published incidents this person may read, in the range, for the team and service."""
    since, until = date_range(data, today)
    incidents = published_for(user).filter(
        started_at__gte=_aware(since), started_at__lt=_aware(until + dt.timedelta(days=1))
    )
    if data.get("team"):
        incidents = incidents.filter(
            Exists(
                Incident.teams.through.objects.filter(
                    incident_id=OuterRef("pk"), team__slug=data["team"]
                )
            )
        )
    if data.get("service"):
        incidents = incidents.filter(
            Exists(
                Incident.services.through.objects.filter(
                    incident_id=OuterRef("pk"), service__slug=data["service"]
                )
            )
        )
    return incidents


# --- The rows every figure is computed from -----------------------------------------------

# Above this many incidents in the range, the related rows are chosen by a subquery instead of
# a list of ids written into the SQL (a ten-year range on a very large history).
ID_LIST_LIMIT = 5000


@dataclass
class Facts:
    """The few columns the report is computed from, read in five flat queries.

    Each figure used to be its own aggregate query, and each of the seven joined the related
    table to the visibility and range subquery again: at 10,000 incidents that cost 39 ms on
    PostgreSQL and 22 ms on SQLite. Now the ≈900 incidents of a year are read once, then their
    action items (grouped by what became of them), factors and services by id, mostly from
    covering indexes: 7 ms on SQLite. Counting and ranking the small tuples in Python adds
    about 2 ms.

    Factors and services come counted (`tallies`): as one row per factor and per service link,
    3,300 rows at 10,000 incidents took two round trips and ≈3 ms of Python to count."""

    # (id, "YYYY-MM" in the current time zone, severity, *seconds of each of DURATIONS)
    incidents: list[tuple] = field(default_factory=list)
    # Action items counted by what became of them (see `gather`): (status, 1 if open past its
    # due date, its team's id if so, 1 if verified effective, DONE_UNDATED, DONE_ON_TIME or
    # DONE_LATE, index of the first of WINDOWS it was done within, how many of WINDOWS have
    # passed since it was created, number of items, earliest due date as "YYYY-MM-DD")
    item_groups: list[tuple] = field(default_factory=list)
    # Incidents counted (see `_tallies`): ("category", category, None, n) per factor category,
    # ("service", None, service id, n) per service, ("both", category, service id, n) per pair.
    tallies: list[tuple] = field(default_factory=list)
    # Every team and service by id: the filter form lists them, the figures name them.
    team_list: list = field(default_factory=list)
    service_list: list = field(default_factory=list)

    def counted(self, kind: str) -> list[tuple]:
        """(category, service id, number of incidents) of one kind of tally."""
        return [row[1:] for row in self.tallies if row[0] == kind]

    @cached_property
    def team_by_id(self) -> dict:
        return {team.pk: team for team in self.team_list}

    @cached_property
    def service_by_id(self) -> dict:
        return {service.pk: service for service in self.service_list}


DONE_UNDATED, DONE_ON_TIME, DONE_LATE = 0, 1, 2


def _of_these(queryset, listed: str, count: int, incidents):
    """`queryset` (a table with an incident_id column) cut down to the incidents listed, in no
    particular order (the figures do not need the model's default ordering, and sorting every
    row for it cost SQLite more than reading them)."""
    queryset = queryset.order_by()
    if count > ID_LIST_LIMIT:
        return queryset.filter(incident_id__in=incidents.order_by().values("pk"))
    return where_in_list(queryset, "incident_id", listed)


def _tallies(listed: str, count: int, incidents) -> list[tuple]:
    """How many of the incidents have each factor category, each service, and each pair of
    the two, counted in one query. An incident counts once per category however many factors
    name it, and names a service at most once."""
    params = []
    if count > ID_LIST_LIMIT:
        listed, params = incidents.order_by().values("pk").query.sql_with_params()
    factors = ContributingFactor._meta.db_table
    services = Incident.services.through._meta.db_table
    sql = (
        f'WITH f AS (SELECT DISTINCT "incident_id", "category" FROM "{factors}" '
        f'WHERE "incident_id" IN ({listed})), '
        f's AS (SELECT "incident_id", "service_id" FROM "{services}" '
        f'WHERE "incident_id" IN ({listed})) '
        'SELECT \'category\', "category", NULL, COUNT(*) FROM f GROUP BY "category" '
        'UNION ALL SELECT \'service\', NULL, "service_id", COUNT(*) FROM s GROUP BY "service_id" '
        'UNION ALL SELECT \'both\', f."category", s."service_id", COUNT(*) FROM f '
        'JOIN s ON s."incident_id" = f."incident_id" GROUP BY f."category", s."service_id"'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *params])
        return cursor.fetchall()


def _rows(queryset) -> list[tuple]:
    """The rows of a `values_list` query as the database driver returns them. Django's
    per-value converters (floats, booleans) cost more than the queries themselves here, and
    every column below is a string or a number the drivers already return as such."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def gather(incidents, *, today: dt.date, now: dt.datetime) -> Facts:
    facts = Facts(
        team_list=list(Team.objects.only("name", "slug")),
        service_list=list(Service.objects.only("name", "slug")),
    )
    facts.incidents = _rows(
        incidents.order_by().values_list(
            "pk",
            MonthKey("started_at"),
            "severity",
            *[Seconds(F(start), F(end)) for _label, start, end in DURATIONS.values()],
        )
    )
    if not facts.incidents:
        return facts
    listed = sql_ids(row[0] for row in facts.incidents)

    def of_these(queryset):
        return _of_these(queryset, listed, len(facts.incidents), incidents)

    done = Q(status=ActionItem.Status.DONE)
    overdue = Q(status__in=ActionItem.OPEN_STATUSES, due__lt=today)
    how_done = Case(
        When(~done | Q(due__isnull=True) | Q(completed_at__isnull=True), then=DONE_UNDATED),
        # Done on the due date counts as on time: completed before the end of that day.
        When(past_due__lt=DAY, then=DONE_ON_TIME),
        default=DONE_LATE,
    )
    done_within = Case(
        *[When(done & Q(to_close__lte=days * DAY), then=i) for i, days in enumerate(WINDOWS)],
        default=len(WINDOWS),
    )
    windows_passed = Case(  # WINDOWS are nested: 90 days old is 60 and 30 days old too
        *[
            When(created_at__lte=now - dt.timedelta(days=days), then=len(WINDOWS) - i)
            for i, days in enumerate(reversed(WINDOWS))
        ],
        default=0,
    )
    # Grouped in the database: a few dozen rows instead of one per item.
    facts.item_groups = _rows(
        of_these(ActionItem.objects.all())
        .alias(
            to_close=Seconds(F("created_at"), F("completed_at")),
            past_due=Seconds(F("due"), F("completed_at")),
        )
        .values_list(
            "status",
            Case(When(overdue, then=1), default=0),
            Case(When(overdue, then=F("team_id")), default=None, output_field=IntegerField()),
            Case(When(verified_effective_at__isnull=False, then=1), default=0),
            how_done,
            done_within,
            windows_passed,
        )
        .annotate(n=Count("*"), oldest=Cast(Min("due"), CharField()))
    )
    facts.tallies = _tallies(listed, len(facts.incidents), incidents)
    return facts


# --- Figures --------------------------------------------------------------------------------


def _months_between(since: dt.date, until: dt.date) -> list[str]:
    keys, year, month = [], since.year, since.month
    while (year, month) <= (until.year, until.month):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return keys


def monthly_counts(facts: Facts, since: dt.date, until: dt.date) -> list[dict]:
    """Incidents per month and severity, every month of the range, oldest first:
    [{"key": "2026-03", "month": date, "total": n, "by_severity": {"SEV1": n, …}}]."""
    counts = {key: dict.fromkeys(Severity.values, 0) for key in _months_between(since, until)}
    for (month, severity), n in Counter(row[1:3] for row in facts.incidents).items():
        if month in counts and severity in counts[month]:
            counts[month][severity] = n
    return [
        {
            "key": key,
            "month": dt.date(int(key[:4]), int(key[5:]), 1),
            "total": sum(by.values()),
            "by_severity": by,
        }
        for key, by in counts.items()
    ]


DURATIONS = {
    "detect": ("Time to detect", "started_at", "detected_at"),
    "acknowledge": ("Time to acknowledge", "detected_at", "acknowledged_at"),
    "mitigate": ("Time to mitigate", "started_at", "mitigated_at"),
    "resolve": ("Time to resolve", "started_at", "resolved_at"),
}
PERCENTILES = (10, 25, 50, 75, 90)


@dataclass
class Distribution:
    key: str
    label: str
    n: int = 0
    minimum: float | None = None
    maximum: float | None = None
    percentiles: dict[int, float] = field(default_factory=dict)

    @property
    def median(self):
        return self.percentiles.get(50)

    @property
    def p90(self):
        return self.percentiles.get(90)

    def as_timedelta(self, seconds):
        return None if seconds is None else dt.timedelta(seconds=round(seconds))

    @property
    def table(self) -> dict:
        return {
            "min": self.as_timedelta(self.minimum),
            **{f"p{p}": self.as_timedelta(self.percentiles.get(p)) for p in PERCENTILES},
            "max": self.as_timedelta(self.maximum),
        }


def percentile(sorted_values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont, numpy's
    default)."""
    position = (len(sorted_values) - 1) * p / 100
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def distributions(facts: Facts) -> list[Distribution]:
    """Median, percentiles, minimum and maximum of each duration. A duration that is missing,
    or negative because a time was entered wrong, is left out rather than distorting the rest."""
    result = []
    for index, (key, (label, _start, _end)) in enumerate(DURATIONS.items()):
        column = 3 + index
        values = sorted(
            row[column] for row in facts.incidents if row[column] is not None and row[column] >= 0
        )
        dist = Distribution(key=key, label=label, n=len(values))
        if values:
            # julianday() arithmetic is exact to about 0.1 ms; timestamps are to the millisecond.
            dist.minimum, dist.maximum = round(values[0], 3), round(values[-1], 3)
            dist.percentiles = {p: round(percentile(values, p), 3) for p in PERCENTILES}
        result.append(dist)
    return result


@dataclass
class FollowThrough:
    total: int = 0
    done_on_time: int = 0
    done_late: int = 0
    done_undated: int = 0
    open_not_due: int = 0
    open_overdue: int = 0
    wont_do: int = 0
    verified: int = 0
    done: int = 0
    closed_within: dict[int, tuple[int, int]] = field(default_factory=dict)  # days: (closed, of)

    @property
    def outcomes(self) -> list[tuple[str, str, int]]:
        """(css key, label, count) in the order they are stacked."""
        return [
            ("ontime", "Done on time", self.done_on_time + self.done_undated),
            ("late", "Done late", self.done_late),
            ("open", "Open, not yet due", self.open_not_due),
            ("overdue", "Open and overdue", self.open_overdue),
            ("wontdo", "Won't do", self.wont_do),
        ]

    def share_closed(self, days: int) -> float | None:
        closed, of = self.closed_within.get(days, (0, 0))
        return closed / of if of else None

    @property
    def share_verified(self) -> float | None:
        return self.verified / self.done if self.done else None


WINDOWS = (30, 60, 90)


def follow_through(facts: Facts) -> FollowThrough:
    """What became of the action items of these incidents.

    Closed within N days counts only items at least N days old, so recent items do not make
    the share look worse than it is."""
    result = FollowThrough()
    closed = [0] * len(WINDOWS)
    of = [0] * len(WINDOWS)
    for (
        status,
        overdue,
        _team,
        verified,
        how_done,
        done_within,
        passed,
        n,
        _due,
    ) in facts.item_groups:
        result.total += n
        for i in range(passed):
            of[i] += n
            if done_within <= i:
                closed[i] += n
        if status == ActionItem.Status.DONE:
            result.done += n
            result.verified += verified * n
            if how_done == DONE_ON_TIME:
                result.done_on_time += n
            elif how_done == DONE_LATE:
                result.done_late += n
            else:  # neither on time nor late without a due date and a completion time
                result.done_undated += n
        elif status in ActionItem.OPEN_STATUSES:
            if overdue:
                result.open_overdue += n
            else:
                result.open_not_due += n
        elif status == ActionItem.Status.WONT_DO:
            result.wont_do += n
    result.closed_within = {days: (closed[i], of[i]) for i, days in enumerate(WINDOWS)}
    return result


def overdue_by_team(facts: Facts, *, limit: int = 10) -> list[dict]:
    """Open items past their due date per owning team, most first: n and the oldest due date."""
    counts: Counter[int] = Counter()
    oldest: dict[int, str] = {}
    for _status, overdue, team_id, *_rest, n, due in facts.item_groups:
        if overdue:
            counts[team_id] += n
            oldest[team_id] = min(oldest.get(team_id, due), due)
    rows = [
        {
            "team__name": facts.team_by_id[pk].name,
            "team__slug": facts.team_by_id[pk].slug,
            "n": n,
            "oldest": dt.date.fromisoformat(oldest[pk][:10]),
        }
        for pk, n in counts.items()
    ]
    return sorted(rows, key=lambda r: (-r["n"], r["team__name"]))[:limit]


def factor_categories(facts: Facts) -> list[dict]:
    """Incidents per contributing-factor category, most frequent first."""
    labels = dict(FactorCategory.choices)
    counts = {category: n for category, _service, n in facts.counted("category")}
    return [
        {"key": category, "label": labels.get(category, category), "n": n}
        for category, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def categories_by_service(facts: Facts, *, categories: int = 6, services: int = 8) -> dict:
    """Which factor categories recur on which services: a table of incident counts for the most
    frequent categories and services."""
    labels = dict(FactorCategory.choices)
    names = {pk: service.name for pk, service in facts.service_by_id.items()}
    cells = {(category, names[service_id]): n for category, service_id, n in facts.counted("both")}
    by_category: Counter[str] = Counter()
    by_service: Counter[str] = Counter()
    for (category, service), n in cells.items():
        by_category[category] += n
        by_service[service] += n
    top_categories = sorted(by_category, key=lambda c: (-by_category[c], c))[:categories]
    top_services = sorted(by_service, key=lambda s: (-by_service[s], s))[:services]
    peak = max(cells.values(), default=0)

    def heat(n):
        return 0 if not n or not peak else min(4, 1 + int(3 * n / peak))

    return {
        "services": top_services,
        "rows": [
            {
                "label": labels.get(category, category),
                "cells": [
                    {"n": cells.get((category, s), 0), "heat": heat(cells.get((category, s), 0))}
                    for s in top_services
                ],
            }
            for category in top_categories
        ],
    }


def incidents_by_service(facts: Facts, limit: int = 12) -> list[dict]:
    counts = Counter({service_id: n for _category, service_id, n in facts.counted("service")})
    rows = [
        {"service__name": service.name, "service__slug": service.slug, "n": counts[pk]}
        for pk, service in facts.service_by_id.items()
        if counts[pk]
    ]
    return sorted(rows, key=lambda r: (-r["n"], r["service__name"]))[:limit]


# --- Charts: geometry for server-rendered SVG ------------------------------------------------

CHART_WIDTH = 720


def _nice_max(value: int) -> int:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above `value` (at least 1)."""
    if value <= 5:
        return max(value, 1)
    magnitude = 10 ** math.floor(math.log10(value))
    return next(
        math.ceil(step * magnitude) for step in (1, 2, 2.5, 5, 10) if value <= step * magnitude
    )


def month_chart(months: list[dict]) -> dict:
    """A stacked column per month, SEV1 at the bottom."""
    height, top, bottom, left, right = 220, 10, 30, 36, 8
    plot_w, plot_h = CHART_WIDTH - left - right, height - top - bottom
    peak = _nice_max(max((m["total"] for m in months), default=0))
    slot = plot_w / max(len(months), 1)
    bar_w = max(4.0, min(40.0, slot * 0.7))
    columns = []
    for index, month in enumerate(months):
        x = left + index * slot + (slot - bar_w) / 2
        y = top + plot_h
        segments = []
        for severity in Severity.values:
            n = month["by_severity"][severity]
            h = plot_h * n / peak
            if n:
                y -= h
                segments.append(
                    {
                        "x": round(x, 1),
                        "y": round(y, 1),
                        "w": round(bar_w, 1),
                        "h": round(h, 1),
                        "css": severity.lower(),
                        "n": n,
                        "severity": severity,
                    }
                )
        columns.append(
            {
                "segments": segments,
                "label": month["month"],
                "total": month["total"],
                "label_x": round(x + bar_w / 2, 1),
                "total_y": round(y - 4, 1),
                "show_label": len(months) <= 13 or index % math.ceil(len(months) / 12) == 0,
            }
        )
    ticks = [
        {"value": v, "y": round(top + plot_h - plot_h * v / peak, 1)}
        for v in sorted({0, peak // 2, peak})
    ]
    return {
        "width": CHART_WIDTH,
        "height": height,
        "columns": columns,
        "ticks": ticks,
        "left": left,
        "right": CHART_WIDTH - right,
        "baseline": top + plot_h,
        "label_y": height - 10,
    }


TIME_TICKS = [
    (60, "1 min"),
    (300, "5 min"),
    (900, "15 min"),
    (3600, "1 h"),
    (4 * 3600, "4 h"),
    (DAY, "1 d"),
    (7 * DAY, "1 w"),
    (30 * DAY, "30 d"),
]


def box_chart(dists: list[Distribution]) -> dict:
    """A box plot per duration on a logarithmic time axis: whiskers from the 10th to the 90th
    percentile, the box from the 25th to the 75th, a bar at the median, a dot at the 90th."""
    row_h, top, left, right, label_w = 44, 24, 150, 190, 0
    shown = [d for d in dists if d.n]
    height = top + row_h * max(len(dists), 1) + 10
    lows = [max(1.0, d.percentiles[10]) for d in shown]
    highs = [max(1.0, d.percentiles[90]) for d in shown]
    # The axis runs from the tick at or below the fastest 10th percentile to the tick at or
    # above the slowest 90th, so the boxes use the width.
    smallest, largest = min(lows, default=60.0), max(highs, default=float(DAY))
    lo = max([t for t, _ in TIME_TICKS if t <= smallest], default=smallest)
    hi = min([t for t, _ in TIME_TICKS if t >= largest], default=largest)
    hi = hi if hi > lo else lo * 10
    span = math.log(hi) - math.log(lo)
    plot_w = CHART_WIDTH - left - right - label_w

    def x(seconds):
        seconds = min(max(seconds, lo), hi)
        return round(left + plot_w * (math.log(seconds) - math.log(lo)) / span, 1)

    rows = []
    for index, dist in enumerate(dists):
        y = top + index * row_h + row_h / 2
        row = {"label": dist.label, "y": round(y, 1), "label_y": round(y + 4, 1), "n": dist.n}
        if dist.n:
            p = dist.percentiles
            row.update(
                {
                    "x10": x(p[10]),
                    "x25": x(p[25]),
                    "x50": x(p[50]),
                    "x75": x(p[75]),
                    "x90": x(p[90]),
                    "box_y": round(y - 9, 1),
                    "box_h": 18,
                    "whisker_top": round(y - 6, 1),
                    "whisker_bottom": round(y + 6, 1),
                    "median": dist.as_timedelta(p[50]),
                    "p90": dist.as_timedelta(p[90]),
                }
            )
            row["box_w"] = round(max(row["x75"] - row["x25"], 2), 1)
            row["box_bottom"] = round(row["box_y"] + row["box_h"], 1)
            row["text_x"] = round(row["x90"] + 9, 1)
        rows.append(row)
    ticks = [{"x": x(t), "label": label} for t, label in TIME_TICKS if lo <= t <= hi]
    return {
        "width": CHART_WIDTH,
        "height": height,
        "rows": rows,
        "ticks": ticks,
        "top": top - 6,
        "bottom": height - 6,
        "tick_y": 12,
    }


def bar_chart(rows: list[tuple[str, int]], *, css: str = "bar") -> dict:
    """Horizontal bars with their label on the left and the value on the right."""
    row_h, left, right = 26, 190, 50
    plot_w = CHART_WIDTH - left - right
    peak = max((n for _, n in rows), default=0) or 1
    bars = []
    for index, (label, n) in enumerate(rows):
        y = index * row_h + 4
        w = round(plot_w * n / peak, 1)
        bars.append(
            {
                "label": label,
                "n": n,
                "y": y,
                "h": row_h - 8,
                "w": max(w, 1 if n else 0),
                "label_y": y + (row_h - 8) / 2 + 4,
                "value_x": left + w + 6,
            }
        )
    return {
        "width": CHART_WIDTH,
        "height": row_h * max(len(rows), 1) + 4,
        "bars": bars,
        "left": left,
        "css": css,
    }


def stack_chart(parts: list[tuple[str, str, int]]) -> dict:
    """One horizontal bar split into parts (action-item outcomes)."""
    total = sum(n for _, _, n in parts) or 1
    x, segments = 0.0, []
    for css, label, n in parts:
        w = CHART_WIDTH * n / total
        if n:
            segments.append(
                {
                    "css": css,
                    "label": label,
                    "n": n,
                    "x": round(x, 1),
                    "w": round(w, 1),
                    "share": n / total,
                    "text_x": round(x + w / 2, 1),
                    "show_text": w > 44,
                }
            )
        x += w
    return {"width": CHART_WIDTH, "height": 34, "segments": segments}


# --- The report -----------------------------------------------------------------------------


def _share(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)}%"


def _say(seconds: float | None) -> str:
    from .templatetags.debrief import duration

    return duration(None if seconds is None else dt.timedelta(seconds=round(seconds)))


def takeaways(report: dict) -> list[str]:
    """A few sentences a reader gets at a glance, from the figures below them."""
    lines = []
    total = sum(m["total"] for m in report["months"])
    if not total:
        return ["No published incidents in this range."]
    severe = sum(m["by_severity"]["SEV1"] + m["by_severity"]["SEV2"] for m in report["months"])
    lines.append(
        f"{total} incident{'s' if total != 1 else ''} in this range, {severe} of them SEV1 or SEV2."
    )
    detect = next(d for d in report["durations"] if d.key == "detect")
    if detect.n:
        lines.append(
            f"Half were detected within {_say(detect.median)}; one in ten took longer "
            f"than {_say(detect.p90)}."
        )
    resolve = next(d for d in report["durations"] if d.key == "resolve")
    if resolve.n:
        lines.append(
            f"Half were resolved within {_say(resolve.median)}; one in ten took longer "
            f"than {_say(resolve.p90)}."
        )
    follow = report["follow_through"]
    if follow.total:
        text = f"{_share(follow.share_closed(30))} of action items were done within 30 days"
        if follow.open_overdue:
            text += f"; {follow.open_overdue} are overdue"
            if report["overdue_by_team"]:
                worst = report["overdue_by_team"][0]
                text += f" ({worst['n']} with {worst['team__name']})"
        lines.append(text + ".")
    if report["categories"]:
        top = report["categories"][0]
        lines.append(
            f"Most frequent contributing factor: {top['label'].lower()}, in "
            f"{top['n']} incident{'s' if top['n'] != 1 else ''}."
        )
    return lines


def build_report(user, data: dict, *, today: dt.date, now: dt.datetime | None = None) -> dict:
    now = now or timezone.now()
    since, until = date_range(data, today)
    facts = gather(base_incidents(user, data, today), today=today, now=now)
    months = monthly_counts(facts, since, until)
    durations = distributions(facts)
    follow = follow_through(facts)
    overdue = overdue_by_team(facts)
    categories = factor_categories(facts)
    services = incidents_by_service(facts)
    report = {
        "since": since,
        "until": until,
        "total": sum(m["total"] for m in months),
        "months": months,
        "month_chart": month_chart(months),
        "durations": durations,
        "box_chart": box_chart(durations),
        "follow_through": follow,
        "follow_chart": stack_chart(follow.outcomes),
        "closed_within": [
            (d, _share(follow.share_closed(d)), *follow.closed_within[d]) for d in WINDOWS
        ],
        "verified_share": _share(follow.share_verified),
        "overdue_by_team": overdue,
        "overdue_chart": bar_chart([(r["team__name"], r["n"]) for r in overdue], css="overdue"),
        "categories": categories,
        "category_chart": bar_chart([(r["label"], r["n"]) for r in categories[:10]]),
        "heat": categories_by_service(facts),
        "services": services,
        "service_chart": bar_chart([(r["service__name"], r["n"]) for r in services]),
        "all_teams": facts.team_list,
        "all_services": facts.service_list,
    }
    report["takeaways"] = takeaways(report)
    report["alt"] = alternatives(report)
    return report


def _list(pairs, unit: str = "") -> str:
    return "; ".join(f"{label}: {n}{unit}" for label, n in pairs) or "none"


def alternatives(report: dict) -> dict:
    """The text alternative of each chart: what a sighted reader takes from it."""
    months = report["months"]
    busiest = max(months, key=lambda m: m["total"], default=None)
    month_text = (
        f"{report['total']} incidents from {report['since']:%b %Y} to {report['until']:%b %Y}."
    )
    if busiest and busiest["total"]:
        month_text += f" Busiest month: {busiest['month']:%b %Y} with {busiest['total']}."
    box_parts = [
        f"{d.label}: median {_say(d.median)}, 90th percentile {_say(d.p90)} ({d.n} incidents)"
        for d in report["durations"]
        if d.n
    ]
    follow = report["follow_through"]
    return {
        "months": month_text,
        "durations": "; ".join(box_parts) or "No durations recorded.",
        "follow": _list([(label, n) for _css, label, n in follow.outcomes]),
        "overdue": _list([(r["team__name"], r["n"]) for r in report["overdue_by_team"]]),
        "categories": _list([(r["label"], r["n"]) for r in report["categories"][:10]]),
        "services": _list([(r["service__name"], r["n"]) for r in report["services"]]),
    }


# --- The home page's look back ------------------------------------------------------------


def _anniversary(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def on_this_day(user, today: dt.date, *, years: int = 5, days: int = 3, limit: int = 5):
    """Published incidents from this week in earlier years (the most recent first), each with
    `years_ago`."""
    window = Q()
    for back in range(1, years + 1):
        middle = _anniversary(today, back)
        window |= Q(
            started_at__gte=_aware(middle - dt.timedelta(days=days)),
            started_at__lt=_aware(middle + dt.timedelta(days=days + 1)),
        )
    incidents = list(
        published_for(user)
        .filter(window)
        .only("id", "slug", "title", "severity", "status", "started_at")
        .order_by("-started_at", "-id")[:limit]
    )
    for incident in incidents:
        started = timezone.localtime(incident.started_at).date()
        incident.years_ago = max(1, round((today - started).days / 365.25))
    return incidents


def weekly_reread(user, today: dt.date, *, older_than_days: int = 180):
    """One older published incident worth re-reading this week: the same all week for the same
    data, another one next week.

    The week picks a moment between the first and the last older published incident, and the
    first incident from then on that this person may read is the one. Every step reads a few
    entries of the (status, start) index: its two ends, then a walk from the moment that stops
    at the first match. (Picking by rank among the older incidents counted them all, ≈3 ms on
    PostgreSQL at 10,000 incidents; sorting them by a keyed shuffle, ≈15 ms.)"""
    year, week, _ = today.isocalendar()
    # Thousandths: the span's microseconds times this must stay within 64 bits on SQLite.
    thousandths = (year * 53 + week) * 104_729 % 1_000_003 * 1000 // 1_000_003
    cutoff = _aware(today - dt.timedelta(days=older_than_days))
    older = Incident.objects.published().filter(started_at__lt=cutoff).values("started_at")
    first = Subquery(older.order_by("started_at")[:1])
    last = Subquery(older.order_by("-started_at")[:1])
    span = ExpressionWrapper(last - first, output_field=DurationField())
    moment = ExpressionWrapper(
        first + ExpressionWrapper(span * thousandths / 1000, output_field=DurationField()),
        output_field=DateTimeField(),
    )
    candidates = (
        published_for(user)
        .filter(started_at__lt=cutoff)
        .only("id", "slug", "title", "severity", "status", "started_at", "summary_html")
        .order_by("started_at", "pk")
    )
    # Nothing readable from that moment on (a rare private stretch): the oldest readable one.
    return candidates.filter(started_at__gte=moment).first() or candidates.first()
