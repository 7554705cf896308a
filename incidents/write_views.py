"""Writing an incident up. Replaced by the guided flow (issue: guided write-up)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from .forms import IncidentForm
from .models import Incident


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
        Incident.objects.all(), slug=slug
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
