"""Browsing: the home page, the incident list with filters and search, and the metrics page."""

import datetime as dt

from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from .forms import IncidentFilterForm
from .models import ActionItem, Incident, Team
from .viewutils import PAGE_SIZE, models_nulls_last, query_string_without_page, wants_partial


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


def metrics(request):
    from .metrics import monthly_counts

    since = timezone.now() - dt.timedelta(days=365)
    return render(
        request, "incidents/metrics.html", {"months": monthly_counts(request.user, since)}
    )
