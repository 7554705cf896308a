"""The guided write-up: eight steps at /incidents/<slug>/edit/<step>/, autosave that never loses
an edit, and live blame-language checking.

Every step works as plain form posts; with htmx only the step's partial (or one row, or one
field's status) is swapped. Writes to the incident carry the `version` they were based on and
are refused with 409 when someone saved in between; timeline entries, factors and action items
are guarded one by one by a fingerprint of what the author saw.

The writes themselves are the plain `@transaction.atomic` functions in the "Writes" section.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, InterfaceError, transaction
from django.db.models import Count, Max, Q
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from . import guided, timeline_paste, undo
from .lifecycle import TransitionError, submit_for_review
from .models import (
    ActionItem,
    Answer,
    BlameDismissal,
    ContributingFactor,
    GuidedQuestion,
    Incident,
    TimelineEntry,
)
from .viewutils import get_editable_incident, wants_partial
from .write_forms import (
    ActionItemForm,
    BasicsForm,
    FactorForm,
    ImpactForm,
    InsideForm,
    PasteForm,
    ReflectForm,
    TimelineEntryForm,
)

logger = logging.getLogger(__name__)

VERSION_HEADER = "X-Debrief-Version"  # the write-up's version after a save (write.js)
SAVED_HEADER = "X-Debrief-Saved"  # the request saved what its form held
FOCUS_HEADER = "X-Debrief-Focus"  # where the keyboard focus goes after the swap
# The incident's own text fields that save as the author types.
AUTOSAVE_FIELDS = ("summary", "impact", "narrative", "went_well", "lucky", "lessons")


class VersionConflict(Exception):
    """A write was based on a version of the write-up (or a row) that is no longer current."""


# --------------------------------------------------------------------------------------------
# Writes
# --------------------------------------------------------------------------------------------


@transaction.atomic
def create_incident(*, form: BasicsForm, by) -> Incident:
    """A new draft from a valid basics form; the person who starts it is its first author."""
    incident = form.save(commit=False)
    incident.created_by = by
    incident.status = Incident.Status.DRAFT
    incident.full_clean(exclude=["slug"])
    incident.save()
    form.save_m2m()
    incident.authors.add(by)
    return incident


def _record_edit(incident: Incident) -> None:
    """`save_if_version` is a queryset UPDATE, which edit history does not see: record it, folding
    one person's autosaves within 15 minutes into one history entry per editing session."""
    from simple_history.models import HistoricalRecords

    from .review import record_history

    request = getattr(HistoricalRecords.context, "request", None)
    by = getattr(request, "user", None)
    if by is not None and not by.is_authenticated:
        by = None
    record_history(
        incident, by=by, reason="Edited the write-up", coalesce_within=dt.timedelta(minutes=15)
    )


@transaction.atomic
def save_incident_fields(
    *, incident: Incident, expected_version: int, fields: list[str], form=None
) -> None:
    """Write `fields` of an already validated incident, and the form's many-to-many choices,
    only if nobody saved since `expected_version`."""
    if form is not None:
        form.save(commit=False)  # prepares form.save_m2m(); the instance is `incident`
    if not incident.save_if_version(expected_version, fields):
        raise VersionConflict
    if form is not None:
        form.save_m2m()
    _record_edit(incident)


@transaction.atomic
def save_answers(
    *, incident: Incident, expected_version: int, answers: dict[int, str], narrative=None
) -> None:
    """The story and the guided answers: one version check for all of them."""
    fields = []
    if narrative is not None:
        incident.narrative = narrative
        fields.append("narrative")
    if not incident.save_if_version(expected_version, fields):
        raise VersionConflict
    if fields:
        _record_edit(incident)
    existing = {a.question_id: a for a in Answer.objects.filter(incident=incident)}
    for question_id, text in answers.items():
        answer = existing.get(question_id)
        if answer is None:
            if not text.strip():
                continue
            answer = Answer(incident=incident, question_id=question_id)
        elif answer.text == text:
            continue
        answer.text = text
        answer.full_clean(exclude=["incident", "question"])
        answer.save()


def save_text(*, incident: Incident, name: str, text: str, expected_version: int) -> None:
    """Autosave of one text field: an incident field or the answer to one guided question."""
    if name.startswith(guided.ANSWER_PREFIX):
        question_id = int(name[len(guided.ANSWER_PREFIX) :])
        save_answers(
            incident=incident, expected_version=expected_version, answers={question_id: text}
        )
        return
    setattr(incident, name, text)
    save_incident_fields(incident=incident, expected_version=expected_version, fields=[name])


def fingerprint(obj, fields: tuple[str, ...]) -> str:
    """What the author saw of one row; an edit is refused when the row no longer matches."""
    parts = []
    for name in fields:
        model_field = obj._meta.get_field(name)
        if model_field.many_to_many:
            value = sorted(getattr(obj, name).values_list("pk", flat=True)) if obj.pk else []
        else:
            value = model_field.value_from_object(obj)
            value = value.isoformat() if hasattr(value, "isoformat") else value
        parts.append(f"{name}={value!r}")
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


@transaction.atomic
def save_row(*, incident: Incident, form, kind: RowKind, expected: str | None = None):
    """Create a row, or update one if it still matches the fingerprint `expected`."""
    row = form.save(commit=False)
    if row.pk:
        fresh = kind.model.objects.select_for_update().get(pk=row.pk, incident=incident)
        if fingerprint(fresh, kind.fields) != expected:
            raise VersionConflict
        row.full_clean()
        # Only what the form edits: a position moved or a status changed meanwhile stays.
        names = [n for n in kind.fields if not row._meta.get_field(n).many_to_many]
        names += [f"{n}_html" for n in names if n in row.markdown_fields]
        if isinstance(row, ActionItem):
            # Others (the action list) guard items by their version: move it on.
            row.version = fresh.version + 1
            names += ["version", "updated_at"]
        row.save(update_fields=names)
    else:
        row.incident = incident
        if isinstance(row, TimelineEntry | ContributingFactor):
            row.position = _next_position(kind, incident)
        row.full_clean()
        row.save()
    form.save_m2m()
    return row


def _next_position(kind: RowKind, incident: Incident) -> int:
    top = kind.model.objects.filter(incident=incident).aggregate(top=Max("position"))["top"]
    return (top or 0) + 1


@transaction.atomic
def move_entry(*, incident: Incident, entry_id: int, direction: str) -> bool:
    """Swap an entry with its neighbour at the same time (entries are entered to the minute);
    entries at different times keep the order of their times."""
    entries = list(
        TimelineEntry.objects.select_for_update()
        .filter(incident=incident)
        .only("id", "at", "position")
        .order_by("at", "position", "id")
    )
    index = next((i for i, e in enumerate(entries) if e.pk == entry_id), None)
    if index is None:
        return False
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(entries) or entries[index].at != entries[other].at:
        return False
    entries[index], entries[other] = entries[other], entries[index]
    for position, entry in enumerate(entries, start=1):
        if entry.position != position:
            entry.position = position
            entry.save(update_fields=["position"])
    return True


@transaction.atomic
def add_pasted_entries(
    *, incident: Incident, entries: list[timeline_paste.ParsedEntry], kinds: dict[int, str]
) -> int:
    """All of the parsed entries or none of them."""
    start = _next_position(ROW_KINDS["timeline"], incident)
    for offset, parsed in enumerate(entries):
        entry = TimelineEntry(
            incident=incident,
            at=parsed.at,
            kind=kinds.get(parsed.line, parsed.kind),
            text=parsed.text,
            position=start + offset,
        )
        entry.full_clean()
        entry.save()
    return len(entries)


def dismiss_finding(*, incident: Incident, field: str, rule: str, phrase: str, by) -> None:
    """Remember that the author says a finding does not apply; saying it twice is fine."""
    dismissal = BlameDismissal(
        incident=incident,
        field=field,
        rule=rule[:60],
        phrase=guided.normalise_phrase(phrase),
        dismissed_by=by,
    )
    try:
        dismissal.full_clean(validate_unique=False, validate_constraints=False)
        with transaction.atomic():
            dismissal.save()
    except IntegrityError:
        pass  # already dismissed


# --------------------------------------------------------------------------------------------
# What the pages show
# --------------------------------------------------------------------------------------------


def gather_facts(incident: Incident) -> guided.WriteUpFacts:
    """Everything the completeness rules look at, in a fixed handful of queries."""
    has_scope = Incident.objects.filter(
        Q(services__isnull=False) | Q(teams__isnull=False), pk=incident.pk
    ).exists()
    kinds = list(incident.timeline_entries.values_list("kind", flat=True))
    active = GuidedQuestion.objects.filter(is_active=True)
    answered = [
        text
        for text in Answer.objects.filter(incident=incident, question__in=active).values_list(
            "text", flat=True
        )
        if text.strip()
    ]
    factors = incident.factors.annotate(
        n_evidence=Count("evidence", distinct=True), n_items=Count("action_items", distinct=True)
    )
    return guided.WriteUpFacts(
        title=incident.title,
        has_start=incident.started_at is not None,
        has_services_or_teams=has_scope,
        impact=incident.impact,
        customer_visible=incident.customer_visible,
        data_lost=incident.data_lost,
        timeline_kinds=frozenset(kinds),
        timeline_count=len(kinds),
        questions=active.count(),
        answered=len(answered),
        narrative=incident.narrative,
        factors=tuple(
            guided.FactorFacts(
                id=f.pk,
                label=_label(f.description),
                has_evidence=f.n_evidence > 0,
                addressed=f.n_items > 0,
                accepted_risk=f.accepted_risk,
            )
            for f in factors
        ),
        went_well=incident.went_well,
        lucky=incident.lucky,
        lessons=incident.lessons,
        action_items=incident.action_items.count(),
        status=incident.status,
    )


def _label(text: str, length: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


class Blame:
    """Blame checking for one request: names and dismissals are loaded once, when needed."""

    def __init__(self, incident: Incident | None):
        self.incident = incident
        self._names = None
        self._dismissed = None

    @property
    def names(self) -> list[str]:
        if self._names is None:
            if self.incident is None or self.incident.pk is None:
                self._names = []
            else:
                User = get_user_model()
                people = User.objects.filter(
                    Q(authored_incidents=self.incident)
                    | Q(reviewing_incidents=self.incident)
                    | Q(teams__incidents=self.incident)
                )
                self._names = sorted({n for n in people.values_list("first_name", flat=True) if n})
        return self._names

    @property
    def dismissed(self) -> set[tuple[str, str, str]]:
        if self._dismissed is None:
            self._dismissed = (
                set(self.incident.dismissals.values_list("field", "rule", "phrase"))
                if self.incident is not None and self.incident.pk
                else set()
            )
        return self._dismissed

    def find(self, field: str, text: str) -> list[guided.ShownFinding]:
        if not text or not text.strip():
            return []
        return guided.find_blame(field, text, dismissed=self.dismissed, names=self.names)


def _step_url(incident: Incident, slug: str) -> str:
    return reverse("incident_step", args=[incident.slug, slug])


def _progress(incident: Incident | None, current: guided.Step, facts) -> dict[str, Any]:
    states = guided.step_states(facts) if facts else {}
    items = []
    for step in guided.STEPS:
        state = states.get(step.slug, guided.MISSING)
        items.append(
            {
                "step": step,
                "state": state,
                "current": step.slug == current.slug,
                "url": _step_url(incident, step.slug) if incident else "",
            }
        )
    countable = [i for i in items if i["step"].slug != "review"]
    return {
        "progress": items,
        "complete_count": sum(1 for i in countable if i["state"] == guided.COMPLETE),
        "countable_steps": len(countable),
    }


def _frame(request, incident: Incident | None, step: guided.Step, facts=None) -> dict:
    """What every step page shows around its own content."""
    if incident is not None and facts is None:
        facts = gather_facts(incident)
    previous, following = guided.previous_step(step), guided.next_step(step)
    return {
        "incident": incident,
        "step": step,
        "facts": facts,
        "previous": previous,
        "next": following,
        "previous_url": _step_url(incident, previous.slug) if incident and previous else "",
        "next_url": _step_url(incident, following.slug) if incident and following else "",
        "zone": timezone.get_current_timezone_name(),
        "similar_query": _similar_query(incident) if incident and step.slug == "basics" else "",
        **_progress(incident, step, facts),
    }


def _template(step: guided.Step) -> str:
    return f"incidents/write/{step.slug}.html"


def _respond(
    request,
    step: guided.Step,
    context: dict,
    *,
    status=200,
    partial="step",
    progress=False,
    version=None,
) -> HttpResponse:
    """The whole step page, or for htmx the named partial (plus the progress bar, swapped out
    of band, when what was saved may have changed a step's state)."""
    _annotate_findings(context)
    if wants_partial(request):
        body = render_to_string(f"{_template(step)}#{partial}", context, request)
        if progress:
            body += render_to_string(
                "incidents/write/base.html#progress", {**context, "oob": True}, request
            )
        response = HttpResponse(body, status=status)
    else:
        response = render(request, _template(step), context, status=status)
    if version is not None:
        response[VERSION_HEADER] = str(version)
    if context.get("saved_header"):
        response[SAVED_HEADER] = "1"
    if context.get("focus_selector") and wants_partial(request):
        response[FOCUS_HEADER] = context["focus_selector"]
    return response


def _annotate_findings(context: dict) -> None:
    """Give each narrative field of the page's forms its open blame findings (`.findings`)
    and the name its findings are checked and dismissed under (`.check`)."""
    checker = context.get("blame")
    for key in ("form", "add_form", "edit_form"):
        form = context.get(key)
        for name, check in getattr(form, "blame_fields", {}).items():
            bound = form[name]  # the same object the template gets: forms cache bound fields
            bound.check = check
            value = bound.value()
            bound.findings = checker.find(check, value) if checker and value else []


def _posted_version(request, *, allow_overwrite=True) -> int:
    """The version a save is based on. A deliberate "keep mine" carries the current version
    in `overwrite_version`; a missing or broken version is never current."""
    raw = request.POST.get("overwrite_version") if allow_overwrite else None
    raw = raw or request.POST.get("version", "")
    try:
        return int(raw)
    except ValueError:
        return 0


def _their_texts(incident: Incident, form, names) -> tuple[list[dict], int]:
    """For a conflict: the saved value of each field where it differs from what was posted."""
    fresh = Incident.objects.get(pk=incident.pk)
    theirs = []
    for name in names:
        if name in AUTOSAVE_FIELDS or name == "title":
            saved = getattr(fresh, name)
            posted = form.data.get(name, "") if form is not None else ""
            if saved.strip() != posted.strip():
                theirs.append({"label": form[name].label if form else name, "text": saved})
    return theirs, fresh.version


def _remember_step(request, incident: Incident, step: guided.Step) -> None:
    key = f"debrief-write-step-{incident.pk}"
    if request.session.get(key) != step.slug:
        request.session[key] = step.slug


def _handle_dismiss_post(request, incident: Incident) -> bool:
    """The no-JavaScript dismiss button submits its form with `dismiss`; record it."""
    token = request.POST.get("dismiss")
    parsed = guided.parse_dismiss_token(token) if token else None
    if parsed and guided.is_checked_field(parsed[0]):
        dismiss_finding(
            incident=incident, field=parsed[0], rule=parsed[1], phrase=parsed[2], by=request.user
        )
        return True
    return False


# --------------------------------------------------------------------------------------------
# Entry points: new write-up, resume, one step
# --------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def incident_create(request):
    """The basics step before the write-up exists: nothing is stored until it is valid."""
    step = guided.FIRST_STEP
    form = BasicsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        incident = _recent_twin(request, form) or create_incident(form=form, by=request.user)
        target = _step_url(incident, "basics" if request.POST.get("go") == "save" else "impact")
        messages.success(request, "Write-up started. It saves as you go; come back any time.")
        if request.htmx:
            return HttpResponseClientRedirect(target)
        return redirect(target)
    context = {**_frame(request, None, step), "form": form, "blame": Blame(None)}
    return _respond(request, step, context)


def _recent_twin(request, form) -> Incident | None:
    """A double-clicked "Save and continue" must not start two write-ups."""
    recent = timezone.now() - dt.timedelta(seconds=30)
    return (
        Incident.objects.filter(
            created_by=request.user,
            title=form.cleaned_data["title"],
            created_at__gte=recent,
            status=Incident.Status.DRAFT,
        )
        .order_by("-created_at")
        .first()
    )


@require_GET
def incident_edit(request, slug):
    """Back to where this person left off, or the first step."""
    incident = get_editable_incident(request, slug)
    remembered = request.session.get(f"debrief-write-step-{incident.pk}")
    step = guided.get_step(remembered) if remembered else None
    return redirect(_step_url(incident, (step or guided.FIRST_STEP).slug))


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def incident_step(request, slug, step):
    current = guided.get_step(step)
    if current is None:
        raise Http404("No such step.")
    incident = get_editable_incident(request, slug)
    handler = STEP_HANDLERS[current.slug]
    if request.method == "GET":
        _remember_step(request, incident, current)
    return handler(request, incident, current)


def _field_step(request, incident: Incident, step: guided.Step, form_class, fields: list[str]):
    """Basics, impact and reflect: one form over the incident's own fields."""
    blame_checker = Blame(incident)
    if request.method == "POST":
        # The form works on a copy: the page around it keeps showing what is saved.
        form = form_class(request.POST, instance=copy.copy(incident))
        dismissed = _handle_dismiss_post(request, incident)
        if form.is_valid():
            expected = _posted_version(request)
            try:
                save_incident_fields(
                    incident=form.instance, expected_version=expected, fields=fields, form=form
                )
            except VersionConflict:
                return _conflict(request, incident, step, form, fields, blame_checker)
            return _after_save(request, form.instance, step, form_class, blame_checker, dismissed)
    else:
        form = form_class(instance=incident)
    context = {**_frame(request, incident, step), "form": form, "blame": blame_checker}
    return _respond(request, step, context)


def _after_save(request, incident, step, form_class, blame_checker, dismissed=False):
    # "Save mine" after a conflict stays on the step; Enter and "Save and continue" move on.
    go = request.POST.get("go") or ("save" if "overwrite_version" in request.POST else "next")
    if go == "next" and not dismissed and guided.next_step(step):
        target = _step_url(incident, guided.next_step(step).slug)
        if request.htmx:
            response = HttpResponseClientRedirect(target)
            response[VERSION_HEADER] = str(incident.version)
            response[SAVED_HEADER] = "1"
            return response
        return redirect(target)
    if not request.htmx:
        messages.success(request, f"Saved at {timezone.localtime():%H:%M}.")
        return redirect(_step_url(incident, step.slug))
    fresh = Incident.objects.get(pk=incident.pk)
    context = {
        **_frame(request, fresh, step),
        "form": form_class(instance=fresh),
        "blame": blame_checker,
        "saved_at": timezone.now(),
        "saved_header": True,
    }
    return _respond(request, step, context, progress=True, version=fresh.version)


def _conflict(request, incident, step, form, fields, blame_checker, **extra):
    theirs, current_version = _their_texts(incident, form, fields)
    context = {
        **_frame(request, Incident.objects.get(pk=incident.pk), step),
        "form": form,
        "blame": blame_checker,
        "conflict": {"theirs": theirs, "version": current_version},
        # The form keeps the version it was based on: only "Save mine" replaces their text.
        "form_version": _posted_version(request, allow_overwrite=False),
        "focus_selector": "#conflict",
        **extra,
    }
    return _respond(request, step, context, status=409)


def basics_step(request, incident, step):
    fields = [n for n in BasicsForm._meta.fields if n not in ("services", "teams", "tags")]
    return _field_step(request, incident, step, BasicsForm, fields)


def impact_step(request, incident, step):
    return _field_step(request, incident, step, ImpactForm, list(ImpactForm._meta.fields))


def reflect_step(request, incident, step):
    return _field_step(request, incident, step, ReflectForm, list(ReflectForm._meta.fields))


def _questions_and_answers(incident):
    answers = {a.question_id: a.text for a in Answer.objects.filter(incident=incident)}
    questions = [
        q for q in GuidedQuestion.objects.all() if q.is_active or answers.get(q.pk, "").strip()
    ]
    return questions, answers


def inside_step(request, incident, step):
    questions, answers = _questions_and_answers(incident)
    blame_checker = Blame(incident)
    initial = {"narrative": incident.narrative}
    if request.method == "POST":
        form = InsideForm(request.POST, questions=questions, answers=answers, initial=initial)
        dismissed = _handle_dismiss_post(request, incident)
        if form.is_valid():
            try:
                save_answers(
                    incident=incident,
                    expected_version=_posted_version(request),
                    answers=form.answers(),
                    narrative=form.cleaned_data["narrative"],
                )
            except VersionConflict:
                return _inside_conflict(request, incident, step, form, blame_checker)
            go = request.POST.get("go") or (
                "save" if "overwrite_version" in request.POST else "next"
            )
            if go == "next" and not dismissed:
                target = _step_url(incident, guided.next_step(step).slug)
                if request.htmx:
                    response = HttpResponseClientRedirect(target)
                    response[SAVED_HEADER] = "1"
                    return response
                return redirect(target)
            if not request.htmx:
                messages.success(request, f"Saved at {timezone.localtime():%H:%M}.")
                return redirect(_step_url(incident, step.slug))
            incident.refresh_from_db()
            questions, answers = _questions_and_answers(incident)
            form = InsideForm(
                questions=questions, answers=answers, initial={"narrative": incident.narrative}
            )
            context = {
                **_frame(request, incident, step),
                "form": form,
                "blame": blame_checker,
                "saved_at": timezone.now(),
                "saved_header": True,
            }
            return _respond(request, step, context, progress=True, version=incident.version)
    else:
        form = InsideForm(questions=questions, answers=answers, initial=initial)
    context = {**_frame(request, incident, step), "form": form, "blame": blame_checker}
    return _respond(request, step, context)


def _inside_conflict(request, incident, step, form, blame_checker):
    fresh = Incident.objects.get(pk=incident.pk)
    saved = {a.question_id: a.text for a in Answer.objects.filter(incident=incident)}
    theirs = []
    if fresh.narrative.strip() != form.cleaned_data["narrative"].strip():
        theirs.append({"label": form["narrative"].label, "text": fresh.narrative})
    for question in form.questions:
        posted = form.cleaned_data.get(f"answer-{question.pk}", "")
        if saved.get(question.pk, "").strip() != posted.strip():
            theirs.append({"label": question.prompt, "text": saved.get(question.pk, "")})
    context = {
        **_frame(request, fresh, step),
        "form": form,
        "blame": blame_checker,
        "conflict": {"theirs": theirs, "version": fresh.version},
        "form_version": _posted_version(request, allow_overwrite=False),
        "focus_selector": "#conflict",
    }
    return _respond(request, step, context, status=409)


# --------------------------------------------------------------------------------------------
# Rows: timeline entries, contributing factors, action items
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowKind:
    slug: str  # the step that lists them
    model: type
    form_class: type
    related_name: str
    fields: tuple[str, ...]  # what the form edits, and what a fingerprint covers
    noun: str
    blame_field: str
    text_attr: str

    def rows(self, incident: Incident):
        queryset = getattr(incident, self.related_name).all()
        if self.model is ContributingFactor:
            return queryset.prefetch_related("evidence").annotate(
                n_items=Count("action_items", distinct=True)
            )
        if self.model is ActionItem:
            return queryset.select_related("team", "owner").prefetch_related("addresses")
        return queryset

    def form(self, incident: Incident, *args, **kwargs):
        return self.form_class(*args, incident=incident, **kwargs)


ROW_KINDS = {
    "timeline": RowKind(
        "timeline",
        TimelineEntry,
        TimelineEntryForm,
        "timeline_entries",
        ("at", "kind", "text"),
        "entry",
        "timeline",
        "text",
    ),
    "factors": RowKind(
        "factors",
        ContributingFactor,
        FactorForm,
        "factors",
        ("category", "description", "evidence", "accepted_risk", "accepted_risk_reason"),
        "factor",
        "factor",
        "description",
    ),
    "actions": RowKind(
        "actions",
        ActionItem,
        ActionItemForm,
        "action_items",
        ("title", "kind", "team", "owner", "due", "priority", "addresses", "description"),
        "action item",
        "action",
        "title",
    ),
}


def _row_kind(kind: str) -> RowKind:
    if kind not in ROW_KINDS:
        raise Http404("No such list.")
    return ROW_KINDS[kind]


def _rows_context(
    request,
    incident,
    kind: RowKind,
    *,
    add_form=None,
    editing=None,
    edit_form=None,
    blame_checker=None,
    facts=None,
    **extra,
) -> dict:
    step = guided.get_step(kind.slug)
    blame_checker = blame_checker or Blame(incident)
    rows = list(kind.rows(incident))
    for row in rows:
        row.findings = blame_checker.find(kind.blame_field, getattr(row, kind.text_attr))
    context = {
        **_frame(request, incident, step, facts),
        "rows": rows,
        "kind": kind,
        "add_form": add_form or _blank_form(kind, incident),
        "editing": editing,
        "edit_form": edit_form,
        "blame": blame_checker,
    }
    if kind.slug == "timeline":
        _mark_movable(rows)
        context["kind_choices"] = TimelineEntry.Kind.choices
    if kind.slug == "factors":
        context["similar_query"] = _similar_query(incident, with_categories=True)
    context.update(extra)
    return context


def _mark_movable(entries: list[TimelineEntry]) -> None:
    """Entries at the same time can swap places; the times order everything else."""
    for index, entry in enumerate(entries):
        entry.can_up = index > 0 and entry.at == entries[index - 1].at
        entry.can_down = index + 1 < len(entries) and entry.at == entries[index + 1].at


def _similar_query(incident: Incident, *, with_categories: bool = False) -> str:
    """Parameters for the similar-incidents panel, from what is saved."""
    params = {
        "services": ",".join(incident.services.values_list("slug", flat=True)),
        "q": incident.title,
        "exclude": incident.slug,
    }
    if with_categories:
        categories = incident.factors.values_list("category", flat=True).distinct()
        params["categories"] = ",".join(sorted(categories))
    return urlencode({k: v for k, v in params.items() if v})


ADD_FORM_IDS = {"timeline": "add-entry-form", "factors": "add-factor-form",
                "actions": "add-action-form"}  # fmt: skip
FIRST_FIELD = ":is(input:not([type=hidden]), select, textarea)"


def _blank_form(kind: RowKind, incident: Incident):
    initial = {}
    if kind.slug == "timeline":
        last = incident.timeline_entries.order_by("-at").values_list("at", flat=True).first()
        initial["at"] = last or incident.started_at
    return kind.form(incident, initial=initial, prefix="new")


def list_step(request, incident, step):
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    kind = ROW_KINDS[step.slug]
    editing = _int(request.GET.get("edit"))
    edit_form = None
    if editing:
        row = kind.model.objects.filter(pk=editing, incident=incident).first()
        if row is None:
            editing = None
        else:
            edit_form = kind.form(incident, instance=row, prefix=f"row{row.pk}")
            edit_form.row_base = fingerprint(row, kind.fields)
    context = _rows_context(request, incident, kind, editing=editing, edit_form=edit_form)
    if kind.slug == "timeline":
        context["paste_form"] = PasteForm()
    return _respond(request, step, context)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _rows_response(
    request, incident, kind: RowKind, *, done=False, status=200, anchor="", **context_kw
):
    """After a row change (`done`): the updated list for htmx, back to the step for a plain
    post. Otherwise the list with the form that needs another look."""
    if done and not request.htmx:
        return redirect(_step_url(incident, kind.slug) + (f"#{anchor}" if anchor else ""))
    step = guided.get_step(kind.slug)
    context = _rows_context(request, incident, kind, saved_header=done, **context_kw)
    if kind.slug == "timeline" and "paste_form" not in context:
        context["paste_form"] = PasteForm()
    return _respond(request, step, context, status=status, partial="editor", progress=True)


@require_POST
def row_add(request, slug, kind):
    kind = _row_kind(kind)
    incident = get_editable_incident(request, slug)
    form = kind.form(incident, request.POST, prefix="new")
    _handle_dismiss_post(request, incident)
    if not form.is_valid():
        return _rows_response(request, incident, kind, add_form=form, focus="add")
    row = save_row(incident=incident, form=form, kind=kind)
    return _rows_response(
        request, incident, kind, done=True, anchor=f"{kind.slug}-{row.pk}", added=row.pk,
        focus_selector=f"#{ADD_FORM_IDS[kind.slug]} {FIRST_FIELD}",
    )  # fmt: skip


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def row_edit(request, slug, kind, pk):
    kind = _row_kind(kind)
    incident = get_editable_incident(request, slug)
    row = get_object_or_404(kind.model, pk=pk, incident=incident)
    step = guided.get_step(kind.slug)
    if request.method == "GET":
        if not wants_partial(request):
            return redirect(f"{_step_url(incident, kind.slug)}?edit={row.pk}#{kind.slug}-{row.pk}")
        blame_checker = Blame(incident)
        if request.GET.get("cancel"):
            row = next(r for r in kind.rows(incident) if r.pk == row.pk)
            row.findings = blame_checker.find(kind.blame_field, getattr(row, kind.text_attr))
            context = {
                "incident": incident,
                "row": row,
                "kind": kind,
                "blame": blame_checker,
                "focus_selector": f"#{kind.slug}-{row.pk} .row-actions a",
                **_frame(request, incident, step),
            }
            return _respond(request, step, context, partial="row")
        form = kind.form(incident, instance=row, prefix=f"row{row.pk}")
        form.row_base = fingerprint(row, kind.fields)
        context = {
            "incident": incident,
            "row": row,
            "edit_form": form,
            "kind": kind,
            "blame": blame_checker,
            "focus_selector": f"#row-form-{row.pk} {FIRST_FIELD}",
            **_frame(request, incident, step),
        }
        return _respond(request, step, context, partial="row-form")

    current_base = fingerprint(row, kind.fields)
    form = kind.form(incident, request.POST, instance=row, prefix=f"row{row.pk}")
    _handle_dismiss_post(request, incident)
    expected = request.POST.get("overwrite_base") or request.POST.get("row_base")
    form.row_base = request.POST.get("row_base", "")
    if not form.is_valid():
        return _rows_response(request, incident, kind, editing=row.pk, edit_form=form)
    try:
        save_row(incident=incident, form=form, kind=kind, expected=expected)
    except VersionConflict:
        theirs = next(r for r in kind.rows(incident) if r.pk == row.pk)
        form.row_base = request.POST.get("row_base", "")
        return _rows_response(
            request,
            incident,
            kind,
            status=409,
            editing=row.pk,
            edit_form=form,
            row_conflict={"theirs": theirs, "base": current_base},
        )
    return _rows_response(
        request, incident, kind, done=True, anchor=f"{kind.slug}-{row.pk}",
        focus_selector=f"#{kind.slug}-{row.pk} .row-actions a",
    )  # fmt: skip


@require_POST
def row_delete(request, slug, kind, pk):
    kind = _row_kind(kind)
    incident = get_editable_incident(request, slug)
    # Nothing an author wrote is lost by a wrong click: rows go to the trash, with Undo.
    row = kind.model.objects.filter(pk=pk, incident=incident).first()
    trashed = None
    if row is not None:
        try:
            trashed = undo.soft_delete(
                row, by=request.user, next_url=reverse("incident_edit", args=[incident.slug])
            )
        except undo.UndoError as error:
            return HttpResponse(error.message, status=409)
    response = _rows_response(
        request, incident, kind, done=True, anchor=f"{kind.slug}-list",
        focus_selector=f"#{kind.slug}-list-heading",
    )  # fmt: skip
    if trashed is None:
        return response
    if wants_partial(request) and response.status_code == 200:
        return undo.announce(request, trashed, response)
    undo.announce(request, trashed)
    return response


@require_POST
def timeline_move(request, slug, pk):
    incident = get_editable_incident(request, slug)
    direction = request.POST.get("direction")
    if direction not in ("up", "down"):
        return HttpResponse("Say up or down.", status=400)
    move_entry(incident=incident, entry_id=pk, direction=direction)
    return _rows_response(
        request, incident, ROW_KINDS["timeline"], done=True, anchor=f"timeline-{pk}", moved=pk,
        focus_selector=f"#timeline-{pk} button[data-move={direction}]||#timeline-{pk} .row-actions a",
    )  # fmt: skip


@require_POST
def timeline_paste_view(request, slug):
    """Preview a pasted block; add its entries only when every line parsed, or when the author
    chose to skip the bad lines. Nothing is saved by a preview."""
    incident = get_editable_incident(request, slug)
    kind = ROW_KINDS["timeline"]
    form = PasteForm(request.POST)
    if not form.is_valid():
        return _rows_response(request, incident, kind, paste_form=form, focus="paste")
    zone = timezone.get_current_timezone()
    default_day = timezone.localtime(incident.started_at or timezone.now(), zone).date()
    result = timeline_paste.parse(form.cleaned_data["text"], default_date=default_day, tz=zone)
    kinds = {}
    valid_kinds = set(TimelineEntry.Kind.values)
    for entry in result.entries:
        chosen = request.POST.get(f"kind-{entry.line}")
        if chosen in valid_kinds:
            kinds[entry.line] = chosen
    action = request.POST.get("action", "preview")
    wants_save = action in ("add", "add-skipping")
    skip_bad = action == "add-skipping"
    if wants_save and result.entries and (not result.errors or skip_bad):
        added = add_pasted_entries(incident=incident, entries=list(result.entries), kinds=kinds)
        skipped = len(result.errors)
        note = f"Added {added} {'entry' if added == 1 else 'entries'}"
        note += f"; skipped {skipped} line{'s' if skipped != 1 else ''}." if skipped else "."
        if not request.htmx:
            messages.success(request, note)
        return _rows_response(
            request, incident, kind, done=True, paste_note=note, anchor="timeline-list",
            focus_selector="#timeline-list-heading",
        )  # fmt: skip
    preview = {
        "entries": [{"parsed": e, "kind": kinds.get(e.line, e.kind)} for e in result.entries],
        "errors": result.errors,
        "refused": wants_save,  # asked to add while lines are bad, without skipping them
    }
    return _rows_response(
        request, incident, kind, paste_form=form, preview=preview, focus="preview"
    )


def review_step(request, incident, step):
    facts = gather_facts(incident)
    findings = _all_findings(incident)
    items = guided.checklist(facts)
    gaps = guided.open_gaps(items)
    error = ""
    if request.method == "POST":
        if request.POST.get("action") != "submit":
            error = "Choose “Submit for review”."
        elif gaps and not request.POST.get("accept_gaps"):
            error = (
                f"{len(gaps)} item{'s' if len(gaps) != 1 else ''} of the checklist "
                f"{'are' if len(gaps) != 1 else 'is'} still open. Fix them, or tick the box "
                "to submit anyway and let the reviewers help."
            )
        else:
            try:
                submit_for_review(incident=incident, by=request.user)
            except TransitionError as problem:
                error = str(problem)
            else:
                messages.success(request, "Submitted for review. Reviewers will see it now.")
                target = incident.get_absolute_url()
                return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
    context = {
        **_frame(request, incident, step, facts),
        "checklist": items,
        "gaps": gaps,
        "findings": findings,
        "findings_count": sum(len(group["findings"]) for group in findings),
        "submit_error": error,
        "can_submit": incident.status in (Incident.Status.DRAFT, Incident.Status.CHANGES_REQUESTED),
        "is_author": incident.is_author(request.user) or request.user.is_staff,
    }
    return _respond(request, step, context)


def _all_findings(incident: Incident) -> list[dict]:
    """Every open blame finding of the write-up, grouped by where it is, with a link there."""
    blame_checker = Blame(incident)
    groups = []

    def add(field, label, text, step, anchor):
        found = blame_checker.find(field, text)
        if found:
            url = _step_url(incident, step) + (f"#{anchor}" if anchor else "")
            groups.append({"label": label, "url": url, "findings": found})

    add("summary", "Summary", incident.summary, "basics", "summary-field")
    add("impact", "Impact", incident.impact, "impact", "impact-field")
    add("narrative", "The story", incident.narrative, "inside", "narrative-field")
    for answer in Answer.objects.filter(incident=incident).select_related("question"):
        add(
            f"answer-{answer.question_id}",
            answer.question.prompt,
            answer.text,
            "inside",
            f"answer-{answer.question_id}-field",
        )
    for entry in incident.timeline_entries.all():
        add(
            "timeline",
            f"Timeline, {timezone.localtime(entry.at):%H:%M}",
            entry.text,
            "timeline",
            f"timeline-{entry.pk}",
        )
    for factor in incident.factors.all():
        add(
            "factor",
            f"Factor: {_label(factor.description, 40)}",
            factor.description,
            "factors",
            f"factors-{factor.pk}",
        )
    for field, label in (
        ("went_well", "What went well"),
        ("lucky", "Where we got lucky"),
        ("lessons", "Lessons"),
    ):
        add(field, label, getattr(incident, field), "reflect", f"{field}-field")
    for item in incident.action_items.all():
        add(
            "action",
            f"Action item: {_label(item.title, 40)}",
            item.title,
            "actions",
            f"actions-{item.pk}",
        )
    return groups


STEP_HANDLERS = {
    "basics": basics_step,
    "impact": impact_step,
    "timeline": list_step,
    "inside": inside_step,
    "factors": list_step,
    "reflect": reflect_step,
    "actions": list_step,
    "review": review_step,
}


# --------------------------------------------------------------------------------------------
# Autosave and the blame checker
# --------------------------------------------------------------------------------------------


# The database refusing a write for a while — read-only, disk full, locked too long, gone —
# as opposed to a bug in a query, which still raises (a 500 to fix). PostgreSQL SQLSTATEs:
# read-only transaction, disk full, out of memory, too many connections, shutting down, and
# every connection exception (class 08). SQLite primary result codes: BUSY, LOCKED, READONLY,
# IOERR, FULL, CANTOPEN. The words are for errors that carry no code.
WRITE_REFUSED_SQLSTATES = {"25006", "53100", "53200", "53300", "57P01", "57P02", "57P03"}
WRITE_REFUSED_SQLITE_CODES = {5, 6, 8, 10, 13, 14}
WRITE_REFUSED_WORDS = (
    "readonly", "read-only", "read only", "disk is full", "disk full", "no space",
    "could not extend file", "database is locked", "connection", "server closed",
    "terminating", "unable to open database",
)  # fmt: skip
NOT_SAVED = (
    "Not saved: the database is not accepting changes. Your text is still here; we'll retry."
)
NOT_SAVED_HEADER = "X-Debrief-Not-Saved"  # write.js shows the message and tries again
AUTOSAVE_RETRY_SECONDS = 5


def _write_refused(error: Exception) -> bool:
    """Whether a database error means "not now" (retry later) rather than a bug."""
    if isinstance(error, InterfaceError):
        return True
    cause = error.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate:
        return sqlstate in WRITE_REFUSED_SQLSTATES or sqlstate.startswith("08")
    code = getattr(cause, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in WRITE_REFUSED_SQLITE_CODES
    text = str(error).lower()
    return any(word in text for word in WRITE_REFUSED_WORDS)


@require_POST
def autosave(request, slug):
    """Save one text field as the author types. 200 with "Saved 10:42" and the new version in
    a header; 409 with their text when the write-up changed since this page's version; 503
    with a short "not saved" when the database refuses writes (read-only, full): nothing is
    written, the text stays in the author's box and the page tries again."""
    incident = get_editable_incident(request, slug)
    name = request.POST.get("autosave", "")
    if not _is_autosave_field(name):
        return HttpResponse("Unknown field.", status=400)
    text = request.POST.get(name, "")
    if len(text) > 100_000:
        return HttpResponse("That text is too long to save.", status=413)
    try:
        save_text(
            incident=incident, name=name, text=text, expected_version=_posted_version(request)
        )
    except VersionConflict:
        fresh = Incident.objects.get(pk=incident.pk)
        context = {
            "incident": fresh,
            "name": name,
            "theirs": _saved_text(fresh, name),
            "version": fresh.version,
            "label": _field_label(name),
        }
        return HttpResponse(
            render_to_string("incidents/write/_conflict.html", context, request), status=409
        )
    except (ValidationError, ValueError):
        return HttpResponse("That text could not be saved.", status=400)
    except (DatabaseError, InterfaceError) as error:
        if not _write_refused(error):
            raise
        # A warning, not a traceback: the database saying no is an outage, not a bug.
        logger.warning("Autosave of %s on %s not saved: %s", name, slug, error)
        response = HttpResponse(
            render_to_string("incidents/write/_status.html", {"not_saved": NOT_SAVED}, request),
            status=503,
        )
        response["Retry-After"] = str(AUTOSAVE_RETRY_SECONDS)
        response[NOT_SAVED_HEADER] = "1"
        return response
    response = HttpResponse(
        render_to_string("incidents/write/_status.html", {"saved_at": timezone.now()}, request)
    )
    response[VERSION_HEADER] = str(incident.version)
    response[SAVED_HEADER] = "1"
    if "overwrite_version" in request.POST:
        response[FOCUS_HEADER] = f"#id_{name}"  # back to the text after "Keep mine"
    return response


def _is_autosave_field(name: str) -> bool:
    if name in AUTOSAVE_FIELDS:
        return True
    if name.startswith(guided.ANSWER_PREFIX):
        question_id = _int(name[len(guided.ANSWER_PREFIX) :])
        return question_id is not None and GuidedQuestion.objects.filter(pk=question_id).exists()
    return False


def _saved_text(incident: Incident, name: str) -> str:
    if name.startswith(guided.ANSWER_PREFIX):
        question_id = int(name[len(guided.ANSWER_PREFIX) :])
        answer = Answer.objects.filter(incident=incident, question_id=question_id).first()
        return answer.text if answer else ""
    return getattr(incident, name)


def _field_label(name: str) -> str:
    if name.startswith(guided.ANSWER_PREFIX):
        question = GuidedQuestion.objects.filter(pk=_int(name[len(guided.ANSWER_PREFIX) :]))
        return question.values_list("prompt", flat=True).first() or "this answer"
    return guided.FIELD_LABELS.get(name, name)


@require_POST
def blame_check(request, slug=None):
    """Findings for the text in one field, as the author types (never stored, never blocks).
    Without a slug: the new write-up's page, before there is an incident."""
    incident = get_editable_incident(request, slug) if slug else None
    field = request.POST.get("field", "")
    if not guided.is_checked_field(field):
        return HttpResponse("Unknown field.", status=400)
    text = request.POST.get(request.POST.get("source") or field, "")
    return _findings_response(request, incident, field, text[:20_000])


@require_POST
def blame_dismiss(request, slug):
    """Dismiss one finding. htmx: the field's findings again; plain: back to the step."""
    incident = get_editable_incident(request, slug)
    field = request.POST.get("dismiss_field", "")
    rule = request.POST.get("dismiss_rule", "")
    phrase = request.POST.get("dismiss_phrase", "")
    if not phrase and request.POST.get("dismiss"):
        parsed = guided.parse_dismiss_token(request.POST["dismiss"])
        if parsed:
            field, rule, phrase = parsed
    if not (guided.is_checked_field(field) and rule and phrase):
        return HttpResponse("Say which finding to dismiss.", status=400)
    dismiss_finding(incident=incident, field=field, rule=rule, phrase=phrase, by=request.user)
    if request.htmx:
        source = request.POST.get("source") or field
        return _findings_response(request, incident, field, request.POST.get(source, "")[:20_000])
    step = guided.step_of_field(field) or guided.FIRST_STEP.slug
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = _step_url(incident, step)
    return redirect(target)


def _findings_response(request, incident, field, text):
    findings = Blame(incident).find(field, text)
    return render(
        request,
        "incidents/write/_findings.html",
        {"findings": findings, "incident": incident, "live": True},
    )
