import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from .forms import ActionItemFilterForm, IncidentFilterForm, IncidentForm
from .models import ActionItem, Incident, Team

PAGE_SIZE = 25


def models_nulls_last(field: str):
    return F(field).asc(nulls_last=True)


def wants_partial(request) -> bool:
    """True for an htmx swap; false for boosted navigation and history restores, which need
    the whole page (otherwise the back button shows a bare fragment)."""
    htmx = request.htmx
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def query_string_without_page(request) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@require_GET
def home(request):
    user = request.user
    visible = Incident.objects.visible_to(user)
    today = timezone.localdate()
    context = {
        "my_drafts": Incident.objects.filter(authors=user)
        .exclude(status=Incident.Status.PUBLISHED)
        .order_by("-updated_at")[:10],
        "reviews_waiting": Incident.objects.filter(
            reviewers=user, status=Incident.Status.IN_REVIEW
        ).order_by("-updated_at")[:10],
        "team_actions": ActionItem.objects.open()
        .filter(team__members=user)
        .select_related("incident", "team", "owner")
        .order_by(models_nulls_last("due"), "id")[:15],
        "recent": visible.published().for_list().order_by("-published_at", "-started_at")[:10],
        "today": today,
    }
    return render(request, "incidents/home.html", context)


@require_GET
@vary_on_headers("HX-Request")
def incident_list(request):
    form = IncidentFilterForm(request.GET or None)
    incidents = Incident.objects.visible_to(request.user).for_list()
    if form.is_valid():
        data = form.cleaned_data
        if data["q"]:
            words = data["q"].split()[:10]
            for word in words:
                incidents = incidents.filter(Q(title__icontains=word) | Q(summary__icontains=word))
        if data["status"]:
            incidents = incidents.filter(status=data["status"])
        if data["severity"]:
            incidents = incidents.filter(severity=data["severity"])
        if data["service"]:
            incidents = incidents.filter(services__slug=data["service"])
        if data["team"]:
            incidents = incidents.filter(teams__slug=data["team"])
        if data["tag"]:
            incidents = incidents.filter(tags__slug=data["tag"])
        if data["since"]:
            incidents = incidents.filter(started_at__date__gte=data["since"])
        if data["until"]:
            incidents = incidents.filter(started_at__date__lte=data["until"])
    paginator = Paginator(incidents.order_by("-started_at", "-id"), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "query_string": query_string_without_page(request),
        "teams": Team.objects.only("name", "slug"),
        "statuses": Incident.Status.choices,
    }
    template = "incidents/list.html" + ("#results" if wants_partial(request) else "")
    return render(request, template, context)


def get_visible_incident(request, slug, queryset=None):
    queryset = queryset if queryset is not None else Incident.objects.all()
    incident = get_object_or_404(queryset, slug=slug)
    if not incident.can_view(request.user):
        # Private incidents are not acknowledged to outsiders.
        raise PermissionDenied("You may not read this write-up.")
    return incident


@require_GET
def incident_detail(request, slug):
    incident = get_visible_incident(request, slug, Incident.objects.with_detail())
    timeline = list(incident.timeline_entries.all())
    return render(
        request,
        "incidents/detail.html",
        {
            "incident": incident,
            "timeline": timeline,
            "factors": list(incident.factors.all()),
            "action_items": list(incident.action_items.all()),
            "can_edit": incident.can_edit(request.user),
            "today": timezone.localdate(),
        },
    )


@require_http_methods(["GET", "POST"])
def incident_create(request):
    form = IncidentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            incident = form.save(commit=False)
            incident.created_by = request.user
            incident.save()
            form.save_m2m()
            incident.authors.add(request.user)
        messages.success(
            request, "Write-up started. Add the timeline, factors and follow-ups next."
        )
        return redirect(incident)
    return render(request, "incidents/form.html", {"form": form, "incident": None})


@require_http_methods(["GET", "POST"])
def incident_edit(request, slug):
    incident = get_object_or_404(
        Incident.objects.prefetch_related("authors", "reviewers"), slug=slug
    )
    if not incident.can_edit(request.user):
        raise PermissionDenied("Only the write-up's authors and reviewers may edit it.")
    form = IncidentForm(request.POST or None, instance=incident)
    if request.method == "POST" and form.is_valid():
        expected = _posted_version(request)
        with transaction.atomic():
            changed = form.save(commit=False)
            if expected is None:
                changed.save()
                saved = True
            else:
                fields = [f for f in form.changed_data if f not in ("services", "teams", "tags")]
                saved = changed.save_if_version(expected, fields)
            if saved:
                form.save_m2m()
        if not saved:
            form.add_error(
                None,
                "Someone else saved this write-up while you were editing. Your text is kept "
                "below; open the write-up in another tab to see their changes, then merge.",
            )
            return render(
                request, "incidents/form.html", {"form": form, "incident": incident}, status=409
            )
        messages.success(request, "Saved.")
        return redirect(incident)
    return render(request, "incidents/form.html", {"form": form, "incident": incident})


def _posted_version(request) -> int | None:
    try:
        return int(request.POST["version"])
    except (KeyError, ValueError):
        return None


@require_GET
def team_detail(request, slug):
    team = get_object_or_404(Team.objects.select_related("lead"), slug=slug)
    incidents = (
        Incident.objects.visible_to(request.user)
        .for_list()
        .filter(teams=team)
        .order_by("-started_at", "-id")
    )
    page = Paginator(incidents, PAGE_SIZE).get_page(request.GET.get("page"))
    actions = (
        ActionItem.objects.open()
        .filter(team=team)
        .with_related()
        .filter(incident__in=Incident.objects.visible_to(request.user))
        .order_by(models_nulls_last("due"), "id")[:50]
    )
    return render(
        request,
        "incidents/team.html",
        {"team": team, "page": page, "actions": actions, "members": team.members.all(),
         "today": timezone.localdate()},
    )  # fmt: skip


@require_GET
@vary_on_headers("HX-Request")
def action_list(request):
    form = ActionItemFilterForm(request.GET or None)
    items = ActionItem.objects.with_related().filter(
        incident__in=Incident.objects.visible_to(request.user).values("pk")
    )
    today = timezone.localdate()
    if form.is_valid():
        data = form.cleaned_data
        if data["team"]:
            items = items.filter(team__slug=data["team"])
        if data["owner"]:
            items = items.filter(owner__username=data["owner"])
        if data["status"]:
            items = items.filter(status=data["status"])
        if data["priority"]:
            items = items.filter(priority=data["priority"])
        if data["overdue"]:
            items = items.overdue(today)
    paginator = Paginator(items.order_by(models_nulls_last("due"), "id"), 50)
    page = paginator.get_page(request.GET.get("page"))
    template = "incidents/actions.html" + ("#results" if wants_partial(request) else "")
    return render(
        request,
        template,
        {"form": form, "page": page, "today": today, "teams": Team.objects.only("name", "slug"),
         "query_string": query_string_without_page(request)},
    )  # fmt: skip


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


def metrics(request):
    from .metrics import monthly_counts

    since = timezone.now() - dt.timedelta(days=365)
    return render(
        request, "incidents/metrics.html", {"months": monthly_counts(request.user, since)}
    )
