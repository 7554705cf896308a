"""Browsing: the home page, the incident list with filters and search, similar incidents, and
the metrics page."""

import datetime as dt
import functools

from django import forms
from django.conf import settings
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from . import actions
from . import metrics as trends
from .models import (
    ActionItem,
    ContributingFactor,
    FactorCategory,
    Incident,
    Service,
    Tag,
    Team,
    attach_links,
    sql_texts,
)
from .search import MAX_QUERY_CHARS, RankedSearch, search_incidents
from .similar import find_similar, recurrence_notes, split_param
from .viewutils import (
    PAGE_SIZE,
    FromNearerEnd,
    query_string_without_page,
    wants_partial,
)


class BrowseFilterForm(forms.Form):
    """The browse filters. Everything optional; a bad value is reported next to the results
    and the other filters still apply — never a 500."""

    q = forms.CharField(required=False, label="Search", strip=True)
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Incident.Status.choices]
    )
    severity = forms.ChoiceField(
        required=False, choices=[("", "Any severity"), *Incident.severity.field.choices]
    )
    service = forms.SlugField(required=False)
    team = forms.SlugField(required=False)
    tag = forms.SlugField(required=False)
    category = forms.ChoiceField(
        required=False, label="Factor", choices=[("", "Any factor"), *FactorCategory.choices]
    )
    since = forms.DateField(
        required=False, label="From", validators=[trends.plausible_date],
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip
    until = forms.DateField(
        required=False, label="To", validators=[trends.plausible_date],
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip

    def selects(self, teams, services, tags) -> list[dict]:
        """The six select filters as the template writes them out, in order: name, label,
        whether the value was refused, and (value, text, selected) options. Django's widget
        templates cost ≈2.5 ms a list page, and a template loop over the ≈60 options ≈1 ms."""
        listed = {"service": services, "team": teams, "tag": tags}
        selects = []
        for name in ("status", "severity", "service", "team", "tag", "category"):
            if name in listed:
                choices = [
                    ("", f"Any {name}"),
                    *((thing.slug, thing.name) for thing in listed[name]),
                ]
            else:
                choices = self.fields[name].choices
            chosen = str(self[name].value() or "")
            options = [(value, text, str(value) == chosen) for value, text in choices]
            label = self.fields[name].label or name.capitalize()
            selects.append(
                {"name": name, "label": label, "error": name in self.errors, "options": options}
            )
        return selects

    def clean_q(self):
        # Long input is cut, not refused: a pasted paragraph still searches.
        return self.cleaned_data["q"][:MAX_QUERY_CHARS]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The end of the range must not be before its start.")
            data.pop("until", None)
        return data


M2M_FILTERS = {
    "service": (Incident.services.through, "service"),
    "team": (Incident.teams.through, "team"),
    "tag": (Incident.tags.through, "tag"),
}


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def filter_incidents(queryset, data: dict):
    """Apply the browse filters in `data` (cleaned form data; missing keys are ignored).

    EXISTS subqueries for the many-to-many filters, so no row is repeated and pagination
    stays cheap; dates become a range on `started_at` so its index serves them.
    """
    if data.get("status"):
        queryset = queryset.filter(status=data["status"])
    if data.get("severity"):
        queryset = queryset.filter(severity=data["severity"])
    for name, (through, field) in M2M_FILTERS.items():
        if data.get(name):
            queryset = queryset.filter(
                Exists(
                    through.objects.filter(
                        incident_id=OuterRef("pk"), **{f"{field}__slug": data[name]}
                    )
                )
            )
    if data.get("category"):
        queryset = queryset.filter(
            Exists(
                ContributingFactor.objects.filter(
                    incident_id=OuterRef("pk"), category=data["category"]
                )
            )
        )
    if data.get("since"):
        queryset = queryset.filter(started_at__gte=_start_of(data["since"]))
    if data.get("until"):
        queryset = queryset.filter(started_at__lt=_start_of(data["until"] + dt.timedelta(days=1)))
    return queryset


# The columns of home's incident rows.
HOME_ROW_FIELDS = ("id", "slug", "title", "severity", "status", "started_at")


@require_GET
def home(request):
    user = request.user
    today = timezone.localdate()
    my_drafts, reviews_waiting = _my_write_ups(user)
    recent = list(
        trends.published_for(user)
        .only(*HOME_ROW_FIELDS)
        .order_by("-published_at", "-started_at")[:10]
    )
    on_this_day = trends.on_this_day(user, today)
    reread = trends.weekly_reread(user, today)
    # One query for the services and teams of every row on the page.
    rows = [*my_drafts, *reviews_waiting, *recent, *on_this_day, *([reread] if reread else [])]
    attach_links(rows)
    my_teams = list(
        Team.objects.filter(Q(members=user) | Q(lead=user)).distinct().only("slug", "name")
    )
    context = {
        "my_drafts": my_drafts,
        "reviews_waiting": reviews_waiting,
        "my_teams": my_teams,
        "my_actions": _my_open_items(user, my_teams, today),
        "escalation_days": settings.DEBRIEF_ESCALATION_DAYS,
        "recent": recent,
        "on_this_day": on_this_day,
        "reread": reread,
        "today": today,
    }
    return render(request, "incidents/home.html", context)


HOME_ITEMS = 10
HOME_WRITE_UPS = 10


@functools.cache
def _my_write_ups_sql() -> str:
    """Home's two lists of write-ups as one query, written once per process: the ten latest
    unpublished ones I author and the ten latest waiting for my review. Two ORM queries cost
    ≈1 ms more to compile and send on PostgreSQL. The statuses are literals (`sql_texts`), so
    PostgreSQL keeps one plan for it and sees that the partial index of unpublished write-ups
    by last change answers the first half."""
    incident = Incident._meta.db_table
    columns = ", ".join(f'i."{name}"' for name in (*HOME_ROW_FIELDS, "updated_at"))
    halves = []
    for role, m2m, statuses in (
        ("author", Incident.authors, actions.UNPUBLISHED),
        ("reviewer", Incident.reviewers, [Incident.Status.IN_REVIEW]),
    ):
        link = m2m.through._meta.db_table
        halves.append(
            f'SELECT * FROM (SELECT \'{role}\' AS "role", {columns} FROM "{incident}" i '
            f'JOIN "{link}" l ON l."incident_id" = i."id" WHERE l."user_id" = %s '
            f'AND i."status" IN ({sql_texts(statuses)}) '
            f'ORDER BY i."updated_at" DESC LIMIT {HOME_WRITE_UPS}) "{role}s"'
        )
    return " UNION ALL ".join(halves)


def _my_write_ups(user) -> tuple[list[Incident], list[Incident]]:
    """(my latest unpublished write-ups, the latest waiting for my review), newest change
    first, each at most HOME_WRITE_UPS."""
    rows = sorted(
        Incident.objects.raw(_my_write_ups_sql(), [user.pk, user.pk]),
        key=lambda row: row.updated_at,
        reverse=True,
    )
    return (
        [row for row in rows if row.role == "author"],
        [row for row in rows if row.role == "reviewer"],
    )


def _my_open_items(user, my_teams, today) -> dict:
    """Open action items I own (on any team), then my teams' other ones; soonest due first
    within each, overdue and escalated ones marked. One row more than shown rather than a
    count. The ids come from `actions.my_open_item_ids`, the rows from one narrow query."""
    ids = actions.my_open_item_ids(user, [team.pk for team in my_teams], HOME_ITEMS + 1)
    rows = list(
        ActionItem.objects.filter(pk__in=ids)
        .select_related("incident", "team", "owner")
        .only(*actions.ROW_FIELDS)
    )
    rows.sort(key=lambda row: (row.owner_id != user.pk, row.due is None, row.due or today, row.pk))
    rows = rows[: HOME_ITEMS + 1]
    actions.mark_lateness(rows, today)
    for row in rows:
        row.is_mine = row.owner_id == user.pk
    return {"rows": rows[:HOME_ITEMS], "more": len(rows) > HOME_ITEMS}


@require_GET
@vary_on_headers("HX-Request")
def incident_list(request):
    form = BrowseFilterForm(request.GET)
    form.is_valid()  # invalid fields are reported; the valid ones still filter
    data = form.cleaned_data
    incidents = filter_incidents(actions.readable_incidents(request.user).for_list(), data)
    results = search_incidents(incidents, data.get("q", ""))
    if not isinstance(results, RankedSearch):
        results = FromNearerEnd(results.order_by("-started_at", "-id"))
    page = Paginator(results, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = attach_links(page.object_list)
    teams, services, tags = filter_choices()
    context = {
        "form": form,
        "page": page,
        "searching": isinstance(results, RankedSearch),
        "query_string": query_string_without_page(request),
        "selects": form.selects(teams, services, tags),
        "facet": _facet(data, teams, services, tags),
    }
    template = "incidents/list.html" + ("#results" if wants_partial(request) else "")
    return render(request, template, context)


def filter_choices() -> tuple[list[Team], list[Service], list[Tag]]:
    """Every team, service (with the team that owns it) and tag, by name, for the list's filter
    selects: one query instead of three, in SQL written once, because the ORM compiling the
    union cost more than running it (1.7 → 0.6 ms on PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(_choices_sql())
        rows = cursor.fetchall()
    chosen = {"team": [], "service": [], "tag": []}
    for kind, pk, name, slug, team_name, team_slug in sorted(rows, key=lambda row: row[2]):
        if kind == "service":
            team = Team(name=team_name, slug=team_slug) if team_slug else None
            chosen[kind].append(Service(pk=pk, name=name, slug=slug, team=team))
        else:
            chosen[kind].append((Team if kind == "team" else Tag)(pk=pk, name=name, slug=slug))
    return chosen["team"], chosen["service"], chosen["tag"]


@functools.cache
def _choices_sql() -> str:
    teams, services, tags = (model._meta.db_table for model in (Team, Service, Tag))
    owner = Service._meta.get_field("team").column
    return (
        f'SELECT \'team\', "id", "name", "slug", NULL, NULL FROM "{teams}"'
        f' UNION ALL SELECT \'service\', s."id", s."name", s."slug", t."name", t."slug"'
        f' FROM "{services}" s LEFT JOIN "{teams}" t ON t."id" = s."{owner}"'
        f' UNION ALL SELECT \'tag\', "id", "name", "slug", NULL, NULL FROM "{tags}"'
    )


def _facet(data, teams, services, tags) -> dict | None:
    """When the list shows one service, team or tag, what that is and where to learn more:
    the list then doubles as the service, team or tag page."""
    chosen = [(name, data.get(name)) for name in ("service", "team", "tag") if data.get(name)]
    if len(chosen) != 1:
        return None
    kind, slug = chosen[0]
    pool = {"service": services, "team": teams, "tag": tags}[kind]
    thing = next((item for item in pool if item.slug == slug), None)
    if thing is None:
        return None
    return {"kind": kind, "object": thing, "slug": slug}


@require_GET
@vary_on_headers("HX-Request")
def similar_incidents(request):
    """Past incidents like the one being read or written, each with why it matched, and
    recurrence notes. An htmx partial for the incident page and the guided write-up; the whole
    browse page for a plain link."""
    services = split_param(request, "services")
    categories = [c for c in split_param(request, "categories") if c in FactorCategory.values]
    text = request.GET.get("q", "")[:2000]
    exclude_slug = request.GET.get("exclude", "")[:100]
    current = None
    if exclude_slug:
        current = (
            Incident.objects.visible_to(request.user)
            .only("id", "slug", "title", "summary", "started_at")
            .filter(slug=exclude_slug)
            .first()
        )
        if current and not text:
            text = f"{current.title}\n{current.summary}"
    similar = find_similar(
        request.user, services=services, categories=categories, text=text,
        exclude_slug=exclude_slug, limit=5,
    )  # fmt: skip
    notes = recurrence_notes(
        request.user, services=services, categories=categories, exclude_slug=exclude_slug,
        reference=current.started_at if current and current.started_at else None,
    )  # fmt: skip
    context = {
        "similar": similar,
        "recurrence": notes,
        "asked": bool(services or categories or text.strip()),
        "current": current,
    }
    if wants_partial(request):
        return render(request, "incidents/detail/similar.html#similar-results", context)
    return render(request, "incidents/list.html", {**context, "similar_page": True})


@require_GET
@vary_on_headers("HX-Request")
def metrics(request):
    filters = trends.MetricsFilterForm(request.GET)
    filters.is_valid()
    report = trends.build_report(request.user, filters.cleaned_data, today=timezone.localdate())
    context = {
        "filters": filters,
        "report": report,
        "teams": report["all_teams"],
        "services": report["all_services"],
    }
    template = "incidents/metrics.html" + ("#report" if wants_partial(request) else "")
    return render(request, template, context)
