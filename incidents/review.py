"""The review of a write-up: comments, people, readers, the review meeting, notices by e-mail,
and the edit history as a per-field diff.

Writes are plain functions with keyword-only arguments, atomic, checked with
`lifecycle.require` (the role-by-action table) and `full_clean()` before saving. Views call
these; nothing here knows about requests.

Edit history uses django-simple-history (see review_models): it is maintained, plain tables
(portable between SQLite and PostgreSQL, which the project must support equally), records the
person from the request through its middleware or from `_history_user`, and tracks
many-to-many fields. django-pghistory would need PostgreSQL triggers and is not installed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import logging
import re
import zoneinfo
from collections import defaultdict
from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, send_mail
from django.db import models, transaction
from django.db.models import CharField, F, Q, Value
from django.db.models.functions import JSONObject
from django.tasks import task
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from . import undo
from .lifecycle import TransitionError, is_staff_member, may, require
from .models import (
    ActionItem,
    Answer,
    ContributingFactor,
    GuidedQuestion,
    Incident,
    Profile,
    Service,
    Tag,
    Team,
    TimelineEntry,
)
from .reminders import mail_server_unreachable
from .review_models import ReviewComment, ReviewMeeting, ReviewNotice, TrackedHistory

logger = logging.getLogger(__name__)
User = get_user_model()

__all__ = [
    "ROLE_GRANTS",
    "add_comment",
    "add_person",
    "cancel_meeting",
    "comment_threads",
    "delete_comment",
    "delete_incident",
    "deliver_pending_notices",
    "ensure_roles",
    "incident_history",
    "meeting_ics",
    "record_history",
    "remove_person",
    "reopen_comment",
    "resolve_comment",
    "schedule_meeting",
    "send_pending_notices",
    "set_visibility",
]


def display_name(user) -> str:
    if user is None:
        return "someone"
    return user.get_full_name() or user.username


# --- Roles as Django groups --------------------------------------------------------------

_ALL = ("add", "change", "delete", "view")
ROLE_GRANTS = {
    "Authors": {
        "incident": ("add", "change", "view"),
        "timelineentry": _ALL,
        "contributingfactor": _ALL,
        "actionitem": _ALL,
        "answer": ("add", "change", "view"),
        "reviewcomment": ("add", "view"),
        "reviewmeeting": ("add", "change", "view"),
    },
    "Reviewers": {
        "incident": ("view",),
        "reviewcomment": ("add", "change", "view"),
        "reviewmeeting": ("add", "change", "view"),
        "incidentroles": ("review_incident",),
    },
    "Staff": {
        "incident": _ALL,
        "timelineentry": _ALL,
        "contributingfactor": _ALL,
        "actionitem": _ALL,
        "answer": _ALL,
        "reviewcomment": _ALL,
        "reviewmeeting": _ALL,
        "trashentry": ("view",),
        "incidentroles": ("review_incident", "manage_any_incident", "restore_any_trash"),
    },
}


def ensure_roles() -> dict:
    """Create the role groups with their permissions where missing (idempotent). Migration 0004
    does the same; this is for databases flushed by tests or set up by hand."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    create_permissions(apps.get_app_config("incidents"), verbosity=0)
    groups = {}
    for name, grants in ROLE_GRANTS.items():
        group, _ = Group.objects.get_or_create(name=name)
        codenames = [
            action if "_" in action else f"{action}_{model}"
            for model, actions in grants.items()
            for action in actions
        ]
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="incidents", codename__in=codenames)
        )
        groups[name] = group
    return groups


def reviewer_candidates(incident: Incident, *, limit: int = 50):
    """People to suggest as reviewers: the "Reviewers" group and staff first, then the leads of
    the incident's teams. Anyone active may be requested; this only orders the suggestions."""
    authors = [a.pk for a in incident.people["authors"]]
    return (
        User.objects.filter(is_active=True)
        .filter(
            Q(groups__name__in=["Reviewers", "Staff"])
            | Q(is_staff=True)
            | Q(led_teams__incidents=incident)
        )
        .exclude(pk__in=authors)
        .distinct()
        .order_by("username")[:limit]
    )


# --- Edit history ------------------------------------------------------------------------


def record_history(
    instance, *, by=None, reason: str = "", history_type: str = "~", coalesce_within=None
):
    """Record the current state of `instance` in its edit history (who, why).

    Saves through the ORM are recorded by django-simple-history on their own. Call this after
    a write that sends no signal — a queryset `update()` such as `Incident.save_if_version` or
    a lifecycle move — so the history still shows it. Without `by`, the person comes from the
    request (simple-history's middleware).

    `coalesce_within` (a timedelta) is for autosave: when the latest record is the same
    person's, with the same reason, that recent, it is brought up to date instead of adding
    another, so the history shows one change per editing session rather than one per
    keystroke pause. Returns the historical record.
    """
    model = type(instance)._meta.concrete_model
    records = TrackedHistory.by_model[model]
    fresh = model._base_manager.get(pk=instance.pk)
    if by is not None:
        fresh._history_user = by
    reason = reason[:100]
    fresh._change_reason = reason
    if coalesce_within is not None and by is not None:
        last = model.history.filter(id=fresh.pk).order_by("-history_id").first()
        if (
            last is not None
            and last.history_type == history_type
            and last.history_user_id == by.pk
            and (last.history_change_reason or "") == reason
            and timezone.now() - last.history_date <= coalesce_within
        ):
            for field in records.fields_included(model):
                setattr(last, field.attname, getattr(fresh, field.attname))
            last.history_date = timezone.now()
            last.save()
            # The many-to-many snapshot stays: an autosave changes one text field, and a
            # change to services, teams or people is recorded as its own entry (so it would
            # be the latest record and we would not be here). Rewriting the seven snapshots
            # took 14 of an autosave's 26 queries.
            return last
    records.create_historical_record(fresh, history_type)
    return model.history.filter(id=fresh.pk).order_by("-history_id").first()


@dataclasses.dataclass
class FieldChange:
    label: str
    old: str
    new: str
    # For text: the word-level diff as (op, text) pairs, op in "same", "del", "ins".
    segments: list | None = None


@dataclasses.dataclass
class HistoryEvent:
    when: dt.datetime
    who: object
    action: str  # "created", "changed", "deleted"
    subject: str
    link: str
    reason: str
    changes: list
    first_known: bool = False  # the first record we have of something made before history


# Models whose history belongs to an incident, and the history column naming it.
HISTORY_SOURCES = (
    (Incident, "id"),
    (TimelineEntry, "incident_id"),
    (ContributingFactor, "incident_id"),
    (ActionItem, "incident_id"),
    (Answer, "incident_id"),
    (ReviewComment, "incident_id"),
    (ReviewMeeting, "incident_id"),
)
HIDDEN_FIELDS = {"id", "incident", "position", "parent", "created_at", "created_by"}


def _shown_fields(model) -> list:
    records = TrackedHistory.by_model[model]
    return [
        f
        for f in records.fields_included(model)
        if f.editable and f.name not in HIDDEN_FIELDS and not f.primary_key
    ]


def _history_rows(incident: Incident) -> list[dict]:
    """Every historical row of the incident and its children, in one UNION query: each row's
    tracked fields travel as one JSON object, so the page costs the same for any number of
    models and records."""
    queries = []
    for model, column in HISTORY_SOURCES:
        history_model = model.history.model
        fields = TrackedHistory.by_model[model].fields_included(model)
        queries.append(
            history_model.objects.filter(**{column: incident.pk})
            .order_by()
            .values(
                h_id=F("history_id"),
                h_model=Value(model._meta.model_name, output_field=CharField()),
                h_object=F("id"),
                h_date=F("history_date"),
                h_type=F("history_type"),
                h_user=F("history_user_id"),
                h_reason=F("history_change_reason"),
                h_data=JSONObject(**{f.attname: F(f.attname) for f in fields}),
            )
        )
    first, *rest = queries
    # Order by result columns: the default ordering of the first model names no column here.
    return list(first.union(*rest, all=True).order_by("h_date", "h_id"))


def _m2m_rows(incident: Incident) -> dict:
    """{(model name, history id): {field name: set of target ids}} in one UNION query."""
    queries = []
    for model, column in HISTORY_SOURCES:
        records = TrackedHistory.by_model[model]
        for field in records.get_m2m_fields_from_model(model):
            m2m_history = TrackedHistory.m2m_models[field]
            queries.append(
                m2m_history.objects.filter(**{f"history__{column}": incident.pk})
                .order_by()
                .values(
                    h_model=Value(model._meta.model_name, output_field=CharField()),
                    h_id=F("history_id"),
                    h_field=Value(field.name, output_field=CharField()),
                    h_target=F(f"{field.m2m_reverse_field_name()}_id"),
                )
            )
    links = defaultdict(lambda: defaultdict(set))
    if queries:
        first, *rest = queries
        for row in first.union(*rest, all=True).order_by("h_id"):
            links[(row["h_model"], row["h_id"])][row["h_field"]].add(row["h_target"])
    return links


def _to_python(field, raw):
    if raw is None:
        return None
    if isinstance(field, models.DateTimeField):
        value = field.to_python(raw) if isinstance(raw, str) else raw
        if value is not None and timezone.is_naive(value):
            value = timezone.make_aware(value, dt.UTC)
        return value
    if isinstance(field, models.BooleanField):
        return bool(raw)
    if isinstance(field, models.DateField):
        return field.to_python(raw)
    return raw


_WORDS = re.compile(r"\s+|[^\s]+")


def _word_diff(old: str, new: str, *, context: int = 8) -> list:
    """Word-level diff as (op, text) pairs; long unchanged stretches are cut to `context` words
    either side, so a one-word fix in a long narrative reads as one line."""
    a, b = _WORDS.findall(old or ""), _WORDS.findall(new or "")
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    segments = []
    for index, (op, i1, i2, j1, j2) in enumerate(opcodes):
        if op == "equal":
            words = a[i1:i2]
            keep = context * 2  # words and the spaces between them
            if len(words) > keep * 2 + 1:
                head = words[:keep] if index > 0 else []
                tail = words[-keep:] if index < len(opcodes) - 1 else []
                text = "".join(head) + " … " + "".join(tail)
                segments.append(("same", text))
            else:
                segments.append(("same", "".join(words)))
            continue
        if op in ("delete", "replace"):
            segments.append(("del", "".join(a[i1:i2])))
        if op in ("insert", "replace"):
            segments.append(("ins", "".join(b[j1:j2])))
    return segments


class _Names:
    """Readable names for ids met in the history, loaded in two queries."""

    def __init__(self):
        self.users, self.things = {}, {}

    def load(self, user_ids: set, thing_ids: dict) -> None:
        if user_ids:
            self.users = {u.pk: u for u in User.objects.filter(pk__in=user_ids)}
        queries = []
        for model, name_field in ((Team, "name"), (Service, "name"), (Tag, "name"),
                                  (GuidedQuestion, "prompt")):  # fmt: skip
            ids = thing_ids.get(model)
            if ids:
                queries.append(
                    model.objects.filter(pk__in=ids)
                    .order_by()
                    .values(
                        n_model=Value(model._meta.model_name, output_field=CharField()),
                        n_pk=F("pk"),
                        n_name=F(name_field),
                    )
                )
        if queries:
            first, *rest = queries
            for row in first.union(*rest, all=True).order_by("n_pk"):
                self.things[(row["n_model"], row["n_pk"])] = row["n_name"]

    def user(self, pk) -> str:
        user = self.users.get(pk)
        return display_name(user) if user else ("—" if pk is None else "a removed account")

    def thing(self, model, pk) -> str:
        return self.things.get(
            (model._meta.model_name, pk), f"a removed {model._meta.verbose_name}"
        )


def _subject(model, data: dict, names: _Names) -> tuple[str, str]:
    """What a record is about, for people, and where it is on the incident page."""
    pk = data.get("id")
    if model is Incident:
        return "Write-up", ""
    if model is TimelineEntry:
        at = _to_python(TimelineEntry._meta.get_field("at"), data.get("at"))
        kind = (
            TimelineEntry.Kind(data["kind"]).label
            if data.get("kind") in TimelineEntry.Kind.values
            else ""
        )
        when = date_format(timezone.localtime(at), "j M H:i") if at else ""
        return f"Timeline entry {when} · {kind}".strip(" ·"), f"entry-{pk}"
    if model is ContributingFactor:
        category = dict(ContributingFactor._meta.get_field("category").choices).get(
            data.get("category"), ""
        )
        return f"Contributing factor · {category}", f"factor-{pk}"
    if model is ActionItem:
        return f"Action item “{data.get('title', '')}”", f"action-{pk}"
    if model is Answer:
        return f"Answer to “{names.thing(GuidedQuestion, data.get('question_id'))}”", "inside"
    if model is ReviewComment:
        anchor = ReviewComment.Anchor(data.get("anchor") or "incident").label
        return f"Review comment ({anchor.lower()})", f"comment-{pk}"
    if model is ReviewMeeting:
        return "Review meeting", "review-meeting"
    return model._meta.verbose_name.capitalize(), ""


def _format(field, value, names: _Names, ref_label=None) -> str:
    if value is None or value == "":
        return "—"
    if field.is_relation and field.many_to_one:
        if field.related_model is User:
            return names.user(value)
        if field.related_model in (Team, Service, Tag, GuidedQuestion):
            return names.thing(field.related_model, value)
        if ref_label is not None and field.related_model in (
            TimelineEntry,
            ContributingFactor,
            ActionItem,
        ):
            return ref_label(field.related_model, value)
        return f"#{value}"
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(field, models.BooleanField):
        return "Yes" if value else "No"
    if isinstance(field, models.DateTimeField):
        return date_format(timezone.localtime(value), "j M Y, H:i")
    if isinstance(field, models.DateField):
        return date_format(value, "j M Y")
    return str(value)


M2M_TARGETS = {
    "authors": User,
    "reviewers": User,
    "visible_users": User,
    "attendees": User,
    "teams": Team,
    "visible_teams": Team,
    "services": Service,
    "tags": Tag,
}


def incident_history(incident: Incident) -> list[HistoryEvent]:
    """Every recorded change to the incident and its children, newest first, as events with
    per-field old → new values. A fixed number of queries whatever the history's size."""
    rows = _history_rows(incident)
    links = _m2m_rows(incident)
    by_name = {model._meta.model_name: model for model, _ in HISTORY_SOURCES}

    # Collect the ids that need names.
    user_ids, thing_ids = set(), defaultdict(set)
    for row in rows:
        user_ids.add(row["h_user"])
        model = by_name[row["h_model"]]
        for field in _shown_fields(model):
            if field.is_relation and field.many_to_one:
                value = row["h_data"].get(field.attname)
                if value is None:
                    continue
                if field.related_model is User:
                    user_ids.add(value)
                else:
                    thing_ids[field.related_model].add(value)
        if model is Answer:
            thing_ids[GuidedQuestion].add(row["h_data"].get("question_id"))
    for fields in links.values():
        for name, targets in fields.items():
            if M2M_TARGETS.get(name) is User:
                user_ids |= targets
            elif name in M2M_TARGETS:
                thing_ids[M2M_TARGETS[name]] |= targets
    names = _Names()
    names.load(user_ids - {None}, thing_ids)

    # Latest label of every child, for references such as a factor's evidence.
    latest, gone = {}, set()
    for row in rows:  # oldest first
        key = (row["h_model"], row["h_object"])
        latest[key] = row["h_data"]
        if row["h_type"] == "-":
            gone.add(key)
        else:
            gone.discard(key)

    def ref_label(model, pk):
        data = latest.get((model._meta.model_name, pk))
        return _subject(model, data, names)[0] if data else f"a removed {model._meta.verbose_name}"

    def m2m_label(name, pk):
        target = M2M_TARGETS.get(name)
        if target is User:
            return names.user(pk)
        if target is not None:
            return names.thing(target, pk)
        if name == "evidence":
            return ref_label(TimelineEntry, pk)
        if name == "addresses":
            return ref_label(ContributingFactor, pk)
        return f"#{pk}"

    incident_url = incident.get_absolute_url()
    review_url = reverse("review_page", args=[incident.slug])
    grouped = defaultdict(list)
    for row in rows:
        grouped[(row["h_model"], row["h_object"])].append(row)

    events = []
    for (model_name, _object_id), records in grouped.items():
        model = by_name[model_name]
        shown = _shown_fields(model)
        m2m_names = [
            f.name for f in TrackedHistory.by_model[model].get_m2m_fields_from_model(model)
        ]
        records.sort(key=lambda r: (r["h_date"], r["h_id"]))
        previous = None
        for record in records:
            data = record["h_data"]
            subject, fragment = _subject(model, data, names)
            action = {"+": "created", "~": "changed", "-": "deleted"}[record["h_type"]]
            changes = []
            first_known = previous is None and action == "changed"
            if action != "deleted" and not first_known:
                old_data = previous["h_data"] if previous else {}
                for field in shown:
                    old = _to_python(field, old_data.get(field.attname))
                    new = _to_python(field, data.get(field.attname))
                    if old == new or (previous is None and new in (None, "", False)):
                        continue
                    change = FieldChange(
                        label=str(field.verbose_name).capitalize(),
                        old=_format(field, old, names, ref_label),
                        new=_format(field, new, names, ref_label),
                    )
                    if isinstance(field, models.TextField) and old and new:
                        change.segments = _word_diff(old, new)
                    changes.append(change)
                old_links = links.get((model_name, previous["h_id"]), {}) if previous else {}
                new_links = links.get((model_name, record["h_id"]), {})
                for name in m2m_names:
                    before, after = old_links.get(name, set()), new_links.get(name, set())
                    if before == after:
                        continue
                    field = model._meta.get_field(name)
                    changes.append(
                        FieldChange(
                            label=str(field.verbose_name).capitalize(),
                            old=", ".join(sorted(m2m_label(name, pk) for pk in before)) or "—",
                            new=", ".join(sorted(m2m_label(name, pk) for pk in after)) or "—",
                        )
                    )
            previous = record
            reason = record["h_reason"] or ""
            if action == "changed" and not changes and not reason and not first_known:
                continue  # a save that changed nothing people can see
            link = ""
            if (model_name, record["h_object"]) not in gone:
                page = review_url if model in (ReviewComment, ReviewMeeting) else incident_url
                link = page + (f"#{fragment}" if fragment else "")
            when = record["h_date"]
            events.append(
                HistoryEvent(
                    when=when if timezone.is_aware(when) else timezone.make_aware(when, dt.UTC),
                    who=names.users.get(record["h_user"]),
                    action=action,
                    subject=subject,
                    link=link,
                    reason=reason,
                    changes=changes,
                    first_known=first_known,
                )
            )
    events.sort(key=lambda e: e.when, reverse=True)
    return events


# --- Notices (e-mail after commit, through Django's tasks) -------------------------------


def absolute(url: str) -> str:
    return f"{settings.DEBRIEF_BASE_URL}{url}"


def _recipients(users, *, exclude=None) -> list:
    seen, found = set(), []
    for user in users:
        if user is None or not user.is_active or not user.email or user.pk in seen:
            continue
        if exclude is not None and user.pk == exclude.pk:
            continue
        seen.add(user.pk)
        found.append(user)
    return found


def _queue_notice(*, kind, key, incident, recipient, subject, template, context, ics=""):
    """Make the notice now, in the caller's transaction, so it is kept with the change it
    announces. Returns it when it is new (the caller sends it with `_send_after_commit`), None
    when the key already had one."""
    # Times in the e-mail are in the recipient's zone, not in the zone of whoever acted.
    zone = Profile.objects.filter(user=recipient).values_list("timezone", flat=True).first()
    try:
        tzinfo = zoneinfo.ZoneInfo(zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tzinfo = dt.UTC
    with timezone.override(tzinfo):
        body = render_to_string(template, {**context, "recipient": recipient, "incident": incident})
    notice, created = ReviewNotice.objects.get_or_create(
        key=key[:200],
        defaults={"kind": kind, "incident": incident, "recipient": recipient,
                  "subject": subject[:300], "body": body, "ics": ics},
    )  # fmt: skip
    return notice if created else None


def _send_after_commit(notices) -> None:
    """Send the notices of one change after its commit, as one task: when the mail server
    cannot be reached the rest are not tried (each try could wait for the SMTP timeout), and
    `send_review_notices` delivers them later."""
    ids = [notice.pk for notice in notices if notice is not None]
    if ids:
        # robust: a broken queue or mail server is logged, never undoes the change itself.
        transaction.on_commit(partial(send_review_notice_batch.enqueue, ids), robust=True)


MOVE_NOTICES = {
    "submit": (
        ReviewNotice.Kind.REVIEW_REQUESTED,
        "Review requested: {title}",
        "emails/review_requested.txt",
    ),
    "reopen": (
        ReviewNotice.Kind.REVIEW_REQUESTED,
        "Reopened for review: {title}",
        "emails/review_requested.txt",
    ),
    "request_changes": (
        ReviewNotice.Kind.CHANGES_REQUESTED,
        "Changes requested: {title}",
        "emails/review_changes_requested.txt",
    ),
    "publish": (
        ReviewNotice.Kind.PUBLISHED,
        "Approved and published: {title}",
        "emails/review_published.txt",
    ),
}


def announce_move(*, incident: Incident, move: str, by, note: str, event) -> None:
    incident.forget_people()
    people = incident.people
    if move in ("submit", "reopen"):
        recipients = _recipients(people["reviewers"], exclude=by)
    elif move == "request_changes":
        recipients = _recipients(people["authors"], exclude=by)
    else:
        recipients = _recipients([*people["authors"], *people["reviewers"]], exclude=by)
    kind, subject, template = MOVE_NOTICES[move]
    notices = []
    for recipient in recipients:
        notice = _queue_notice(
            kind=kind,
            key=f"{move}:{event.history_id}:{recipient.pk}",
            incident=incident,
            recipient=recipient,
            subject=subject.format(title=incident.title),
            template=template,
            context={"by": by, "note": note, "move": move,
                     "url": absolute(reverse("review_page", args=[incident.slug]))},
        )  # fmt: skip
        notices.append(notice)
    _send_after_commit(notices)


class NoticeNotSent(Exception):
    """The mail backend did not accept a review notice."""


def _deliver_notice(notice_id: int) -> bool:
    """Send one notice at most once: the row is claimed before the mail goes out; a failure
    releases the claim (keeping the error) so a later retry can deliver it, and is raised.
    Returns False when the notice was already sent, or is being sent by someone else."""
    claimed = ReviewNotice.objects.filter(pk=notice_id, sent_at__isnull=True).update(
        sent_at=timezone.now(), attempts=F("attempts") + 1
    )
    if not claimed:
        return False
    notice = ReviewNotice.objects.select_related("recipient").get(pk=notice_id)
    try:
        if notice.ics:
            message = EmailMessage(notice.subject, notice.body, None, [notice.recipient.email])
            method = "CANCEL" if "METHOD:CANCEL" in notice.ics else "REQUEST"
            message.attach("invite.ics", notice.ics, f"text/calendar; method={method}")
            accepted = message.send()
        else:
            accepted = send_mail(notice.subject, notice.body, None, [notice.recipient.email])
        # A backend configured to fail silently answers 0: not sent, so it stays for a retry.
        if accepted != 1:
            raise NoticeNotSent(
                f"The mail backend did not accept the message to {notice.recipient.email}."
            )
    except Exception as error:
        ReviewNotice.objects.filter(pk=notice_id).update(
            sent_at=None, last_error=str(error)[:500] or type(error).__name__
        )
        logger.warning("Review notice %s not sent: %s", notice_id, error)
        raise
    if notice.last_error:
        ReviewNotice.objects.filter(pk=notice_id).update(last_error="")
    return True


@task()
def send_review_notice(notice_id: int) -> str:
    """Send one notice at most once (see `_deliver_notice`)."""
    return "sent" if _deliver_notice(notice_id) else "already sent"


@task()
def send_review_notice_batch(notice_ids: list[int]) -> str:
    """The notices of one change, in order. Once the mail server proves unreachable the rest
    are not tried: they are marked with the reason and `send_review_notices` sends them.

    A failure is not raised: it is logged (a warning, without a traceback — the mail server
    being down is not a bug) and kept on the notice, and the retry is the command's job."""
    sent = failed = 0
    for index, notice_id in enumerate(notice_ids):
        try:
            sent += _deliver_notice(notice_id)
        except Exception as error:
            failed += 1
            if mail_server_unreachable(error):
                ReviewNotice.objects.filter(
                    pk__in=notice_ids[index + 1 :], sent_at__isnull=True
                ).update(last_error=f"Not tried: the mail server was unreachable ({error})"[:500])
                break
    unsent = len(notice_ids) - sent
    return f"{sent} sent" + (f", {unsent} left for send_review_notices" if failed else "")


@dataclasses.dataclass
class NoticeRun:
    sent: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)
    not_tried: int = 0  # left for the next run because the mail server is unreachable


def deliver_pending_notices(*, older_than: dt.timedelta = dt.timedelta(minutes=5)) -> NoticeRun:
    """What `manage.py send_review_notices` does: send every notice still unsent whose first
    try failed (or was put off because the mail server was down), and any other older than
    `older_than` (its task was lost). Each goes out at most once, even with a run or a task
    at the same time. Stops early, leaving the rest unsent, when the mail server cannot be
    reached."""
    result = NoticeRun()
    pending = list(
        ReviewNotice.objects.filter(sent_at__isnull=True)
        .filter(~Q(last_error="") | Q(created_at__lt=timezone.now() - older_than))
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )
    for index, notice_id in enumerate(pending):
        try:
            result.sent += _deliver_notice(notice_id)
        except Exception as error:  # one bad address must not stop the others
            result.failures.append(f"notice {notice_id}: {error}")
            if mail_server_unreachable(error):
                result.not_tried = len(pending) - index - 1
                break
    return result


def send_pending_notices(*, older_than: dt.timedelta = dt.timedelta(minutes=5)) -> int:
    """Retry notices that never went out (mail server down, queue lost); returns how many were
    sent now. Safe to run often."""
    return deliver_pending_notices(older_than=older_than).sent


# --- Comments ------------------------------------------------------------------------------


def comment_threads(incident: Incident, *, show: str = "open") -> list[ReviewComment]:
    """Threads with their replies: two queries whatever their number."""
    threads = (
        ReviewComment.objects.filter(incident=incident)
        .threads()
        .select_related("author", "resolved_by", "timeline_entry", "factor", "action_item")
        .prefetch_related(
            models.Prefetch(
                "replies",
                queryset=ReviewComment.objects.select_related("author").order_by(
                    "created_at", "id"
                ),
            )
        )
    )
    if show == "open":
        threads = threads.filter(resolved_at__isnull=True)
    return list(threads)


def anchor_choices(incident: Incident) -> list:
    """The parts of a write-up a comment can be about, grouped for a <select>."""
    sections = [
        (value, label)
        for value, label in ReviewComment.Anchor.choices
        if value not in ReviewComment.TARGETS
    ]
    groups = [("Sections", sections)]
    entries = [
        (
            f"timeline_entry:{e.pk}",
            f"{timezone.localtime(e.at):%d %b %H:%M} · {e.get_kind_display()} — {e.text[:50]}",
        )
        for e in incident.timeline_entries.only("pk", "at", "kind", "text")
    ]
    factors = [
        (f"factor:{f.pk}", f"{f.get_category_display()} — {f.description[:50]}")
        for f in incident.factors.only("pk", "category", "description")
    ]
    actions = [
        (f"action_item:{a.pk}", a.title[:70]) for a in incident.action_items.only("pk", "title")
    ]
    for label, options in (
        ("Timeline", entries),
        ("Contributing factors", factors),
        ("Action items", actions),
    ):
        if options:
            groups.append((label, options))
    return groups


def _resolve_anchor(incident: Incident, anchor: str) -> dict:
    """'impact' or 'factor:12' → the comment's anchor fields; the row must be the incident's."""
    kind, _, raw_pk = (anchor or "incident").partition(":")
    if kind not in ReviewComment.Anchor.values:
        raise ValidationError({"anchor": "Choose what the comment is about."})
    fields = {"anchor": kind}
    if kind in ReviewComment.TARGETS:
        related = {"timeline_entry": incident.timeline_entries, "factor": incident.factors,
                   "action_item": incident.action_items}[kind]  # fmt: skip
        target = related.filter(pk=raw_pk).first() if raw_pk.isdigit() else None
        if target is None:
            raise ValidationError({"anchor": "That part of the write-up is not there any more."})
        fields[ReviewComment.TARGETS[kind]] = target
    return fields


@transaction.atomic
def add_comment(
    *, incident: Incident, by, body: str, anchor: str = "incident", parent=None
) -> ReviewComment:
    """A new thread about `anchor`, or a reply to `parent` (replying reopens a resolved thread)."""
    require(by, "comment", incident)
    if not (body or "").strip():
        raise ValidationError({"body": "Write something first."})
    if parent is not None:
        if parent.incident_id != incident.pk:
            raise ValidationError({"parent": "That comment belongs to another write-up."})
        root = parent if parent.parent_id is None else parent.parent
        fields = {"anchor": root.anchor, "timeline_entry_id": root.timeline_entry_id,
                  "factor_id": root.factor_id, "action_item_id": root.action_item_id}  # fmt: skip
        if root.resolved_at is not None:
            root.resolved_at, root.resolved_by = None, None
            root._history_user, root._change_reason = by, "Reopened by a reply"
            root.save(update_fields=["resolved_at", "resolved_by"])
    else:
        root, fields = None, _resolve_anchor(incident, anchor)
    comment = ReviewComment(incident=incident, parent=root, author=by, body=body.strip(), **fields)
    comment.full_clean()
    comment._history_user = by
    comment.save()
    return comment


def _thread_root(comment: ReviewComment) -> ReviewComment:
    return comment if comment.parent_id is None else comment.parent


@transaction.atomic
def resolve_comment(*, comment: ReviewComment, by) -> ReviewComment:
    require(by, "resolve_comment", comment.incident)
    root = _thread_root(comment)
    if root.resolved_at is None:
        root.resolved_at, root.resolved_by = timezone.now(), by
        root._history_user, root._change_reason = by, "Resolved"
        root.save(update_fields=["resolved_at", "resolved_by"])
    return root


@transaction.atomic
def reopen_comment(*, comment: ReviewComment, by) -> ReviewComment:
    require(by, "resolve_comment", comment.incident)
    root = _thread_root(comment)
    if root.resolved_at is not None:
        root.resolved_at, root.resolved_by = None, None
        root._history_user, root._change_reason = by, "Reopened"
        root.save(update_fields=["resolved_at", "resolved_by"])
    return root


def may_delete_comment(user, comment: ReviewComment) -> bool:
    return bool(user and user.is_authenticated) and (
        comment.author_id == user.pk or is_staff_member(user)
    )


def delete_comment(*, comment: ReviewComment, by, next_url: str = ""):
    """To the trash, with its replies. Only its writer (or staff) may."""
    if not may_delete_comment(by, comment):
        raise TransitionError(
            "Only the person who wrote a comment can delete it.", code="forbidden"
        )
    replies = comment.replies.count() if comment.parent_id is None else 0
    label = "Comment" + (
        f" and its {replies} repl{'ies' if replies != 1 else 'y'}" if replies else ""
    )
    return undo.soft_delete(comment, by=by, label=label, next_url=next_url)


# --- People and readers ------------------------------------------------------------------

ROLE_FIELDS = {"author": "authors", "reviewer": "reviewers"}


def find_users(names: str) -> tuple[list, list[str]]:
    """'ana, bo' → (active users found, names not found). Usernames, any letter case."""
    wanted = list(dict.fromkeys(n for n in re.split(r"[\s,;]+", names or "") if n))[:50]
    if not wanted:
        return [], []
    query = Q()
    for name in wanted:
        query |= Q(username__iexact=name)
    found = {u.username.lower(): u for u in User.objects.filter(query, is_active=True)}
    users = list(
        {found[n.lower()].pk: found[n.lower()] for n in wanted if n.lower() in found}.values()
    )
    return users, [n for n in wanted if n.lower() not in found]


@transaction.atomic
def add_person(*, incident: Incident, by, role: str, user) -> None:
    """Add an author or request a reviewer. A reviewer added while the write-up is in review
    is asked by e-mail at once."""
    require(by, "manage_people", incident)
    if role not in ROLE_FIELDS:
        raise ValidationError({"role": "Choose author or reviewer."})
    name = display_name(user)
    if not user.is_active:
        raise ValidationError({"username": f"{name}'s account is not active."})
    if role == "reviewer" and incident.is_author(user):
        raise ValidationError(
            {"username": f"{name} is an author of this write-up; someone else should review it."}
        )
    if role == "author" and incident.is_reviewer(user):
        raise ValidationError(
            {"username": f"{name} reviews this write-up; remove them as reviewer first."}
        )
    if (role == "author" and incident.is_author(user)) or (
        role == "reviewer" and incident.is_reviewer(user)
    ):
        raise ValidationError(
            {"username": f"{name} is already {'an author' if role == 'author' else 'a reviewer'}."}
        )
    relation = getattr(incident, ROLE_FIELDS[role])
    incident.skip_history_when_saving = True  # one history record below, with a reason
    try:
        relation.add(user)
    finally:
        del incident.skip_history_when_saving
    incident.forget_people()
    record_history(incident, by=by, reason=f"Added {role} {name}")
    if role == "reviewer" and incident.status == Incident.Status.IN_REVIEW and _recipients([user]):
        link = relation.through.objects.get(incident_id=incident.pk, user_id=user.pk)
        notice = _queue_notice(
            kind=ReviewNotice.Kind.REVIEW_REQUESTED,
            key=f"reviewer_added:{link.pk}:{user.pk}",
            incident=incident,
            recipient=user,
            subject=f"Review requested: {incident.title}",
            template="emails/review_requested.txt",
            context={"by": by, "note": "", "move": "submit",
                     "url": absolute(reverse("review_page", args=[incident.slug]))},
        )  # fmt: skip
        _send_after_commit([notice])


def remove_person(*, incident: Incident, by, role: str, user, next_url: str = ""):
    """Remove an author or a reviewer — to the trash, so Undo puts them back."""
    require(by, "manage_people", incident)
    if role not in ROLE_FIELDS:
        raise ValidationError({"role": "Choose author or reviewer."})
    relation = getattr(incident, ROLE_FIELDS[role])
    link = relation.through.objects.filter(incident_id=incident.pk, user_id=user.pk).first()
    if link is None:
        raise ValidationError(
            {
                "username": f"{display_name(user)} is not {'an author' if role == 'author' else 'a reviewer'}."
            }
        )
    if role == "author" and len(incident.people["authors"]) <= 1:
        raise ValidationError({"username": "A write-up needs at least one author."})
    entry = undo.soft_delete(
        link, by=by, label=f"{display_name(user)} as {role}", next_url=next_url
    )
    incident.forget_people()
    return entry


@transaction.atomic
def set_visibility(*, incident: Incident, by, visibility: str, teams=(), users=()) -> None:
    """Who may read the write-up: everyone, listed teams, or named people. Authors, reviewers
    and staff always can."""
    require(by, "set_visibility", incident)
    if visibility not in Incident.Visibility.values:
        raise ValidationError({"visibility": "Choose who may read it."})
    teams, users = list(teams), list(users)
    if visibility == Incident.Visibility.TEAMS and not teams:
        raise ValidationError({"visible_teams": "Choose at least one team."})
    if visibility == Incident.Visibility.PEOPLE and not users:
        raise ValidationError({"visible_users": "Name at least one person."})
    if visibility == Incident.Visibility.EVERYONE:
        teams, users = [], []
    Incident.objects.filter(pk=incident.pk).update(visibility=visibility, updated_at=timezone.now())
    incident.visibility = visibility
    incident.skip_history_when_saving = True
    try:
        incident.visible_teams.set(teams)
        incident.visible_users.set(users)
    finally:
        del incident.skip_history_when_saving
    record_history(
        incident, by=by, reason=f"Readers: {Incident.Visibility(visibility).label.lower()}"
    )


def delete_incident(*, incident: Incident, by, confirm_slug: str, next_url: str = ""):
    """The whole write-up to the trash; the author types its slug to confirm."""
    require(by, "delete_incident", incident)
    if (confirm_slug or "").strip() != incident.slug:
        raise ValidationError({"confirm_slug": f"Type {incident.slug} to confirm."})
    return undo.soft_delete(
        incident, by=by, label=f"Write-up “{incident.title}”", next_url=next_url
    )


# --- The review meeting ------------------------------------------------------------------


def meeting_ics(meeting: ReviewMeeting, *, method: str = "REQUEST") -> bytes:
    """An iCalendar invitation. Same UID for the life of the meeting; SEQUENCE goes up with
    every change, so calendar programs replace the event instead of adding a second one."""
    from icalendar import Calendar, Event, vCalAddress, vText

    incident = meeting.incident
    calendar = Calendar()
    calendar.add("prodid", "-//Debrief//Review meeting//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", meeting.uid)
    event.add("sequence", meeting.sequence)
    event.add("dtstamp", timezone.now())
    event.add("dtstart", meeting.starts_at)
    event.add("dtend", meeting.ends_at)
    event.add("summary", f"Incident review: {incident.title}")
    link = absolute(incident.get_absolute_url())
    event.add(
        "description",
        f"Blameless review of “{incident.title}”.\n{link}\n\n{meeting.agenda}".strip(),
    )
    event.add("url", link)
    if meeting.location:
        event.add("location", meeting.location)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    if meeting.facilitator and meeting.facilitator.email:
        organizer = vCalAddress(f"mailto:{meeting.facilitator.email}")
        organizer.params["cn"] = vText(display_name(meeting.facilitator))
        event["organizer"] = organizer
    for person in meeting.attendees.all():
        if not person.email:
            continue
        attendee = vCalAddress(f"mailto:{person.email}")
        attendee.params["cn"] = vText(display_name(person))
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        attendee.params["partstat"] = vText("NEEDS-ACTION")
        event.add("attendee", attendee, encode=0)
    calendar.add_component(event)
    return calendar.to_ical()


def _meeting_notices(meeting: ReviewMeeting, *, by, people, method: str, what: str) -> list:
    """The invitations (or cancellations) to `people`; returns the new notices to send."""
    ics = meeting_ics(meeting, method=method).decode()
    incident = meeting.incident
    notices = []
    for person in _recipients(people):
        notices.append(_queue_notice(
            kind=ReviewNotice.Kind.MEETING,
            key=f"meeting:{meeting.uid}:{meeting.sequence}:{method}:{person.pk}",
            incident=incident,
            recipient=person,
            subject=f"{what}: review of {incident.title}",
            template="emails/review_meeting.txt",
            context={"by": by, "meeting": meeting, "what": what, "method": method,
                     "url": absolute(reverse("review_page", args=[incident.slug]))},
            ics=ics,
        ))  # fmt: skip
    return notices


def _meeting_state(meeting: ReviewMeeting) -> tuple:
    return (meeting.starts_at, meeting.duration, meeting.location, meeting.facilitator_id,
            meeting.agenda)  # fmt: skip


@transaction.atomic
def schedule_meeting(
    *, incident: Incident, by, starts_at, duration: int = 60, location: str = "", facilitator,
    attendees=(), agenda: str = "",
) -> ReviewMeeting:  # fmt: skip
    """Plan the review meeting, or change it. Attendees (and the facilitator) get an invitation;
    after a change an updated one (same UID, higher SEQUENCE); people taken off the list get
    a cancellation. Attendees must be able to read the write-up."""
    require(by, "schedule_meeting", incident)
    attendees = list({u.pk: u for u in attendees}.values())
    outsiders = [
        display_name(u) for u in [*attendees, facilitator]
        if u is not None and not incident.can_view(u)
    ]  # fmt: skip
    if outsiders:
        raise ValidationError(
            {"attendees": f"{', '.join(sorted(set(outsiders)))} may not read this write-up. "
             "Add them to its readers first."}
        )  # fmt: skip
    meeting = ReviewMeeting.objects.select_for_update().filter(incident=incident).first()
    creating = meeting is None
    if creating:
        meeting = ReviewMeeting(incident=incident, created_by=by)
        before, before_people = None, set()
    else:
        before, before_people = (
            _meeting_state(meeting),
            set(meeting.attendees.values_list("pk", flat=True)),
        )
    meeting.starts_at, meeting.duration, meeting.location = (
        starts_at,
        duration,
        (location or "").strip(),
    )
    meeting.facilitator, meeting.agenda = facilitator, (agenda or "").strip()
    after_people = {u.pk for u in attendees}
    if not creating and before == _meeting_state(meeting) and before_people == after_people:
        return meeting  # nothing changed: no new invitation
    if not creating:
        meeting.sequence += 1
    meeting.full_clean()
    # One history record per change, taken after the attendees are set, so it lists them.
    meeting.save_without_historical_record()
    meeting.skip_history_when_saving = True
    try:
        meeting.attendees.set(attendees)
    finally:
        del meeting.skip_history_when_saving
    record_history(meeting, by=by, reason="Scheduled" if creating else "Changed",
                   history_type="+" if creating else "~")  # fmt: skip
    people = [*attendees, facilitator]
    what = "Review meeting scheduled" if creating else "Review meeting changed"
    notices = _meeting_notices(meeting, by=by, people=people, method="REQUEST", what=what)
    dropped = [u for u in User.objects.filter(pk__in=before_people - after_people)]
    if dropped:
        notices += _meeting_notices(
            meeting, by=by, people=dropped, method="CANCEL", what="You are no longer invited"
        )
    _send_after_commit(notices)
    return meeting


@transaction.atomic
def cancel_meeting(*, incident: Incident, by, next_url: str = ""):
    """Cancel the meeting (to the trash; Undo re-sends the invitation). Attendees are told."""
    require(by, "schedule_meeting", incident)
    meeting = ReviewMeeting.objects.select_for_update().filter(incident=incident).first()
    if meeting is None:
        raise ValidationError("There is no review meeting to cancel.")
    meeting.sequence += 1
    meeting._history_user, meeting._change_reason = by, "Cancelled"
    meeting.save(update_fields=["sequence", "updated_at"])
    people = [*meeting.attendees.all(), meeting.facilitator]
    _send_after_commit(
        _meeting_notices(
            meeting, by=by, people=people, method="CANCEL", what="Review meeting cancelled"
        )
    )
    return undo.soft_delete(meeting, by=by, label="Review meeting", next_url=next_url)


def meeting_restored(*, meeting: ReviewMeeting, by) -> None:
    """After Undo of a cancellation: a newer invitation, so calendars put the event back."""
    ReviewMeeting.objects.filter(pk=meeting.pk).update(sequence=F("sequence") + 1)
    meeting.refresh_from_db()
    people = [*meeting.attendees.all(), meeting.facilitator]
    _send_after_commit(
        _meeting_notices(
            meeting, by=by, people=people, method="REQUEST", what="Review meeting back on"
        )
    )


def meeting_candidates(incident: Incident):
    """People to offer as attendees: authors, reviewers, and those members of the incident's
    teams who may read it (the rule of `Incident.objects.visible_to`, in one query)."""
    involved = {u.pk for u in [*incident.people["authors"], *incident.people["reviewers"]]}
    in_teams = Q(pk__in=User.objects.filter(teams__incidents=incident).values("pk"))
    readers = Q(is_superuser=True)
    if incident.visibility == Incident.Visibility.EVERYONE:
        readers |= Q(is_staff=True)  # staff read every write-up that is not private
    if incident.is_published:
        if incident.visibility == Incident.Visibility.EVERYONE:
            readers = Q()
        else:
            readers |= Q(pk__in=incident.visible_users.values("pk"))
            if incident.visibility == Incident.Visibility.TEAMS:
                readers |= Q(
                    pk__in=User.objects.filter(teams__in=incident.visible_teams.all()).values("pk")
                )
    return list(
        User.objects.filter(is_active=True)
        .filter(Q(pk__in=involved) | (in_teams & readers))
        .order_by("first_name", "username")
    )


__all__ += ["anchor_choices", "find_users", "may", "meeting_candidates", "reviewer_candidates"]
