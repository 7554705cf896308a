"""Action items across incidents."""

from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from .forms import ActionItemFilterForm
from .models import ActionItem, Incident, Team
from .viewutils import models_nulls_last, query_string_without_page, wants_partial


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
