from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .models import ActionItem, Incident, Team
from .viewutils import PAGE_SIZE, get_visible_incident, models_nulls_last


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
