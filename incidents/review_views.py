"""The review of a write-up: its review page (status and moves, comments, meeting, people,
readers), the edit history, deleting a write-up, Undo and the Trash.

Every view checks on the server who may do what (`lifecycle.may`); someone who may not read a
write-up gets 404 on every URL here, so private write-ups are not even acknowledged. Each
htmx view answers with the named partial for an htmx request and with the whole page (or a
redirect after a POST) otherwise.
"""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRefresh, trigger_client_event

from . import review, undo
from .forms import DateTimeLocalInput
from .lifecycle import (
    PAST,
    REFUSALS,
    TransitionError,
    available_moves,
    is_staff_member,
    may,
    publish,
    reopen,
    request_changes,
    submit_for_review,
)
from .models import Incident, Team
from .review_models import ReviewComment, ReviewMeeting
from .viewutils import PAGE_SIZE, query_string_without_page, wants_partial

PAGE = "incidents/review/review.html"


# --- Forms ---------------------------------------------------------------------------------


class CommentForm(forms.Form):
    anchor = forms.ChoiceField(label="About", required=False)
    body = forms.CharField(
        label="Comment",
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Markdown. About the write-up and the system, never about a person.",
    )

    def __init__(self, *args, incident: Incident, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["anchor"].choices = review.anchor_choices(incident)


class ReplyForm(forms.Form):
    body = forms.CharField(
        label="Reply", max_length=10_000, widget=forms.Textarea(attrs={"rows": 2})
    )


class MoveForm(forms.Form):
    note = forms.CharField(
        required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2})
    )
    reason = forms.CharField(
        required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2})
    )
    open_comments_reason = forms.CharField(
        required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2})
    )


class PersonForm(forms.Form):
    role = forms.ChoiceField(
        choices=[("reviewer", "Reviewer"), ("author", "Author")], initial="reviewer"
    )
    username = forms.CharField(max_length=150, label="Username")


class ReadersForm(forms.Form):
    visibility = forms.ChoiceField(
        choices=Incident.Visibility.choices, widget=forms.RadioSelect, label="Who may read it"
    )
    visible_teams = forms.ModelMultipleChoiceField(
        queryset=Team.objects.all(), required=False, widget=forms.CheckboxSelectMultiple,
        label="Teams",
    )  # fmt: skip
    visible_users = forms.CharField(
        required=False, max_length=2000, label="People",
        help_text="Usernames, separated by commas or spaces.",
    )  # fmt: skip

    def clean_visible_users(self):
        users, missing = review.find_users(self.cleaned_data["visible_users"])
        if missing:
            raise ValidationError(f"No active account is called {', '.join(missing)}.")
        return users


class MeetingForm(forms.Form):
    starts_at = forms.DateTimeField(label="Starts", widget=DateTimeLocalInput())
    duration = forms.IntegerField(label="Length (minutes)", min_value=15, max_value=480, initial=60)
    location = forms.CharField(
        required=False, max_length=300, label="Where", help_text="A room, or the video-call link."
    )
    facilitator = forms.ModelChoiceField(queryset=None, label="Facilitator")
    attendees = forms.ModelMultipleChoiceField(
        queryset=None, required=False, widget=forms.CheckboxSelectMultiple, label="Attendees"
    )
    more_attendees = forms.CharField(
        required=False, max_length=2000, label="More attendees",
        help_text="Usernames of others who may read the write-up.",
    )  # fmt: skip
    agenda = forms.CharField(
        required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 3}),
        label="Agenda", help_text="Markdown.",
    )  # fmt: skip

    def __init__(self, *args, candidates, **kwargs):
        super().__init__(*args, **kwargs)
        from django.contrib.auth import get_user_model

        pks = [u.pk for u in candidates]
        queryset = get_user_model().objects.filter(pk__in=pks).order_by("first_name", "username")
        self.fields["facilitator"].queryset = queryset
        self.fields["attendees"].queryset = queryset
        label = lambda u: review.display_name(u)  # noqa: E731
        self.fields["facilitator"].label_from_instance = label
        self.fields["attendees"].label_from_instance = label

    def clean_more_attendees(self):
        users, missing = review.find_users(self.cleaned_data["more_attendees"])
        if missing:
            raise ValidationError(f"No active account is called {', '.join(missing)}.")
        return users


class DeleteIncidentForm(forms.Form):
    confirm_slug = forms.CharField(max_length=100, label="Type the write-up's slug to confirm")


# --- Helpers -------------------------------------------------------------------------------


def visible_incident(request, slug) -> Incident:
    """The incident, or 404 — also when it exists but this person may not read it."""
    incident = Incident.objects.filter(slug=slug).first()
    if incident is None or not incident.can_view(request.user):
        raise Http404("No such write-up.")
    return incident


def _require(request, action: str, incident: Incident) -> None:
    if not may(request.user, action, incident):
        raise PermissionDenied(REFUSALS[action])


def _next_url(request, default: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def _add_errors(form: forms.Form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


def _show(request) -> str:
    value = request.POST.get("show") or request.GET.get("show") or "open"
    return value if value in ("open", "all") else "open"


def comments_context(
    request, incident: Incident, *, form=None, reply_form=None, reply_to=None, with_form=True
):
    show = _show(request)
    threads = review.comment_threads(incident, show="all")
    open_count = sum(1 for t in threads if not t.is_resolved)
    resolved_count = len(threads) - open_count
    if show == "open":
        threads = [t for t in threads if not t.is_resolved]
    can_comment = may(request.user, "comment", incident)
    return {
        "threads": threads,
        "open_count": open_count,
        "resolved_count": resolved_count,
        "show": show,
        "can_comment": can_comment,
        "can_resolve": may(request.user, "resolve_comment", incident),
        "is_staff_member": is_staff_member(request.user),
        "comment_form": form
        or (CommentForm(incident=incident) if can_comment and with_form else None),
        "reply_form": reply_form,
        "reply_to": reply_to,
    }


def meeting_context(request, incident: Incident, *, form=None, editing=False):
    meeting = (
        ReviewMeeting.objects.filter(incident=incident)
        .select_related("facilitator")
        .prefetch_related("attendees")
        .first()
    )
    can_schedule = may(request.user, "schedule_meeting", incident)
    editing = can_schedule and (editing or form is not None)
    if editing and form is None:
        initial = {"duration": 60, "facilitator": request.user.pk}
        if meeting is not None:
            initial = {
                "starts_at": meeting.starts_at, "duration": meeting.duration,
                "location": meeting.location, "facilitator": meeting.facilitator_id,
                "attendees": [u.pk for u in meeting.attendees.all()], "agenda": meeting.agenda,
            }  # fmt: skip
        form = MeetingForm(initial=initial, candidates=review.meeting_candidates(incident))
    return {"meeting": meeting, "can_schedule": can_schedule, "meeting_form": form,
            "editing_meeting": editing}  # fmt: skip


def status_context(request, incident: Incident, *, move_error="", move_form=None, failed_move=""):
    open_count = ReviewComment.objects.filter(incident=incident).unresolved().count()
    return {
        "moves": available_moves(request.user, incident),
        "move_error": move_error,
        "move_form": move_form or MoveForm(),
        "failed_move": failed_move,
        "open_comment_count": open_count,
        "can_delete": may(request.user, "delete_incident", incident),
    }


def people_context(request, incident: Incident, *, form=None):
    can_manage = may(request.user, "manage_people", incident)
    return {
        "authors": incident.people["authors"],
        "reviewers": incident.people["reviewers"],
        "can_manage_people": can_manage,
        "person_form": form or PersonForm(),
        "suggestions": review.reviewer_candidates(incident) if can_manage else [],
    }


def readers_context(request, incident: Incident, *, form=None):
    can_set = may(request.user, "set_visibility", incident)
    if can_set and form is None:
        form = ReadersForm(
            initial={
                "visibility": incident.visibility,
                "visible_teams": list(incident.visible_teams.all()),
                "visible_users": " ".join(u.username for u in incident.visible_users.all()),
            }
        )
    return {
        "can_set_visibility": can_set,
        "readers_form": form,
        "reader_teams": list(incident.visible_teams.all()),
        "reader_people": list(incident.visible_users.all()),
    }


def page_context(request, incident: Incident, **parts) -> dict:
    """Everything the review page shows; `parts` overrides one panel's context (a bound form
    with errors, the meeting in edit mode…)."""
    context = {"incident": incident}
    context |= status_context(request, incident)
    context |= comments_context(request, incident)
    context |= meeting_context(request, incident, editing=request.GET.get("edit") == "meeting")
    context |= people_context(request, incident)
    context |= readers_context(request, incident)
    context |= parts
    return context


def _render(request, incident, partial: str, part_context: dict, *, status=200):
    """The named partial for htmx, else the whole review page with this panel's context."""
    if wants_partial(request):
        context = {"incident": incident} | part_context
        return render(request, f"{PAGE}#{partial}", context, status=status)
    return render(request, PAGE, page_context(request, incident, **part_context), status=status)


# --- The review page and the moves -------------------------------------------------------


@require_GET
@vary_on_headers("HX-Request")
def review_page(request, slug):
    incident = visible_incident(request, slug)
    if request.GET.get("part") == "status" and wants_partial(request):
        return render(request, f"{PAGE}#review-status",
                      {"incident": incident} | status_context(request, incident))  # fmt: skip
    return render(request, PAGE, page_context(request, incident))


MOVES = {
    "submit": lambda i, u, d: submit_for_review(incident=i, by=u, note=d["note"]),
    "request-changes": lambda i, u, d: request_changes(incident=i, by=u, note=d["note"]),
    "approve": lambda i, u, d: publish(
        incident=i, by=u, note=d["note"], open_comments_reason=d["open_comments_reason"]
    ),
    "reopen": lambda i, u, d: reopen(incident=i, by=u, reason=d["reason"]),
}
MOVE_NAMES = {"submit": "submit", "request-changes": "request_changes", "approve": "publish",
              "reopen": "reopen"}  # fmt: skip


@require_POST
@vary_on_headers("HX-Request")
def review_move(request, slug, move):
    if move not in MOVES:
        raise Http404("No such step.")
    incident = visible_incident(request, slug)
    form = MoveForm(request.POST)
    if not form.is_valid():
        return _render(request, incident, "review-status",
                       status_context(request, incident, move_form=form))  # fmt: skip
    try:
        MOVES[move](incident, request.user, form.cleaned_data)
    except TransitionError as error:
        if error.code == "forbidden":
            raise PermissionDenied(error.message) from error
        status = 409 if error.code == "state" else 200
        incident.refresh_from_db()
        part = status_context(request, incident, move_error=error.message, move_form=form,
                              failed_move=MOVE_NAMES[move])  # fmt: skip
        return _render(request, incident, "review-status", part, status=status)
    messages.success(request, f"“{incident.title}” was {PAST[MOVE_NAMES[move]]}.")
    if wants_partial(request):
        # The status shows all over the page (badges, buttons, panels): reload it whole.
        return HttpResponseClientRefresh()
    return redirect(_next_url(request, reverse("review_page", args=[incident.slug])))


# --- Comments ------------------------------------------------------------------------------


def _comments_response(request, incident, *, status=200, changed=False, **kwargs):
    response = _render(request, incident, "comments", comments_context(request, incident, **kwargs),
                       status=status)  # fmt: skip
    if changed and wants_partial(request):
        # The status panel counts open comments for "approve anyway"; it refreshes on this.
        trigger_client_event(response, "debrief:comments-changed")
    return response


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def review_comments(request, slug):
    """GET: the comment threads (a lazy panel on the incident page). POST: a new comment, or a
    reply when `parent` is given."""
    incident = visible_incident(request, slug)
    if request.method == "GET":
        if request.GET.get("view") == "panel" and wants_partial(request):
            # The compact version lazily loaded into the incident page.
            return render(request, f"{PAGE}#comments-panel",
                          {"incident": incident} | comments_context(request, incident, with_form=False))  # fmt: skip
        return _comments_response(request, incident)
    _require(request, "comment", incident)
    parent = None
    if request.POST.get("parent"):
        parent = get_object_or_404(
            ReviewComment, pk=_int(request.POST["parent"]), incident=incident
        )
        form = ReplyForm(request.POST)
    else:
        form = CommentForm(request.POST, incident=incident)
    if form.is_valid():
        try:
            comment = review.add_comment(
                incident=incident, by=request.user, body=form.cleaned_data["body"],
                anchor=form.cleaned_data.get("anchor") or "incident", parent=parent,
            )  # fmt: skip
        except ValidationError as error:
            _add_errors(form, error)
        else:
            if wants_partial(request):
                return _comments_response(request, incident, changed=True)
            messages.success(request, "Comment added.")
            url = reverse("review_page", args=[incident.slug])
            return redirect(f"{url}#comment-{comment.parent_id or comment.pk}")
    if parent is not None:
        return _comments_response(request, incident, reply_form=form, reply_to=parent.pk)
    return _comments_response(request, incident, form=form)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("No such comment.") from None


def _comment(incident, pk) -> ReviewComment:
    return get_object_or_404(
        ReviewComment.objects.select_related("incident", "parent"), pk=pk, incident=incident
    )


COMMENT_ACTIONS = ("resolve", "reopen", "delete")


@require_POST
@vary_on_headers("HX-Request")
def review_comment_action(request, slug, pk, action):
    """Resolve or reopen a thread, or delete a comment (to the trash, with Undo)."""
    if action not in COMMENT_ACTIONS:
        raise Http404("No such action.")
    incident = visible_incident(request, slug)
    comment = _comment(incident, pk)
    back = reverse("review_page", args=[incident.slug])
    if action == "delete":
        try:
            entry = review.delete_comment(
                comment=comment, by=request.user, next_url=back + "#comments"
            )
        except TransitionError as error:
            raise PermissionDenied(error.message) from error
        if wants_partial(request):
            return undo.announce(
                request, entry, _comments_response(request, incident, changed=True)
            )
        undo.announce(request, entry)
        return redirect(back + "#comments")
    _require(request, "resolve_comment", incident)
    if action == "resolve":
        review.resolve_comment(comment=comment, by=request.user)
    else:
        review.reopen_comment(comment=comment, by=request.user)
    if wants_partial(request):
        return _comments_response(request, incident, changed=True)
    messages.success(request, "Comment resolved." if action == "resolve" else "Comment reopened.")
    return redirect(f"{back}#comment-{comment.parent_id or comment.pk}")


# --- People and readers --------------------------------------------------------------------


@require_POST
@vary_on_headers("HX-Request")
def review_people(request, slug):
    incident = visible_incident(request, slug)
    _require(request, "manage_people", incident)
    form = PersonForm(request.POST)
    if form.is_valid():
        users, _missing = review.find_users(form.cleaned_data["username"])
        if not users:
            form.add_error(
                "username", f"No active account is called {form.cleaned_data['username']}."
            )
        else:
            try:
                review.add_person(
                    incident=incident,
                    by=request.user,
                    role=form.cleaned_data["role"],
                    user=users[0],
                )
            except ValidationError as error:
                _add_errors(form, error)
            else:
                role = form.cleaned_data["role"]
                if wants_partial(request):
                    return _render(
                        request, incident, "review-people", people_context(request, incident)
                    )
                messages.success(request, f"{review.display_name(users[0])} added as {role}.")
                return redirect(reverse("review_page", args=[incident.slug]) + "#review-people")
    return _render(request, incident, "review-people", people_context(request, incident, form=form))


@require_POST
@vary_on_headers("HX-Request")
def review_person_remove(request, slug, role, user_id):
    from django.contrib.auth import get_user_model

    incident = visible_incident(request, slug)
    _require(request, "manage_people", incident)
    person = get_object_or_404(get_user_model(), pk=user_id)
    back = reverse("review_page", args=[incident.slug]) + "#review-people"
    try:
        entry = review.remove_person(
            incident=incident, by=request.user, role=role, user=person, next_url=back
        )
    except ValidationError as error:
        form = PersonForm()
        _add_errors(form, error)
        return _render(
            request, incident, "review-people", people_context(request, incident, form=form)
        )
    if wants_partial(request):
        return undo.announce(
            request,
            entry,
            _render(request, incident, "review-people", people_context(request, incident)),
        )
    undo.announce(request, entry)
    return redirect(back)


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def review_readers(request, slug):
    """Who may read the write-up: a small form for its authors."""
    incident = visible_incident(request, slug)
    if request.method == "GET":
        return _render(request, incident, "review-readers", readers_context(request, incident))
    _require(request, "set_visibility", incident)
    form = ReadersForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            review.set_visibility(
                incident=incident, by=request.user, visibility=data["visibility"],
                teams=data["visible_teams"], users=data["visible_users"],
            )  # fmt: skip
        except ValidationError as error:
            _add_errors(form, error)
        else:
            if wants_partial(request):
                return _render(
                    request, incident, "review-readers", readers_context(request, incident)
                )
            messages.success(request, "Saved who may read it.")
            return redirect(reverse("review_page", args=[incident.slug]) + "#review-readers")
    return _render(
        request, incident, "review-readers", readers_context(request, incident, form=form)
    )


# --- The review meeting --------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def review_meeting(request, slug):
    """GET: the meeting (a lazy panel on the incident page; `?edit=meeting` for the form).
    POST: plan or change it; attendees get an (updated) invitation."""
    incident = visible_incident(request, slug)
    if request.method == "GET":
        editing = request.GET.get("edit") == "meeting"
        return _render(request, incident, "review-meeting",
                       meeting_context(request, incident, editing=editing))  # fmt: skip
    _require(request, "schedule_meeting", incident)
    form = MeetingForm(request.POST, candidates=review.meeting_candidates(incident))
    if form.is_valid():
        data = form.cleaned_data
        try:
            meeting = review.schedule_meeting(
                incident=incident, by=request.user, starts_at=data["starts_at"],
                duration=data["duration"], location=data["location"],
                facilitator=data["facilitator"],
                attendees=[*data["attendees"], *data["more_attendees"]], agenda=data["agenda"],
            )  # fmt: skip
        except ValidationError as error:
            _add_errors(form, error)
        else:
            text = "Review meeting saved; attendees get the invitation by e-mail."
            if meeting.sequence:
                text = "Review meeting changed; attendees get the updated invitation by e-mail."
            if wants_partial(request):
                response = _render(request, incident, "review-meeting",
                                   meeting_context(request, incident) | {"meeting_notice": text})  # fmt: skip
                return response
            messages.success(request, text)
            return redirect(reverse("review_page", args=[incident.slug]) + "#review-meeting")
    return _render(
        request, incident, "review-meeting", meeting_context(request, incident, form=form)
    )


@require_GET
def review_meeting_ics(request, slug):
    incident = visible_incident(request, slug)
    meeting = get_object_or_404(
        ReviewMeeting.objects.select_related("incident", "facilitator"), incident=incident
    )
    response = HttpResponse(
        review.meeting_ics(meeting), content_type="text/calendar; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="review-{incident.slug}.ics"'
    return response


@require_POST
@vary_on_headers("HX-Request")
def review_meeting_cancel(request, slug):
    incident = visible_incident(request, slug)
    _require(request, "schedule_meeting", incident)
    back = reverse("review_page", args=[incident.slug]) + "#review-meeting"
    try:
        entry = review.cancel_meeting(incident=incident, by=request.user, next_url=back)
    except ValidationError as error:
        raise Http404(error.messages[0]) from error
    if wants_partial(request):
        panel = _render(request, incident, "review-meeting", meeting_context(request, incident))
        return undo.announce(request, entry, panel)
    undo.announce(request, entry)
    return redirect(back)


# --- History, delete, undo, trash ----------------------------------------------------------


@require_GET
@vary_on_headers("HX-Request")
def incident_history(request, slug):
    """Every change to the write-up and its parts, per field: who, when, old → new."""
    incident = visible_incident(request, slug)
    events = review.incident_history(incident)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    context = {"incident": incident, "page": page,
               "query_string": query_string_without_page(request)}  # fmt: skip
    template = "incidents/review/history.html" + ("#history" if wants_partial(request) else "")
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
def incident_delete(request, slug):
    """Delete a whole write-up (to the trash). The author types its slug to confirm."""
    incident = visible_incident(request, slug)
    _require(request, "delete_incident", incident)
    form = DeleteIncidentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry = review.delete_incident(
                incident=incident, by=request.user,
                confirm_slug=form.cleaned_data["confirm_slug"], next_url=incident.get_absolute_url(),
            )  # fmt: skip
        except ValidationError as error:
            _add_errors(form, error)
        else:
            undo.announce(request, entry)
            return redirect("home")
    return render(request, "incidents/review/delete.html", {"incident": incident, "form": form})


@require_POST
@vary_on_headers("HX-Request")
def undo_delete(request, token):
    """The Undo button (and Restore on the Trash page)."""
    from .review_models import TrashEntry

    try:
        token = uuid.UUID(str(token))
    except ValueError:
        raise Http404("Nothing to restore.") from None
    entry = TrashEntry.objects.filter(token=token).first()
    try:
        restored = undo.restore(token, by=request.user)
    except undo.UndoError as error:
        if error.code == "forbidden":
            raise Http404("Nothing to restore.") from error
        if wants_partial(request):
            return render(request, "incidents/review/trash.html#undo-result",
                          {"text": error.message, "ok": False}, status=409)  # fmt: skip
        messages.error(request, error.message)
        return redirect(_next_url(request, reverse("trash")))
    text = f"Restored: {entry.label}."
    if wants_partial(request):
        if request.POST.get("reload"):
            messages.success(request, text)
            return HttpResponseClientRefresh()
        response = render(
            request, "incidents/review/trash.html#undo-result", {"text": text, "ok": True}
        )
        return trigger_client_event(response, "debrief:restored", {"model": entry.model_label})
    messages.success(request, text)
    default = entry.next_url or _restored_url(restored, entry) or reverse("trash")
    if not url_has_allowed_host_and_scheme(default, allowed_hosts={request.get_host()}):
        default = reverse("trash")
    return redirect(_next_url(request, default))


def _restored_url(restored, entry) -> str:
    if isinstance(restored, Incident):
        return restored.get_absolute_url()
    if entry.incident_slug:
        return reverse("incident_detail", args=[entry.incident_slug])
    return ""


@require_GET
def trash(request):
    """What this person may restore: things they deleted, and things deleted from write-ups
    they author (staff: everything), for 30 days."""
    entries = undo.restorable_by(request.user)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "incidents/review/trash.html",
                  {"page": page, "query_string": query_string_without_page(request),
                   "trash_days": undo.TRASH_DAYS})  # fmt: skip
