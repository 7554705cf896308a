"""Action items across incidents: the dashboard, its CSV export, bulk update, inline edit,
verification, and the reminder preferences.

The writes themselves live in `incidents.actions`; these views turn HTTP into those calls and
pick the page or the partial to answer with.
"""

from __future__ import annotations

import csv
import functools
import io
import zoneinfo
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import HttpResponseRedirect, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from . import actions
from .models import ActionItem, Profile, Team
from .viewutils import PAGE_SIZE, wants_partial

PER_PAGE = PAGE_SIZE
User = get_user_model()


# --- Forms ---------------------------------------------------------------------------------------


class OwnerField(forms.CharField):
    """A username; blank means nobody. Cleans to a User or None."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 150)
        super().__init__(**kwargs)

    def clean(self, value):
        username = super().clean(value).strip()
        if not username:
            return None
        user = User.objects.filter(username=username).first()
        if user is None:
            raise ValidationError(f"Nobody has the username “{username}”.")
        return user


class ClosingFields(forms.Form):
    change_url = forms.CharField(
        required=False,
        max_length=500,
        label="What changed (link)",
        help_text="The change, runbook or dashboard. Needed to mark an item done.",
        widget=forms.URLInput(attrs={"placeholder": "https://…"}),
    )
    verification = forms.CharField(
        required=False,
        max_length=5000,
        label="How it was verified",
        help_text="Needed for prevent and detect items: “the new alert fired in the game day on …”.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    reason = forms.CharField(
        required=False,
        max_length=5000,
        label="Why it won't be done",
        help_text="Needed to mark an item won't do.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    confirm_past_due = forms.BooleanField(required=False, label="Yes, the due date is in the past")

    def closing(self) -> actions.Closing:
        data = self.cleaned_data
        return actions.Closing(
            change_url=data.get("change_url", ""),
            verification=data.get("verification", ""),
            reason=data.get("reason", ""),
        )

    def add_domain_errors(self, error: ValidationError) -> None:
        for field, messages_ in error.message_dict.items():
            target = field if field in self.fields else None
            for message in messages_:
                self.add_error(target, message)


class ItemEditForm(ClosingFields):
    """Inline edit (status, owner, due date) and the item page's form (plus priority)."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    status = forms.ChoiceField(choices=ActionItem.Status.choices)
    owner = OwnerField(help_text="A username; leave empty for nobody.")
    due = forms.DateField(
        required=False, label="Due date", widget=forms.DateInput(attrs={"type": "date"})
    )
    priority = forms.ChoiceField(choices=ActionItem.Priority.choices)

    field_order = ["version", "status", "owner", "due", "priority"]

    def __init__(self, *args, item: ActionItem, **kwargs):
        initial = {
            "version": item.version,
            "status": item.status,
            "owner": item.owner.username if item.owner_id else "",
            "due": item.due,
            "priority": item.priority,
        }
        kwargs.setdefault("auto_id", f"item-{item.pk}-%s")
        super().__init__(*args, initial=initial, **kwargs)
        self.item = item
        if self.is_bound:
            # Fields the form did not send are left as they are (the row sends no priority).
            for name in ("status", "owner", "due", "priority"):
                if name not in self.data:
                    self.fields[name].required = False

    def changes(self) -> actions.Changes:
        changes = actions.Changes()
        for name in ("status", "owner", "due", "priority"):
            if name in self.data:
                setattr(changes, name, self.cleaned_data[name])
        return changes


class BulkForm(ClosingFields):
    """The bulk-update bar above the table. Empty means "leave as it is"."""

    items = forms.TypedMultipleChoiceField(coerce=int, required=False)
    page_all = forms.BooleanField(required=False, label="All on this page")
    page_items = forms.CharField(required=False, widget=forms.HiddenInput)
    status = forms.ChoiceField(
        required=False, choices=[("", "Status: leave"), *ActionItem.Status.choices]
    )
    owner = OwnerField(label="Owner", help_text="A username")
    unassign = forms.BooleanField(required=False, label="No owner")
    due = forms.DateField(
        required=False, label="Due date", widget=forms.DateInput(attrs={"type": "date"})
    )
    clear_due = forms.BooleanField(required=False, label="No due date")
    priority = forms.ChoiceField(
        required=False, choices=[("", "Priority: leave"), *ActionItem.Priority.choices]
    )
    return_query = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "bulk-%s")
        super().__init__(*args, **kwargs)
        # Any integer is acceptable here; the service says which ids it could not use.
        self.fields["items"].valid_value = lambda value: True

    def item_ids(self) -> list[int]:
        ids = list(self.cleaned_data["items"])
        if self.cleaned_data["page_all"]:
            for raw in self.cleaned_data["page_items"].split(","):
                if raw.strip().isdigit():
                    ids.append(int(raw))
        return list(dict.fromkeys(ids))

    def versions(self) -> dict[int, int]:
        versions = {}
        for key, value in self.data.items():
            if key.startswith("v") and key[1:].isdigit() and str(value).isdigit():
                versions[int(key[1:])] = int(value)
        return versions

    def changes(self) -> actions.Changes:
        data = self.cleaned_data
        changes = actions.Changes()
        if data["status"]:
            changes.status = data["status"]
        if data["unassign"]:
            changes.owner = None
        elif data["owner"] is not None:
            changes.owner = data["owner"]
        if data["clear_due"]:
            changes.due = None
        elif data["due"] is not None:
            changes.due = data["due"]
        if data["priority"]:
            changes.priority = data["priority"]
        return changes


class PreferencesForm(forms.Form):
    email_reminders = forms.BooleanField(
        required=False,
        label="E-mail me reminders",
        help_text="About my action items that are due within three days or overdue, and — for "
        "teams I lead — the weekly digest of escalated items.",
    )
    timezone = forms.ChoiceField(
        label="Time zone", help_text="Times are entered and shown in this zone."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = time_zone_choices()


@functools.cache
def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA zone, as (name, readable name). Read once per process: listing them walks
    the zone database on disk."""
    zones = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})
    return [(zone, zone.replace("_", " ")) for zone in zones]


# --- Helpers -------------------------------------------------------------------------------------


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def _visible_item(request, pk: int) -> ActionItem:
    """The item, or 404 when it does not exist or its write-up is not readable (private items
    are not acknowledged to outsiders)."""
    queryset = actions.with_permissions(
        actions.visible_items(request.user).select_related("incident", "team", "owner"),
        request.user,
    )
    return get_object_or_404(queryset, pk=pk)


@functools.cache
def blank_bulk_fields() -> str:
    """The bulk bar's fields as an unfilled form renders them: the same on every page, so
    rendered once per process (nine widgets through Django's form templates cost ≈2.5 ms a
    page). A form coming back with errors is rendered afresh."""
    return render_to_string("incidents/actions.html#bulk_fields", {"bulk_form": BulkForm()})


def board_context(
    request, params, *, with_counts: bool = False, with_rows: bool = True, bulk_form=None
) -> dict:
    """Everything the dashboard shows for these GET parameters (the filters alone when
    `with_rows` is false)."""
    today = timezone.localdate()
    teams = list(Team.objects.only("pk", "name", "slug"))
    filters = actions.Filters.from_params(params)
    filters.resolve(teams=teams, viewer=request.user)
    page = None
    # Paging and the facets leave out the same write-ups: the facets' three queries share
    # their ids, looked up once. A page alone is one query, and PostgreSQL tests the rule
    # inside it, as a subquery it runs once: a round trip and a list of hundreds of ids fewer
    # (/actions/ ≈1.4 ms less). SQLite pages faster from the list.
    in_query = not with_counts and connection.vendor == "postgresql"
    hidden = actions.IN_QUERY if in_query else actions.hidden_incident_ids(request.user)
    if with_rows:
        items = actions.filtered_items(request.user, filters, today, hidden=hidden)
        page = actions.page_of_ids(items, params.get("page"), PER_PAGE)
        page.object_list = actions.rows_for_page(list(page.object_list), request.user, today)
    query = urlencode(filters.params())
    context = {
        "filters": filters,
        "page": page,
        "today": today,
        "escalation_cutoff": actions.escalation_cutoff(today),
        "escalation_days": settings.DEBRIEF_ESCALATION_DAYS,
        "teams": teams,
        "query": query,
        "query_string": query,  # pagination.html keeps the filters on every page link
        "bulk_form": bulk_form or BulkForm(initial={"return_query": query}),
        "bulk_fields_html": blank_bulk_fields() if bulk_form is None else "",
        "page_ids": ",".join(str(row.pk) for row in page.object_list) if page else "",
        "selected": set(),
    }
    if bulk_form is not None and bulk_form.is_bound:
        context["selected"] = {
            int(value) for value in bulk_form.data.getlist("items") if value.isdigit()
        }
    counts = (
        actions.facet_counts(request.user, filters, today, hidden=hidden) if with_counts else None
    )
    context["counts"] = counts
    # (value, text, selected) triples for the `options` tag, as the incident list's filters.
    context["team_options"] = [("", "Any team", False)] + [
        (
            team.slug,
            _counted(team.name, counts["team"].get(team.pk, 0) if counts else None),
            filters.team == team.slug,
        )
        for team in teams
    ]
    context["selects"] = [
        {
            "name": name,
            "label": label,
            "options": [
                (
                    value,
                    _counted(text, counts[name].get(value) if counts else None),
                    getattr(filters, name) == value,
                )
                for value, text in actions.ENUMERATED[name]
            ],
        }
        for name, label in FILTER_SELECTS
    ]
    context["sort_options"] = [
        (value, text, filters.sort == value) for value, text in actions.ENUMERATED["sort"]
    ]
    if filters.incident_obj:
        context["query_without_incident"] = urlencode(filters.params(incident=""))
    return context


def _counted(text: str, count: int | None) -> str:
    """An option's text with its facet count, "Open (1,204)", once the counts are known."""
    return text if count is None else f"{text} ({intcomma(count)})"


FILTER_SELECTS = [
    ("status", "Status"),
    ("due", "Due"),
    ("priority", "Priority"),
    ("kind", "Kind"),
    ("severity", "Incident severity"),
    ("verified", "Verified"),
]


# --- The dashboard -------------------------------------------------------------------------------


@require_GET
@vary_on_headers("HX-Request")
def action_list(request):
    context = board_context(request, request.GET)
    if not wants_partial(request):
        return render(request, "incidents/actions.html", context)
    response = render(request, "incidents/actions.html#results", context)
    # The form sends every field, empty or not; the address bar gets only what is set.
    page = request.GET.get("page", "")
    query = urlencode(context["filters"].params(page=page if page.isdigit() else ""))
    response["HX-Push-Url"] = reverse("action_list") + (f"?{query}" if query else "")
    return response


@require_GET
@vary_on_headers("HX-Request")
def action_facets(request):
    """The filters with a count beside each value. Counting scans every visible item, so the
    dashboard loads this after the table; without JavaScript it is the whole page."""
    partial = wants_partial(request)
    context = board_context(request, request.GET, with_counts=True, with_rows=not partial)
    template = "incidents/actions.html" + ("#filters" if partial else "")
    return render(request, template, context)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A cell a spreadsheet will not run: text starting like a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


CSV_HEADER = [
    "id", "title", "incident", "incident_title", "severity", "kind", "team", "owner", "due",
    "priority", "status", "completed_at", "verified_effective_at", "tracker_url",
    "wont_do_reason", "url",
]  # fmt: skip


CSV_COLUMNS = [
    "pk", "title", "incident__slug", "incident__title", "incident__severity", "kind",
    "team__slug", "owner__username", "due", "priority", "status", "completed_at",
    "verified_effective_at", "tracker_url", "wont_do_reason",
]  # fmt: skip


@require_GET
def action_export(request):
    """The filtered items as CSV (UTF-8), streamed: plain tuples, not model instances, so
    35,000 rows take little time and memory."""
    today = timezone.localdate()
    filters = actions.Filters.from_params(request.GET)
    filters.resolve(teams=list(Team.objects.only("pk", "slug")), viewer=request.user)
    rows = actions.filtered_items(request.user, filters, today).values_list(*CSV_COLUMNS)
    # reverse() once: every item's link differs only in its id.
    marker = 987654321
    link = request.build_absolute_uri(reverse("action_detail", args=[marker]))
    before, after = link.split(str(marker))

    def chunks():
        # Rows are written 500 at a time: one yield per row costs more than the writing.
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_HEADER)
        for n, row in enumerate(rows.iterator(chunk_size=2000), start=1):
            writer.writerow(
                [
                    *(csv_cell(value.isoformat() if hasattr(value, "isoformat") else value)
                      for value in row),
                    f"{before}{row[0]}{after}",
                ]
            )  # fmt: skip
            if n % 500 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = StreamingHttpResponse(chunks(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="action-items-{today:%Y-%m-%d}.csv"'
    return response


@require_POST
@vary_on_headers("HX-Request")
def action_bulk_update(request):
    form = BulkForm(request.POST)
    # Back to the same filtered list; re-encoded from the parsed filters, never echoed as sent.
    params = QueryDict(request.POST.get("return_query", ""))
    return_query = urlencode(actions.Filters.from_params(params).params())
    status = 200
    if form.is_valid():
        try:
            count = actions.bulk_update(
                by=request.user,
                item_ids=form.item_ids(),
                changes=form.changes(),
                closing=form.closing(),
                versions=form.versions(),
                allow_past_due=form.cleaned_data["confirm_past_due"],
            )
        except actions.VersionConflict as conflict:
            form.add_error(None, str(conflict))
            status = 409
        except ValidationError as error:
            form.add_domain_errors(error)
        else:
            message = f"{count} action item{'s' if count != 1 else ''} updated."
            if not wants_partial(request):
                messages.success(request, message)
                url = reverse("action_list") + (f"?{return_query}" if return_query else "")
                return HttpResponseRedirect(url)
            context = board_context(request, params)
            context["notice"] = message
            response = render(request, "incidents/actions.html#results", context)
            response["HX-Trigger"] = "actions-changed"
            return response
    context = board_context(request, params, bulk_form=form)
    template = "incidents/actions.html" + ("#results" if wants_partial(request) else "")
    return render(request, template, context, status=status)


# --- One item ------------------------------------------------------------------------------------


def _detail_context(request, item, form=None, *, status_note=None) -> dict:
    return {
        "item": item,
        "form": form or ItemEditForm(item=item),
        "today": timezone.localdate(),
        "escalation_cutoff": actions.escalation_cutoff(timezone.localdate()),
        "reminders": item.reminders.select_related("recipient").order_by("-created_at")[:20],
        "next": _safe_next(request, reverse("action_list")),
    }


@require_GET
def action_detail(request, pk):
    item = _visible_item(request, pk)
    return render(request, "incidents/actions/detail.html", _detail_context(request, item))


@require_GET
@vary_on_headers("HX-Request")
def action_row(request, pk):
    """The table row of one item (what "Cancel" in an inline edit puts back)."""
    item = _visible_item(request, pk)
    if not wants_partial(request):
        return redirect("action_detail", pk=pk)
    return render(request, "incidents/actions.html#row", _row_context(item))


def _row_context(item, form=None) -> dict:
    today = timezone.localdate()
    if form is not None:
        # htmx moves focus to [autofocus] in swapped content: keyboard users land in the form.
        form.fields["status"].widget.attrs["autofocus"] = True
    item.days_late = item.days_overdue(today)
    item.escalated = bool(item.days_late) and item.due < actions.escalation_cutoff(today)
    return {
        "item": item,
        "form": form,
        "today": today,
        "escalation_cutoff": actions.escalation_cutoff(today),
        "escalation_days": settings.DEBRIEF_ESCALATION_DAYS,
        "selected": set(),
    }


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def action_edit(request, pk):
    """Inline edit in the row (htmx) or the form on the item page, with the version check:
    409 and the current values when someone saved in between."""
    item = _visible_item(request, pk)
    partial = wants_partial(request)
    if not item.can_change:
        raise PermissionDenied(
            "Only the owner, the owning team, the write-up's authors and reviewers, and staff "
            "can change this action item."
        )
    if request.method == "GET":
        if partial:
            return render(
                request,
                "incidents/actions.html#edit_row",
                _row_context(item, ItemEditForm(item=item)),
            )
        return render(request, "incidents/actions/detail.html", _detail_context(request, item))
    form = ItemEditForm(request.POST, item=item)
    status = 200
    if form.is_valid():
        try:
            changed = actions.edit_item(
                item=item,
                by=request.user,
                expected_version=form.cleaned_data["version"],
                changes=form.changes(),
                closing=form.closing(),
                allow_past_due=form.cleaned_data["confirm_past_due"],
            )
        except actions.VersionConflict as conflict:
            current = _visible_item(request, pk)
            # Fresh form on the current values and version: saving again is a deliberate choice.
            form = ItemEditForm(item=current)
            form.conflict = str(conflict)
            item = current
            status = 409
        except actions.ActionError as error:
            raise PermissionDenied(str(error)) from error
        except ValidationError as error:
            form.add_domain_errors(error)
        else:
            if partial:
                item = _visible_item(request, pk)
                response = render(request, "incidents/actions.html#row", _row_context(item))
                response["HX-Trigger"] = "actions-changed"
                return response
            messages.success(
                request, "Saved." if changed else "Nothing to change: the values were the same."
            )
            return redirect(_safe_next(request, reverse("action_detail", args=[pk])))
    if partial:
        return render(
            request, "incidents/actions.html#edit_row", _row_context(item, form), status=status
        )
    return render(
        request,
        "incidents/actions/detail.html",
        _detail_context(request, item, form),
        status=status,
    )


@require_POST
@vary_on_headers("HX-Request")
def action_verify(request, pk):
    """A reviewer (or staff) marks a done item verified effective, or withdraws that."""
    item = _visible_item(request, pk)
    verified = request.POST.get("verified", "1") != "0"
    try:
        actions.mark_verified(item=item, by=request.user, verified=verified)
    except actions.VersionConflict as conflict:
        messages.error(request, str(conflict))
    except actions.ActionError as error:
        if wants_partial(request):
            raise PermissionDenied(str(error)) from error
        messages.error(request, str(error))
    else:
        if not wants_partial(request):
            messages.success(
                request,
                "Marked verified effective." if verified else "Verification withdrawn.",
            )
    if wants_partial(request):
        item = _visible_item(request, pk)
        return render(request, "incidents/actions.html#row", _row_context(item))
    return redirect(_safe_next(request, reverse("action_detail", args=[pk])))


# --- Preferences ---------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def preferences(request):
    profile = Profile.for_user(request.user)
    form = PreferencesForm(
        request.POST or None,
        initial={"email_reminders": profile.email_reminders, "timezone": profile.timezone},
    )
    if request.method == "POST" and form.is_valid():
        profile.email_reminders = form.cleaned_data["email_reminders"]
        profile.timezone = form.cleaned_data["timezone"]
        profile.full_clean()
        profile.save(update_fields=["email_reminders", "timezone"])
        # The middleware reads the zone from the session: switch now, not at the next sign-in.
        request.session["timezone"] = profile.timezone
        messages.success(request, "Preferences saved.")
        return redirect("preferences")
    return render(request, "incidents/preferences.html", {"form": form, "profile": profile})
