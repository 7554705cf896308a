import datetime as dt

from django.apps import apps
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.db.models import Count, Exists, F, OuterRef, Q, Window
from django.db.models.functions import Coalesce
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import actions
from .models import (
    ActionItem,
    ContributingFactor,
    FactorCategory,
    Incident,
    Service,
    Tag,
    Team,
    attach_links,
)
from .viewutils import get_visible_incident


@require_GET
def incident_detail(request, slug):
    incident = get_visible_incident(request, slug, Incident.objects.select_related("created_by"))
    return render(
        request,
        "incidents/detail.html",
        {
            "incident": incident,
            **incident.detail_parts(),
            "can_edit": incident.can_edit(request.user),
            "today": timezone.localdate(),
        },
    )


@require_GET
def team_detail(request, slug):
    """A team's page: its open and overdue action items, what it closed lately and whether that
    worked, its latest incidents, the factors that keep coming back and the lessons drawn from
    them. Eleven queries (ten for staff), whatever the team's size."""
    team = get_object_or_404(
        Team.objects.select_related("lead").annotate(member_count=Count("members", distinct=True)),
        slug=slug,
    )
    today = timezone.localdate()
    incidents, items = _readable(request.user)
    incidents = incidents.filter(_linked_to(Incident.teams.through, team=team))
    items = items.filter(team=team)
    context = {
        "team": team,
        "filter_name": "team",
        "filter_slug": team.slug,
        "open_items": _open_items(items, today),
        "closed_items": _recently_closed(items),
        **_incidents_block(incidents),
        "recurring": _recurring_factors(incidents),
        "lessons": _lessons_about(request.user, incidents),
    }
    return render(request, "incidents/team.html", _page_context(context, today))


@require_GET
def service_detail(request, slug):
    """A service's page: its latest incidents, the open action items they left, the factors
    that recur on it and the lessons drawn from them."""
    service = get_object_or_404(Service.objects.select_related("team"), slug=slug)
    return _linked_page(request, "service", service, Incident.services.through)


@require_GET
def tag_detail(request, slug):
    """A tag's page, like a service's; its lessons also include those tagged with it."""
    tag = get_object_or_404(Tag, slug=slug)
    return _linked_page(request, "tag", tag, Incident.tags.through)


# --- What the team, service and tag pages share ------------------------------------------------

RECENT_DAYS = 90  # "recently closed" and "recurring lately"
RECURRENCE_DAYS = 365  # how far back recurring factors are counted
LATEST_INCIDENTS = 20  # the rest is one link away, on the filtered incident list
ITEM_LIMIT = 20
CLOSED_LIMIT = 10
LESSON_LIMIT = 5


def _linked_to(through, **link) -> Exists:
    """An incident linked to the team, service or tag in `link`. EXISTS rather than a join: the
    latest incidents are then found by walking the start-time index and stop after a page."""
    return Exists(through.objects.filter(incident_id=OuterRef("pk"), **link))


def _linked_page(request, kind: str, thing, through):
    """The page of a service or a tag (`kind`), whose incidents `through` links."""
    today = timezone.localdate()
    incidents, items = _readable(request.user)
    incidents = incidents.filter(_linked_to(through, **{kind: thing}))
    items = items.filter(
        incident_id__in=through.objects.filter(**{kind: thing}).values("incident_id")
    )
    context = {
        kind: thing,
        "filter_name": kind,
        "filter_slug": thing.slug,
        "open_items": _open_items(items, today),
        **_incidents_block(incidents),
        "recurring": _recurring_factors(incidents),
        "lessons": _lessons_about(request.user, incidents, tag=thing if kind == "tag" else None),
    }
    return render(request, f"incidents/{kind}.html", _page_context(context, today))


def _page_context(context: dict, today) -> dict:
    context.update(
        today=today,
        recent_days=RECENT_DAYS,
        escalation_days=settings.DEBRIEF_ESCALATION_DAYS,
    )
    return context


def _readable(user):
    """The incidents and the action items `user` may read — `Incident.objects.visible_to(user)`
    by the action dashboard's fast path: the few non-public incidents `visible_to` refuses are
    looked up once (one query) and left out by key, instead of checking `visible_to` on each of
    the thousands of rows a busy team has. Tests check both agree."""
    hidden = actions.hidden_incident_ids(user)
    items = actions.visible_items(user, hidden=hidden)
    if len(hidden) > actions.HIDDEN_LIST_LIMIT:
        return Incident.objects.exclude(actions.hidden_incidents_q(user)), items
    if hidden:
        return Incident.objects.exclude(pk__in=hidden), items
    return Incident.objects.all(), items


def _item_rows(items):
    return items.select_related("incident", "team", "owner").only(*actions.ROW_FIELDS)


def _open_items(items, today) -> dict:
    """The first open items, overdue ones first (soonest due first, undated last), each marked
    overdue or escalated, and how many there are in all — counted in the same query (a window
    aggregate costs less than a second query over the same rows)."""
    cutoff = actions.escalation_cutoff(today)
    rows = list(
        _item_rows(items.open())
        .annotate(
            n_open=Window(Count("pk")),
            n_overdue=Window(Count("pk", filter=Q(due__lt=today))),
            n_escalated=Window(Count("pk", filter=Q(due__lt=cutoff))),
        )
        .order_by(F("due").asc(nulls_last=True), "id")[:ITEM_LIMIT]
    )
    actions.mark_lateness(rows, today)
    first = rows[0] if rows else None
    return {
        "rows": rows,
        "total": first.n_open if first else 0,
        "overdue": first.n_overdue if first else 0,
        "escalated": first.n_escalated if first else 0,
    }


def _recently_closed(items) -> dict:
    """Items done or dropped in the last RECENT_DAYS days, newest first, and how many a reviewer
    verified effective. Won't-do items have no completion time; their last change stands in."""
    since = timezone.now() - dt.timedelta(days=RECENT_DAYS)
    rows = list(
        _item_rows(items.filter(status__in=(ActionItem.Status.DONE, ActionItem.Status.WONT_DO)))
        .alias(closed=Coalesce("completed_at", "updated_at"))
        .filter(closed__gte=since)
        .annotate(
            closed_at=F("closed"),
            n_closed=Window(Count("pk")),
            n_verified=Window(Count("pk", filter=Q(verified_effective_at__isnull=False))),
        )
        .order_by("-closed", "-id")[:CLOSED_LIMIT]
    )
    first = rows[0] if rows else None
    return {
        "rows": rows,
        "total": first.n_closed if first else 0,
        "verified": first.n_verified if first else 0,
    }


def _incidents_block(incidents) -> dict:
    """The latest incidents (with their service and team links), and whether there are more: one
    row more is read rather than counting them all."""
    rows = attach_links(incidents.for_list().order_by("-started_at", "-id")[: LATEST_INCIDENTS + 1])
    return {"incidents": rows[:LATEST_INCIDENTS], "more_incidents": len(rows) > LATEST_INCIDENTS}


def _recurring_factors(incidents, *, limit: int = 5) -> list[dict]:
    """The factor categories of these published incidents over the last RECURRENCE_DAYS days,
    most frequent lately first: how many incidents had each in the last RECENT_DAYS days and
    in the whole span."""
    labels = dict(FactorCategory.choices)
    now = timezone.now()
    recent = Q(incident__started_at__gte=now - dt.timedelta(days=RECENT_DAYS))
    span = incidents.published().filter(started_at__gte=now - dt.timedelta(days=RECURRENCE_DAYS))
    rows = (
        ContributingFactor.objects.filter(incident__in=span.order_by().values("pk"))
        .values("category")
        .annotate(
            recent=Count("incident_id", distinct=True, filter=recent),
            total=Count("incident_id", distinct=True),
        )
        .order_by("-recent", "-total", "category")[:limit]
    )
    return [{**row, "label": labels.get(row["category"], row["category"])} for row in rows]


def _lessons_about(user, incidents, *, tag=None) -> list:
    """Lessons this person may read that were drawn from these incidents (or carry `tag`).

    `lessons` depends on `incidents`, never the reverse, so the model is looked up in the app
    registry rather than imported; without the lessons app the block is simply empty."""
    if not apps.is_installed("lessons"):
        return []
    Lesson = apps.get_model("lessons", "Lesson")
    # Driven from the lessons side (there are few): does any linked incident qualify?
    about = Exists(
        Lesson.incidents.through.objects.filter(lesson_id=OuterRef("pk")).filter(
            Exists(incidents.filter(pk=OuterRef("incident_id")))
        )
    )
    if tag is not None:
        about |= Exists(Lesson.tags.through.objects.filter(lesson_id=OuterRef("pk"), tag=tag))
    return list(
        Lesson.objects.visible_to(user)
        .filter(about)
        .only("slug", "title", "kind", "is_published", "useful_count", "created_at")
        .order_by("-useful_count", "-created_at", "-id")[:LESSON_LIMIT]
    )


@login_not_required
@never_cache
@require_GET
def healthz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": "error"}, status=503)
    return JsonResponse({"status": "ok"})
