"""Action items across incidents: who may see and change them, the dashboard's filters, and the
writes — inline edit, bulk update, closing with evidence, verifying — each all-or-nothing.

Reading lives here too (not in a `selectors` module) because the filters, the facet counts and
the permission rules share one vocabulary; views only translate HTTP to these calls.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.core.validators import URLValidator
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Value,
    When,
    Window,
)
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import Truncator

from .models import ActionItem, Incident, Team, sql_ids, sql_texts

Status = ActionItem.Status
NEEDS_VERIFICATION = (ActionItem.Kind.PREVENT, ActionItem.Kind.DETECT)


class ActionError(Exception):
    """A write that is not allowed; the message is for people and nothing was changed."""


class VersionConflict(ActionError):
    """Someone saved these items after the form was loaded; nothing was changed."""

    def __init__(self, message: str, items: list[ActionItem]):
        super().__init__(message)
        self.items = items


# --- Who sees what -----------------------------------------------------------------------------


def public_incidents_q() -> Q:
    """Incidents every signed-in person may read (`Incident.objects.visible_to` admits them all;
    a test guards that)."""
    return Q(status=Incident.Status.PUBLISHED, visibility=Incident.Visibility.EVERYONE)


UNPUBLISHED = [s for s in Incident.Status.values if s != Incident.Status.PUBLISHED]
NOT_FOR_EVERYONE = [v for v in Incident.Visibility.values if v != Incident.Visibility.EVERYONE]


def _hidden_sql(user, *, published_only: bool = False) -> tuple[str, list]:
    """SQL for the ids of the non-public incidents `user` (signed in, not a superuser) may not
    read: `Incident.objects.readable_q` worked out by hand for the two kinds of non-public
    write-up, because building and compiling that Q's EXISTS tests through the ORM cost ≈5 ms
    of Python per page. `tests/incidents/test_hidden.py` checks the two agree for every kind of
    incident and reader.

    Unpublished write-ups are readable by their authors and reviewers (and by staff when
    visible to everyone); published ones for listed teams or people also by the people listed
    and, for teams, by the listed teams' members. Each branch reads one range of the (status,
    visibility, id) index (PostgreSQL at 10,000 incidents: 2.9 ms → 0.9 ms for the old OR).

    The "named on it" tests are NOT IN over the link rows (never NULL), not NOT EXISTS:
    PostgreSQL turns NOT EXISTS into anti-joins and plans their order anew for every query that
    embeds this, which cost more than running it (home, five such queries: planning 5.4 → 3.3
    ms); NOT IN stays one hashed subquery. SQLite answers both alike."""
    incident = Incident._meta.db_table
    authors = Incident.authors.through._meta.db_table
    reviewers = Incident.reviewers.through._meta.db_table
    listed_people = Incident.visible_users.through._meta.db_table
    listed_teams = Incident.visible_teams.through._meta.db_table
    members = Team.members.through._meta.db_table
    not_named = (
        f'i."id" NOT IN (SELECT a."incident_id" FROM "{authors}" a WHERE a."user_id" = %s) '
        f'AND i."id" NOT IN (SELECT r."incident_id" FROM "{reviewers}" r WHERE r."user_id" = %s)'
    )
    unpublished = sql_texts(UNPUBLISHED)
    staff_reads_open_drafts = (
        f'AND i."visibility" <> {sql_texts([Incident.Visibility.EVERYONE])} '
        if user.is_staff
        else ""
    )
    private_published = (
        f'SELECT i."id" FROM "{incident}" i WHERE i."status" = '
        f"{sql_texts([Incident.Status.PUBLISHED])} "
        f'AND i."visibility" IN ({sql_texts(NOT_FOR_EVERYONE)}) AND {not_named} '
        f'AND i."id" NOT IN (SELECT p."incident_id" FROM "{listed_people}" p '
        f'WHERE p."user_id" = %s) '
        f'AND NOT (i."visibility" = {sql_texts([Incident.Visibility.TEAMS])} '
        f'AND i."id" IN (SELECT t."incident_id" FROM "{listed_teams}" t '
        f'JOIN "{members}" m ON m."team_id" = t."team_id" WHERE m."user_id" = %s))'
    )
    private_params = [user.pk, user.pk, user.pk, user.pk]
    if published_only:
        return private_published, private_params
    sql = (
        f'SELECT i."id" FROM "{incident}" i WHERE i."status" IN ({unpublished}) '
        f"{staff_reads_open_drafts}AND {not_named} UNION ALL {private_published}"
    )
    return sql, [user.pk, user.pk, *private_params]


def my_open_item_ids(user, team_ids: list[int], limit: int) -> list[int]:
    """Ids of up to `limit` open items `user` owns, then up to `limit` open items of their
    teams (`team_ids`) that someone else or no one owns: each group soonest due first, no due
    date last, and only of write-ups `user` may read (home's "my items first").

    Written as SQL because each group is its own short walk: the (owner, status, due, …) and
    (team, status, due, …) indexes carry every column asked for, so neither reads the item
    rows, and the unreadable write-ups are worked out once for both (a CTE). As one ORM query
    over "mine or my team's", the database read the 1,000 candidate rows of a big team from
    the table (home at 10,000 incidents on PostgreSQL: ≈3 ms more)."""
    if not user.is_authenticated:
        return []
    table = ActionItem._meta.db_table
    statuses = sql_texts(ActionItem.OPEN_STATUSES)
    teams = sql_ids(team_ids) or "NULL"
    hidden_sql, params = ("", []) if user.is_superuser else _hidden_sql(user)
    readable = 'AND "incident_id" NOT IN (SELECT "id" FROM hidden)' if hidden_sql else ""
    soonest = f'ORDER BY CASE WHEN "due" IS NULL THEN 1 ELSE 0 END, "due", "id" LIMIT {int(limit)}'
    sql = (
        (f"WITH hidden AS ({hidden_sql}) " if hidden_sql else "")
        + f'SELECT "id" FROM (SELECT "id" FROM "{table}" WHERE "owner_id" = %s '
        f'AND "status" IN ({statuses}) {readable} {soonest}) mine '
        f'UNION ALL SELECT "id" FROM (SELECT "id" FROM "{table}" WHERE "team_id" IN ({teams}) '
        f'AND "status" IN ({statuses}) AND ("owner_id" IS NULL OR "owner_id" <> %s) '
        f"{readable} {soonest}) theirs"
    )
    params = [*params, user.pk, user.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [pk for (pk,) in cursor.fetchall()]


def visible_items(user, *, hidden: list[int] | None = None):
    """The action items of incidents `user` may read.

    Checking `visible_to` per item costs five EXISTS lookups per incident and made the 35,000
    item dashboard slow. Almost every incident is public, so we ask `visible_to` only about the
    few that are not (`hidden_incident_ids`, one query, run here unless the caller passes its
    result) and leave out their items by incident: both databases then count and page from the
    (status, due, id, incident) index alone.

    The result is meant to be the outer query (filter, count, page, aggregate it): its SQL
    names the action item table directly, so do not nest it as a subquery of another query
    on that table — use `hidden_incidents_q(user, field)` for that.
    """
    # The (status, due, id, incident) index answers this without reading the item rows.
    return _without_hidden(ActionItem.objects.all(), "incident_id", user, hidden)


def readable_incidents(user, *, hidden: list[int] | None = None):
    """`Incident.objects.visible_to(user)`, asked the cheap way for lists: the few non-public
    incidents this person may not read are left out by id, so counting and paging read an index
    alone instead of testing every row's visibility, and Python builds no EXISTS tests. Count
    and first page of /incidents/ at 10,000 incidents: 9.2 → 5.0 ms on PostgreSQL, 6.7 → 5.9 ms
    on SQLite. `tests/incidents/test_hidden.py` checks both give the same incidents."""
    return _without_hidden(Incident.objects.all(), "id", user, hidden)


HIDDEN_LIST_LIMIT = 5000


# Pass as `hidden` to test the rule inside the query itself, as an uncorrelated subquery.
IN_QUERY = "in query"


def _without_hidden(queryset, column: str, user, hidden: list[int] | str | None):
    """`queryset` without the rows whose `column` names an incident `user` may not read."""
    if not user.is_authenticated:
        return queryset.none()
    if user.is_superuser:
        return queryset
    if hidden is None:
        hidden = hidden_incident_ids(user)
    if not hidden:
        return queryset
    if hidden == IN_QUERY or len(hidden) > HIDDEN_LIST_LIMIT:
        # Asked for, or a person shut out of very many write-ups: a subquery beats a huge list.
        field = "pk" if column == "id" else column
        return queryset.exclude(hidden_incidents_q(user, field))
    return where_in_list(queryset, column, sql_ids(hidden), negate=True)


def where_in_list(queryset, column: str, listed: str, *, negate: bool = False):
    """`queryset` with `column` IN (or NOT IN) `listed`, ids from `sql_ids`."""
    table = queryset.model._meta.db_table
    operator = "NOT IN" if negate else "IN"
    return queryset.extra(where=[f'"{table}"."{column}" {operator} ({listed})'])


def hidden_incident_ids(user) -> list[int]:
    """Ids of the incidents `user` may not read: the non-public ones that fail `visible_to`'s
    condition, found in one query over the few non-public incidents."""
    if not user.is_authenticated:
        return list(Incident.objects.values_list("pk", flat=True))
    if user.is_superuser:
        return []
    with connection.cursor() as cursor:
        cursor.execute(*_hidden_sql(user))
        return [pk for (pk,) in cursor.fetchall()]


def hidden_incidents_q(user, field: str = "pk", *, published_only: bool = False) -> Q:
    """The condition that `field` names an incident `user` may not read (the rule of
    `hidden_incident_ids`), as an uncorrelated subquery each database evaluates once per query,
    not once per row. `published_only` is for a query already limited to published incidents:
    only those for listed teams or people can be shut out there, and they are few."""
    if not user.is_authenticated:
        return Q(**{f"{field}__isnull": False})
    if user.is_superuser:
        return Q(pk__in=[])
    return Q(**{f"{field}__in": RawSQL(*_hidden_sql(user, published_only=published_only))})


def changeable_q(user) -> Q:
    """Items `user` may change: their own, their team's (member or lead), those of write-ups
    they author or review; staff may change all."""
    if user.is_staff or user.is_superuser:
        return Q(pk__isnull=False)
    my_teams = Team.objects.filter(Q(members=user) | Q(lead=user)).values("pk")
    return (
        Q(owner_id=user.pk)
        | Q(team_id__in=my_teams)
        | Exists(
            Incident.authors.through.objects.filter(
                incident_id=OuterRef("incident_id"), user_id=user.pk
            )
        )
        | Exists(
            Incident.reviewers.through.objects.filter(
                incident_id=OuterRef("incident_id"), user_id=user.pk
            )
        )
    )


def verifiable_q(user) -> Q:
    """Items whose effect `user` may vouch for: reviewers of the write-up, and staff."""
    if user.is_staff or user.is_superuser:
        return Q(pk__isnull=False)
    return Exists(
        Incident.reviewers.through.objects.filter(
            incident_id=OuterRef("incident_id"), user_id=user.pk
        )
    )


def with_permissions(queryset, user):
    """Annotates `can_change` and `can_verify`, so a page of rows needs no query per row."""
    return queryset.annotate(
        can_change=ExpressionWrapper(changeable_q(user), output_field=BooleanField()),
        can_verify=ExpressionWrapper(verifiable_q(user), output_field=BooleanField()),
    )


def attach_permissions(rows, user) -> None:
    """Sets `can_change` and `can_verify` on a page of items, by the rules of `changeable_q`
    and `verifiable_q`, from one plain query of the reader's teams and of the page's write-ups
    they author or review. The same rules as annotations cost ≈3 ms more a page: four EXISTS
    subqueries for the ORM to build and the database to run."""
    if user.is_staff or user.is_superuser:
        for row in rows:
            row.can_change = row.can_verify = True
        return
    if not user.is_authenticated:
        for row in rows:
            row.can_change = row.can_verify = False
        return
    my_teams, authored, reviewed = set(), set(), set()
    incident_ids = sql_ids(row.incident_id for row in rows)
    if incident_ids:
        kinds = {0: my_teams, 1: authored, 2: reviewed}
        authors = Incident.authors.through._meta.db_table
        reviewers = Incident.reviewers.through._meta.db_table
        members = Team.members.through._meta.db_table
        teams = Team._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT 0, "team_id" FROM "{members}" WHERE "user_id" = %s '
                f'UNION ALL SELECT 0, "id" FROM "{teams}" WHERE "lead_id" = %s '
                f'UNION ALL SELECT 1, "incident_id" FROM "{authors}" '
                f'WHERE "user_id" = %s AND "incident_id" IN ({incident_ids}) '
                f'UNION ALL SELECT 2, "incident_id" FROM "{reviewers}" '
                f'WHERE "user_id" = %s AND "incident_id" IN ({incident_ids})',
                [user.pk] * 4,
            )
            for kind, pk in cursor.fetchall():
                kinds[kind].add(pk)
    for row in rows:
        row.can_verify = row.incident_id in reviewed
        row.can_change = (
            row.owner_id == user.pk
            or row.team_id in my_teams
            or row.incident_id in authored
            or row.can_verify
        )


def can_change(user, item: ActionItem) -> bool:
    if not user.is_authenticated:
        return False
    return ActionItem.objects.filter(changeable_q(user), pk=item.pk).exists()


def can_verify(user, item: ActionItem) -> bool:
    if not user.is_authenticated:
        return False
    return ActionItem.objects.filter(verifiable_q(user), pk=item.pk).exists()


def escalation_cutoff(today: dt.date) -> dt.date:
    """Open items due before this date are escalated (overdue by more than the setting)."""
    return today - dt.timedelta(days=settings.DEBRIEF_ESCALATION_DAYS)


def is_escalated(item: ActionItem, today: dt.date) -> bool:
    return item.is_open and item.due is not None and item.due < escalation_cutoff(today)


# --- The dashboard's filters --------------------------------------------------------------------

STATUS_CHOICES = [
    ("", "Open or in progress"),
    *Status.choices,
    ("all", "Any status"),
]
DUE_CHOICES = [
    ("", "Any due date"),
    ("overdue", "Overdue"),
    ("escalated", "Escalated"),
    ("week", "Due within 7 days"),
    ("none", "No due date"),
]
VERIFIED_CHOICES = [
    ("", "Verified or not"),
    ("yes", "Verified effective"),
    ("no", "Done, not yet verified"),
]
SORT_CHOICES = [
    ("due", "Due date, soonest first"),
    ("-due", "Due date, latest first"),
    ("priority", "Priority, highest first"),
    ("age", "Age, oldest first"),
    ("-age", "Age, newest first"),
]
ENUMERATED = {
    "status": STATUS_CHOICES,
    "priority": [("", "Any priority"), *ActionItem.Priority.choices],
    "kind": [("", "Any kind"), *ActionItem.Kind.choices],
    "due": DUE_CHOICES,
    "severity": [("", "Any severity"), *Incident.severity.field.choices],
    "verified": VERIFIED_CHOICES,
    "sort": SORT_CHOICES,
}
FACETS = ("status", "priority", "kind", "due", "severity", "verified")
NAMED = ("team", "owner", "incident")  # a slug or a username, resolved against the database
LABELS = {
    "status": "status",
    "priority": "priority",
    "kind": "kind",
    "due": "due date",
    "severity": "severity",
    "verified": "verification",
    "sort": "sort order",
    "team": "team",
    "owner": "owner",
    "incident": "incident",
}


@dataclasses.dataclass
class Filters:
    """What the dashboard shows, parsed from GET parameters. Unknown values are dropped and
    described in `notes`, never an error page."""

    status: str = ""
    priority: str = ""
    kind: str = ""
    due: str = ""
    severity: str = ""
    verified: str = ""
    sort: str = "due"
    team: str = ""
    owner: str = ""
    incident: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)
    # Resolved by `resolve()`: the primary keys behind the names.
    team_id: int | None = None
    owner_id: int | None = None
    incident_obj: Incident | None = None

    @classmethod
    def from_params(cls, params) -> Filters:
        filters = cls()
        for name, choices in ENUMERATED.items():
            raw = params.get(name, "").strip()
            if not raw:
                continue
            if raw in {value for value, _ in choices}:
                setattr(filters, name, raw)
            else:
                filters.notes.append(
                    f"Unknown {LABELS[name]} “{Truncator(raw).chars(40)}” was ignored."
                )
        # CONTRACT: `?overdue=1` is the short form of `?due=overdue`.
        if params.get("overdue", "").strip().lower() in {"1", "true", "yes", "on"}:
            filters.due = filters.due or "overdue"
        for name in NAMED:
            raw = params.get(name, "").strip()
            if raw:
                setattr(filters, name, raw[:150])
        return filters

    def resolve(self, *, teams, viewer) -> None:
        """Turns slugs and usernames into keys (a query each for owner and incident, only when
        given); an unknown or unreadable one is dropped with a note."""
        if self.team:
            match = next((t for t in teams if t.slug == self.team), None)
            if match is None:
                self._drop("team", f"There is no team “{self.team}”; that filter was ignored.")
            else:
                self.team_id = match.pk
        if self.owner:
            owner_id = (
                get_user_model()
                .objects.filter(username=self.owner)
                .values_list("pk", flat=True)
                .first()
            )
            if owner_id is None:
                self._drop("owner", f"Nobody has the username “{self.owner}”; that filter was ignored.")  # fmt: skip
            else:
                self.owner_id = owner_id
        if self.incident:
            incident = (
                Incident.objects.visible_to(viewer)
                .only("pk", "slug", "title")
                .filter(slug=self.incident)
                .first()
            )
            if incident is None:
                # The same words whether it does not exist or is private: nothing leaks.
                self._drop("incident", f"No incident “{self.incident}” that you can read; that filter was ignored.")  # fmt: skip
            else:
                self.incident_obj = incident

    def _drop(self, name: str, note: str) -> None:
        setattr(self, name, "")
        self.notes.append(note)

    def q(self, today: dt.date, *, skip: str = "") -> Q:
        """All active filters as one Q, leaving out `skip` (facets count each value of a filter
        with the others applied)."""
        q = Q()
        for facet in FACETS:
            if facet != skip:
                q &= facet_q(facet, getattr(self, facet), today)
        for name, key in (("team", self.team_id), ("owner", self.owner_id)):
            if key and skip != name:
                q &= Q(**{f"{name}_id": key})
        if self.incident_obj and skip != "incident":
            q &= Q(incident_id=self.incident_obj.pk)
        return q

    def params(self, **overrides) -> dict[str, str]:
        """The active filters as GET parameters (for links, exports and bulk-update returns)."""
        values = {
            name: getattr(self, name)
            for name in (*ENUMERATED, *NAMED)
            if getattr(self, name) and not (name == "sort" and getattr(self, name) == "due")
        }
        values.update(overrides)
        return {name: value for name, value in values.items() if value}

    @property
    def active(self) -> bool:
        return bool(set(self.params()) - {"sort"})


def due_q(bucket: str, today: dt.date) -> Q:
    open_ = Q(status__in=ActionItem.OPEN_STATUSES)
    if bucket == "overdue":
        return open_ & Q(due__lt=today)
    if bucket == "escalated":
        return open_ & Q(due__lt=escalation_cutoff(today))
    if bucket == "week":
        return open_ & Q(due__gte=today, due__lte=today + dt.timedelta(days=7))
    if bucket == "none":
        return Q(due__isnull=True)
    return Q()


def facet_q(facet: str, value: str, today: dt.date) -> Q:
    """The condition of one value of one filter ("" is "any", except for status)."""
    if facet == "status":
        if value == "":
            return Q(status__in=ActionItem.OPEN_STATUSES)
        return Q() if value == "all" else Q(status=value)
    if not value:
        return Q()
    if facet == "due":
        return due_q(value, today)
    if facet == "verified":
        return verified_q(value)
    if facet == "severity":
        return Q(incident__severity=value)
    return Q(**{facet: value})


def verified_q(value: str) -> Q:
    if value == "yes":
        return Q(verified_effective_at__isnull=False)
    if value == "no":
        return Q(status=Status.DONE, verified_effective_at__isnull=True)
    return Q()


PRIORITY_RANK = Case(
    When(priority=ActionItem.Priority.HIGH, then=Value(0)),
    When(priority=ActionItem.Priority.MEDIUM, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


def ordering(sort: str) -> list:
    due_first = F("due").asc(nulls_last=True)
    return {
        "-due": [F("due").desc(nulls_last=True), "-id"],
        "priority": [PRIORITY_RANK, due_first, "id"],
        "age": ["created_at", "id"],
        "-age": ["-created_at", "-id"],
    }.get(sort, [due_first, "id"])


def filtered_items(user, filters: Filters, today: dt.date, *, hidden=None):
    """The ordered queryset behind the dashboard and the CSV export."""
    return (
        visible_items(user, hidden=hidden)
        .filter(filters.q(today))
        .order_by(*ordering(filters.sort))
    )


ROW_FIELDS = (
    "id", "title", "kind", "due", "priority", "status", "completed_at", "created_at",
    "verified_effective_at", "version", "tracker_url", "incident_id", "team_id", "owner_id",
    "incident__slug", "incident__title", "incident__severity",
    "team__name", "team__slug",
    "owner__username", "owner__first_name", "owner__last_name",
)  # fmt: skip


def page_of_ids(items, number, per_page: int) -> Page:
    """Page `number` of the items' ids, as `Paginator.get_page` gives it.

    PostgreSQL reads the page and the total in one query, COUNT(*) OVER () beside each id: a
    round trip and a second scan fewer (/actions/ at 10,000 incidents: 4.0 → 2.9 ms). SQLite
    counts apart, because there the page's LIMIT stops early on the index and the window would
    read every row (1.8 → 2.8 ms)."""
    paginator = Paginator(items.values_list("pk", flat=True), per_page)
    try:
        wanted = int(number)
    except (TypeError, ValueError):
        wanted = 1  # what Paginator.get_page makes of no page or a word
    if connection.vendor == "postgresql" and wanted >= 1:
        start = (wanted - 1) * per_page
        rows = list(
            items.annotate(total=Window(Count("*"))).values_list("pk", "total")[
                start : start + per_page
            ]
        )
        if rows:
            paginator.count = rows[0][1]
            return paginator._get_page([pk for pk, _total in rows], wanted, paginator)
    # Below 1 or past the last page (both give the last page), or SQLite: as Paginator does.
    return paginator.get_page(number)


def rows_for_page(ids: list[int], user, today: dt.date) -> list[ActionItem]:
    """One narrow query for the rows of a page, in the page's order, with permissions and the
    lateness the table shows worked out here rather than in the template. The ids must have
    been chosen among the items `user` may read (`visible_items`): they are not checked again."""
    rows = ActionItem.objects.select_related("incident", "team", "owner").only(*ROW_FIELDS)
    by_id = {row.pk: row for row in rows.filter(pk__in=ids)}
    page = [by_id[pk] for pk in ids if pk in by_id]
    attach_permissions(page, user)
    mark_lateness(page, today)
    return page


def mark_lateness(rows, today: dt.date) -> None:
    """Sets `days_late` and `escalated` on each item, as the item lists show them."""
    cutoff = escalation_cutoff(today)
    for row in rows:
        row.days_late = row.days_overdue(today)
        row.escalated = bool(row.days_late) and row.due < cutoff


def facet_counts(user, filters: Filters, today: dt.date, *, hidden=None) -> dict:
    """Counts beside each filter value, each counted with the *other* filters applied.

    Three queries whatever the data size: one conditional aggregate for the enumerated filters
    and one GROUP BY each for teams and owners.
    """
    base = visible_items(user, hidden=hidden)
    aggregates, keys = {}, []
    for facet in FACETS:
        others = filters.q(today, skip=facet)
        for value, _label in ENUMERATED[facet]:
            keys.append((facet, value))
            aggregates[f"n{len(keys)}"] = Count("pk", filter=others & facet_q(facet, value, today))
    totals = base.aggregate(**aggregates)
    counts = {facet: {} for facet in FACETS}
    for index, (facet, value) in enumerate(keys, start=1):
        counts[facet][value] = totals[f"n{index}"]
    counts["team"] = dict(
        base.filter(filters.q(today, skip="team"))
        .values_list("team_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    owners = (
        base.filter(filters.q(today, skip="owner"), owner__isnull=False)
        .values_list("owner__username", "owner__first_name", "owner__last_name")
        .annotate(n=Count("pk"))
        .order_by("-n", "owner__username")[:200]
    )
    counts["owner"] = [
        {"username": username, "name": f"{first} {last}".strip() or username, "count": n}
        for username, first, last, n in owners
    ]
    return counts


# --- Writes -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Closing:
    """What someone says when closing an item: the link to what changed and how it was verified
    (done), or why not (won't do)."""

    change_url: str = ""
    verification: str = ""
    reason: str = ""


UNSET = object()


@dataclasses.dataclass
class Changes:
    """Requested new values; UNSET leaves a field as it is (owner may be set to None)."""

    status: object = UNSET
    owner: object = UNSET
    due: object = UNSET
    priority: object = UNSET

    def fields(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not UNSET]


def compose_evidence(closing: Closing) -> str:
    """The Markdown stored in `ActionItem.evidence` for a closing."""
    parts = [f"**What changed:** <{closing.change_url.strip()}>"]
    if closing.verification.strip():
        parts.append(f"**How it was verified:** {closing.verification.strip()}")
    return "\n\n".join(parts)


def _label(item: ActionItem) -> str:
    return f"“{Truncator(item.title).chars(60)}”"


def _apply(item: ActionItem, changes: Changes, closing: Closing | None, *, today, allow_past_due):
    """Sets the requested values on `item` in memory and returns the names of the columns that
    change; raises ValidationError (field → messages) and leaves the database alone."""
    errors: dict[str, list[str]] = {}
    written: set[str] = set()
    closing = closing or Closing()
    was_open = item.is_open

    if changes.priority is not UNSET and changes.priority != item.priority:
        if changes.priority not in ActionItem.Priority.values:
            errors.setdefault("priority", []).append("Choose low, medium or high.")
        item.priority = changes.priority
        written.add("priority")
    if changes.owner is not UNSET and getattr(changes.owner, "pk", None) != item.owner_id:
        if changes.owner is not None and not changes.owner.is_active:
            errors.setdefault("owner", []).append(
                f"{changes.owner.username} can no longer sign in; choose someone who can."
            )
        item.owner = changes.owner
        written.add("owner")
    if changes.due is not UNSET and changes.due != item.due:
        if changes.due is not None and changes.due < today and not allow_past_due:
            errors.setdefault("due", []).append(
                f"{date_format(changes.due, 'j M Y')} is in the past. Tick “Yes, the due date "
                "is in the past” to save it anyway."
            )
        item.due = changes.due
        written.add("due")
    if changes.status is not UNSET and changes.status != item.status:
        new = changes.status
        if new not in Status.values:
            errors.setdefault("status", []).append("Choose open, in progress, done or won't do.")
        elif new == Status.DONE:
            url = closing.change_url.strip()
            if not url:
                errors.setdefault("change_url", []).append(
                    f"Closing {_label(item)} needs a link to what changed: the change, the "
                    "runbook or the dashboard."
                )
            else:
                try:
                    URLValidator(schemes=["http", "https"])(url)
                except ValidationError:
                    errors.setdefault("change_url", []).append(
                        "Give the link as a full http(s) address."
                    )
            if item.kind in NEEDS_VERIFICATION and not closing.verification.strip():
                errors.setdefault("verification", []).append(
                    f"{_label(item)} is a {item.get_kind_display().lower()} item: say how you "
                    "verified that it works (“the new alert fired in the game day on …”)."
                )
            item.evidence = compose_evidence(closing) if url else item.evidence
            item.completed_at = timezone.now()
            item.wont_do_reason = ""
            written |= {"evidence", "completed_at", "wont_do_reason"}
        elif new == Status.WONT_DO:
            if not closing.reason.strip():
                errors.setdefault("reason", []).append(
                    f"Say why {_label(item)} won't be done, so readers know the risk is accepted."
                )
            item.wont_do_reason = closing.reason.strip()
            item.completed_at = None
            written |= {"wont_do_reason", "completed_at"}
        elif not was_open:
            # Reopened: the old closing no longer stands.
            item.completed_at = None
            item.verified_effective_at = None
            item.verified_by = None
            written |= {"completed_at", "verified_effective_at", "verified_by"}
        if new != Status.DONE and item.verified_effective_at is not None:
            item.verified_effective_at = None
            item.verified_by = None
            written |= {"verified_effective_at", "verified_by"}
        item.status = new
        written.add("status")
    if errors:
        raise ValidationError(errors)
    return sorted(written)


def _save_if_version(item: ActionItem, expected_version: int, fields: list[str]) -> bool:
    """Writes `fields` only if nobody saved since `expected_version`, and bumps the version.
    A conditional UPDATE, so two concurrent saves can never both win."""
    # Validate what changes (and the model's clean()); untouched foreign keys would each cost
    # an existence query per item in a bulk update.
    unchanged = [f.name for f in ActionItem._meta.fields if f.name not in fields]
    item.full_clean(exclude=unchanged, validate_unique=False)
    item.render_markdown_fields()
    values = {}
    for name in fields:
        field = ActionItem._meta.get_field(name)
        values[field.attname] = getattr(item, field.attname)
        if name in ActionItem.markdown_fields:
            values[f"{name}_html"] = getattr(item, f"{name}_html")
    values["updated_at"] = timezone.now()
    updated = ActionItem.objects.filter(pk=item.pk, version=expected_version).update(
        version=F("version") + 1, **values
    )
    if updated:
        item.version = expected_version + 1
        item.updated_at = values["updated_at"]
    return bool(updated)


def conflict_message(current: ActionItem) -> str:
    owner = current.owner.username if current.owner_id else "nobody"
    due = date_format(current.due, "j M Y") if current.due else "no due date"
    return (
        f"Someone else changed {_label(current)} after you opened it; your change was not saved. "
        f"It is now {current.get_status_display().lower()}, owned by {owner}, {due}. "
        "The form shows their values: make your change again if it still applies."
    )


@transaction.atomic
def edit_item(
    *,
    item: ActionItem,
    by,
    expected_version: int,
    changes: Changes,
    closing: Closing | None = None,
    allow_past_due: bool = False,
    today: dt.date | None = None,
) -> list[str]:
    """Inline edit of one item (status, owner, due date, priority) with the version check.

    Returns the changed field names. Raises ActionError when `by` may not change the item,
    VersionConflict when someone saved since `expected_version`, ValidationError otherwise.
    """
    today = today or timezone.localdate()
    if not can_change(by, item):
        raise ActionError("Only the owner, the owning team, the write-up's authors and reviewers, and staff can change this action item.")  # fmt: skip
    if item.version != expected_version:
        current = ActionItem.objects.select_related("owner").get(pk=item.pk)
        raise VersionConflict(conflict_message(current), [current])
    fields = _apply(item, changes, closing, today=today, allow_past_due=allow_past_due)
    saved = (
        _save_if_version(item, expected_version, fields)
        if fields
        # Nothing differs from what this person saw; still refuse if that is no longer current.
        else ActionItem.objects.filter(pk=item.pk, version=expected_version).exists()
    )
    if not saved:
        current = ActionItem.objects.select_related("owner").get(pk=item.pk)
        raise VersionConflict(conflict_message(current), [current])
    return fields


@transaction.atomic
def bulk_update(
    *,
    by,
    item_ids: list[int],
    changes: Changes,
    closing: Closing | None = None,
    versions: dict[int, int] | None = None,
    allow_past_due: bool = False,
    today: dt.date | None = None,
) -> int:
    """Sets the same values on many items in one transaction: every item changes, or none.

    Each problem is reported (which item, which value) in one ValidationError; a version that
    no longer matches raises VersionConflict. Returns how many items were updated.
    """
    today = today or timezone.localdate()
    versions = versions or {}
    wanted = list(dict.fromkeys(item_ids))
    if not wanted:
        raise ValidationError({"items": ["Select at least one action item."]})
    if not changes.fields():
        raise ValidationError({"__all__": ["Choose what to change: status, owner, due date or priority."]})  # fmt: skip
    items = list(
        with_permissions(
            visible_items(by)
            .filter(pk__in=wanted)
            .select_related("owner", "team", "incident")
            .select_for_update(of=("self",)),
            by,
        ).order_by("pk")
    )
    errors: dict[str, list[str]] = {}
    missing = len(wanted) - len(items)
    if missing:
        errors["items"] = [
            f"{missing} of the selected items no longer exist or are not visible to you."
        ]
    refused = [item for item in items if not item.can_change]
    if refused:
        errors.setdefault("items", []).append(
            "You may not change "
            + ", ".join(_label(item) for item in refused[:5])
            + (f" and {len(refused) - 5} more" if len(refused) > 5 else "")
            + ": only owners, their teams, the write-up's authors and reviewers, and staff can."
        )
    stale = [item for item in items if item.pk in versions and versions[item.pk] != item.version]
    if stale and not errors:
        names = ", ".join(_label(item) for item in stale[:5])
        raise VersionConflict(
            f"Someone else changed {names}"
            + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
            + " after you loaded the page; nothing was updated. Reload to see their changes.",
            stale,
        )
    planned = []
    for item in items:
        expected = item.version
        try:
            fields = _apply(item, changes, closing, today=today, allow_past_due=allow_past_due)
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                for message in messages:
                    if message not in errors.get(field, []):
                        errors.setdefault(field, []).append(message)
            continue
        planned.append((item, expected, fields))
    if errors:
        raise ValidationError(errors)
    for item, expected, fields in planned:
        if fields and not _save_if_version(item, expected, fields):
            # Only possible without row locks (SQLite serialises writers instead).
            raise VersionConflict(conflict_message(item), [item])
    return len(items)


@transaction.atomic
def mark_verified(*, item: ActionItem, by, verified: bool = True) -> None:
    """A reviewer (or staff) vouches that a done item had the intended effect — or withdraws it."""
    if not can_verify(by, item):
        raise ActionError("Only a reviewer of the write-up, or staff, can mark an action item verified effective.")  # fmt: skip
    if verified and item.status != Status.DONE:
        raise ActionError("Only a done action item can be verified effective.")
    item.verified_effective_at = timezone.now() if verified else None
    item.verified_by = by if verified else None
    if not _save_if_version(item, item.version, ["verified_effective_at", "verified_by"]):
        current = ActionItem.objects.select_related("owner").get(pk=item.pk)
        raise VersionConflict(conflict_message(current), [current])
