"""Reminder e-mails about due and overdue action items, and the weekly escalation digest —
each sent exactly once.

Both use an outbox:

1. **Plan.** Every reminder that is due is recorded as a `Reminder` row with `sent_at` empty
   (item, kind, the item's due date, recipient). The unique constraint on those four makes
   recording idempotent: a re-run, or two runs at once, records nothing twice.
2. **Deliver.** For each recipient, in one transaction: lock their unsent rows, drop the ones
   that are no longer true (item closed, due date moved), send one e-mail listing the rest, mark
   them sent. If sending fails the transaction rolls back, the rows stay unsent and the next run
   sends them; once the transaction commits they are never sent again.

A crash between planning and delivering leaves unsent rows that the next run delivers, so no
reminder is skipped. When the mail server itself cannot be reached (refused, timed out, gone)
the run stops at the first failure instead of waiting out the SMTP timeout once per recipient
while holding the database; everything left is delivered by the next run. The one window left
is a crash after the mail server accepted a message and before the commit (milliseconds): that
message would go out again on the next run — the least bad choice, since the alternative (mark
first, send after) loses reminders instead.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import smtplib
import socket
from collections import defaultdict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives, mailers
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .actions import escalation_cutoff
from .models import ActionItem, EscalationDigest, Incident, Reminder, Team

logger = logging.getLogger(__name__)
Kind = Reminder.Kind
REMINDER_KINDS = (Kind.DUE_SOON, Kind.OVERDUE)
LISTED = 30  # items listed per section of an e-mail; the rest are counted and linked


class DeliveryFailed(Exception):
    """The mail backend did not accept a message."""


@dataclasses.dataclass
class RunResult:
    recorded: int = 0  # reminders (or digests) newly planned
    emails: int = 0  # e-mails sent
    delivered: int = 0  # reminders (or digest items) in those e-mails
    dropped: int = 0  # unsent reminders no longer true, removed without sending
    failures: list[str] = dataclasses.field(default_factory=list)  # recipients to retry
    not_tried: int = 0  # left for the next run because the mail server could not be reached


def mail_server_unreachable(error: BaseException) -> bool:
    """The mail server itself is down or unreachable (not one address refused): trying the
    next message would fail the same way, perhaps only after the SMTP timeout."""
    return isinstance(
        error,
        (ConnectionError, TimeoutError, socket.gaierror, smtplib.SMTPConnectError,
         smtplib.SMTPServerDisconnected),
    )  # fmt: skip


def not_tried_note(not_tried: int) -> str:
    """What a command adds to its failure message when the run stopped at an unreachable mail
    server."""
    if not not_tried:
        return ""
    return f"; the mail server could not be reached, so {not_tried} more were not tried"


def absolute(path: str) -> str:
    return f"{settings.DEBRIEF_BASE_URL}{path}"


def wants_mail_q(prefix: str = "") -> Q:
    """People we may e-mail: active, with an address, who did not turn reminders off (people
    without a profile have the default, which is on)."""
    return (
        Q(**{f"{prefix}is_active": True})
        & ~Q(**{f"{prefix}email": ""})
        & ~Q(**{f"{prefix}profile__email_reminders": False})
    )


def reminder_kind(item: ActionItem, today: dt.date) -> str | None:
    """Which reminder an item deserves today, if any."""
    if not item.is_open or item.due is None:
        return None
    if item.due < today:
        return Kind.OVERDUE
    if item.due <= today + dt.timedelta(days=settings.DEBRIEF_REMINDER_DAYS):
        return Kind.DUE_SOON
    return None


def _readable(user_ids, incident_ids_by_user) -> dict[int, set[int]]:
    """For each person, which of the given incidents they may read (one query per person)."""
    User = get_user_model()
    readable = {}
    for user in User.objects.filter(pk__in=user_ids):
        readable[user.pk] = set(
            Incident.objects.visible_to(user)
            .filter(pk__in=incident_ids_by_user[user.pk])
            .values_list("pk", flat=True)
        )
    return readable


def recipients_for(items: list[ActionItem]) -> dict[int, list[int]]:
    """Item → who is reminded: the owner; the owning team's members when there is no owner (or
    the owner can no longer sign in). Only people we may e-mail."""
    User = get_user_model()
    owner_ids = {item.owner_id for item in items if item.owner_id}
    active_owner_ids = set(
        User.objects.filter(pk__in=owner_ids, is_active=True).values_list("pk", flat=True)
    )
    mailable = set(
        User.objects.filter(wants_mail_q(), pk__in=owner_ids).values_list("pk", flat=True)
    )
    orphan_team_ids = {item.team_id for item in items if item.owner_id not in active_owner_ids}
    members: dict[int, list[int]] = defaultdict(list)
    for team_id, user_id in Team.members.through.objects.filter(
        team_id__in=orphan_team_ids
    ).values_list("team_id", "user_id"):
        members[team_id].append(user_id)
    member_ids = {user_id for ids in members.values() for user_id in ids}
    mailable |= set(
        User.objects.filter(wants_mail_q(), pk__in=member_ids).values_list("pk", flat=True)
    )
    result = {}
    for item in items:
        if item.owner_id in active_owner_ids:
            people = [item.owner_id]
        else:
            people = members.get(item.team_id, [])
        result[item.pk] = [pk for pk in people if pk in mailable]
    return result


def due_reminders(*, today: dt.date) -> list[Reminder]:
    """Every reminder that should exist today and does not yet (unsaved instances)."""
    horizon = today + dt.timedelta(days=settings.DEBRIEF_REMINDER_DAYS)
    items = list(
        ActionItem.objects.open()
        .filter(due__isnull=False, due__lte=horizon)
        .only("pk", "incident_id", "team_id", "owner_id", "due", "status")
    )
    if not items:
        return []
    existing = set(
        Reminder.objects.filter(
            action_item_id__in=[item.pk for item in items], kind__in=REMINDER_KINDS
        ).values_list("action_item_id", "kind", "due", "recipient_id")
    )
    recipients = recipients_for(items)
    wanted = []
    for item in items:
        kind = reminder_kind(item, today)
        for person in recipients[item.pk]:
            if (item.pk, kind, item.due, person) not in existing:
                wanted.append((item, kind, person))
    # Nobody is told about a write-up they may not read (drafts, private incidents).
    incidents_by_user = defaultdict(set)
    for item, _kind, person in wanted:
        incidents_by_user[person].add(item.incident_id)
    readable = _readable(incidents_by_user, incidents_by_user)
    return [
        Reminder(action_item_id=item.pk, kind=kind, due=item.due, recipient_id=person)
        for item, kind, person in wanted
        if item.incident_id in readable.get(person, ())
    ]


def _log_failure(what: str, pk: int, error: Exception) -> None:
    if isinstance(error, OSError | DeliveryFailed):  # the mail server said no: no traceback
        logger.warning(what + " not sent: %s", pk, error)
    else:
        logger.exception(what + " failed", pk)


def plan_reminders(*, today: dt.date) -> int:
    """Step 1: records every reminder that is due. Safe to repeat and to run concurrently."""
    reminders = due_reminders(today=today)
    Reminder.objects.bulk_create(reminders, ignore_conflicts=True, batch_size=500)
    return len(reminders)


def _send(subject: str, text: str, html: str, to: str) -> None:
    message = EmailMultiAlternatives(subject=subject, body=text, to=[to])
    if html:
        message.attach_alternative(html, "text/html")
    # A backend configured to fail silently returns 0: that is a failure too, so the reminders
    # stay unsent and the next run tries again.
    if mailers.default.send_messages([message]) != 1:
        raise DeliveryFailed(f"The mail backend did not accept the message to {to}.")


def _still_true(reminder: Reminder, today: dt.date) -> bool:
    item = reminder.action_item
    return item.due == reminder.due and reminder_kind(item, today) == reminder.kind


def _deliver_to(recipient_id: int, *, today: dt.date, now: dt.datetime, result: RunResult):
    with transaction.atomic():
        pending = list(
            Reminder.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(recipient_id=recipient_id, sent_at__isnull=True, kind__in=REMINDER_KINDS)
            .select_related(
                "recipient", "action_item__incident", "action_item__team", "action_item__owner"
            )
            .order_by("action_item__due", "action_item_id")
        )
        if not pending:
            return  # another run has them
        recipient = pending[0].recipient
        stale = [r.pk for r in pending if not _still_true(r, today)]
        allowed = get_user_model().objects.filter(wants_mail_q(), pk=recipient.pk).exists()
        if not allowed:
            stale = [r.pk for r in pending]
        if stale:
            Reminder.objects.filter(pk__in=stale).delete()
            result.dropped += len(stale)
        send = [r for r in pending if r.pk not in set(stale)]
        if not send:
            return
        context = reminder_context(recipient, send, today)
        _send(
            render_to_string("emails/reminder_subject.txt", context).strip(),
            render_to_string("emails/reminder.txt", context),
            render_to_string("emails/reminder.html", context),
            recipient.email,
        )
        Reminder.objects.filter(pk__in=[r.pk for r in send]).update(sent_at=now)
        result.emails += 1
        result.delivered += len(send)


def reminder_context(recipient, reminders: list[Reminder], today: dt.date) -> dict:
    rows = []
    for reminder in reminders:
        item = reminder.action_item
        rows.append(
            {
                "item": item,
                "url": absolute(reverse("action_detail", args=[item.pk])),
                "incident_url": absolute(item.incident.get_absolute_url()),
                "days_overdue": (today - item.due).days,
                "days_left": (item.due - today).days,
                "as_team_member": item.owner_id != recipient.pk,
            }
        )
    overdue = [row for row in rows if row["days_overdue"] > 0]
    due_soon = [row for row in rows if row["days_overdue"] <= 0]
    return {
        "recipient": recipient,
        # A long backlog is summarised: the e-mail lists the first ones and links the rest.
        "overdue": overdue[:LISTED],
        "overdue_more": max(0, len(overdue) - LISTED),
        "overdue_count": len(overdue),
        "due_soon": due_soon[:LISTED],
        "due_soon_more": max(0, len(due_soon) - LISTED),
        "due_soon_count": len(due_soon),
        "count": len(rows),
        "mine_url": absolute(reverse("action_list") + f"?owner={recipient.get_username()}"),
        "preferences_url": absolute(reverse("preferences")),
        "base_url": settings.DEBRIEF_BASE_URL,
    }


def deliver_reminders(*, today: dt.date, now: dt.datetime | None = None) -> RunResult:
    """Step 2: one e-mail per recipient with unsent reminders. A failure for one recipient is
    logged and leaves their reminders for the next run; the others still go out."""
    now = now or timezone.now()
    result = RunResult()
    recipient_ids = (
        Reminder.objects.filter(sent_at__isnull=True, kind__in=REMINDER_KINDS)
        .order_by("recipient_id")
        .values_list("recipient_id", flat=True)
        .distinct()
    )
    recipient_ids = list(recipient_ids)
    for index, recipient_id in enumerate(recipient_ids):
        try:
            _deliver_to(recipient_id, today=today, now=now, result=result)
        except Exception as error:  # one bad address must not stop the others
            _log_failure("Reminder e-mail to user %s", recipient_id, error)
            result.failures.append(f"user {recipient_id}: {error}")
            if mail_server_unreachable(error):  # …but a server that is down stops the run
                result.not_tried = len(recipient_ids) - index - 1
                break
    return result


def send_reminders(*, today: dt.date | None = None) -> RunResult:
    """What `manage.py send_reminders` does: plan, then deliver."""
    today = today or timezone.localdate()
    recorded = plan_reminders(today=today)
    result = deliver_reminders(today=today)
    result.recorded = recorded
    return result


# --- Weekly escalation digest -------------------------------------------------------------------


def week_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def escalated_items(team_id: int, lead, today: dt.date) -> list[ActionItem]:
    return list(
        ActionItem.objects.open()
        .filter(
            team_id=team_id,
            due__lt=escalation_cutoff(today),
            incident__in=Incident.objects.visible_to(lead).values("pk"),
        )
        .select_related("incident", "owner", "team")
        .order_by("due", "id")
    )


def plan_digests(*, today: dt.date) -> int:
    """Records this week's digest for every lead of a team with escalated items."""
    escalated_teams = (
        ActionItem.objects.open()
        .filter(due__lt=escalation_cutoff(today))
        .values("team_id")
        .distinct()
    )
    teams = Team.objects.filter(wants_mail_q("lead__"), pk__in=escalated_teams).only(
        "pk", "lead_id"
    )
    digests = [
        EscalationDigest(team_id=team.pk, recipient_id=team.lead_id, week=week_of(today))
        for team in teams
    ]
    existing = set(
        EscalationDigest.objects.filter(week=week_of(today)).values_list("team_id", "recipient_id")
    )
    digests = [d for d in digests if (d.team_id, d.recipient_id) not in existing]
    EscalationDigest.objects.bulk_create(digests, ignore_conflicts=True)
    return len(digests)


def _deliver_digest(digest_id: int, *, today: dt.date, now: dt.datetime, result: RunResult):
    with transaction.atomic():
        digest = (
            EscalationDigest.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=digest_id, sent_at__isnull=True)
            .select_related("team", "recipient")
            .first()
        )
        if digest is None:
            return
        lead = digest.recipient
        allowed = get_user_model().objects.filter(wants_mail_q(), pk=lead.pk).exists()
        items = escalated_items(digest.team_id, lead, today) if allowed else []
        if digest.week != week_of(today) or digest.team.lead_id != lead.pk or not items:
            # A digest for a past week, a former lead, or nothing escalated any more.
            digest.delete()
            result.dropped += 1
            return
        told = set(
            Reminder.objects.filter(
                kind=Kind.ESCALATION, recipient=lead, action_item__in=items
            ).values_list("action_item_id", "due")
        )
        rows = [
            {
                "item": item,
                "url": absolute(reverse("action_detail", args=[item.pk])),
                "days_overdue": (today - item.due).days,
                "new": (item.pk, item.due) not in told,
            }
            for item in items
        ]
        context = {
            "recipient": lead,
            "team": digest.team,
            # New escalations first, then the longest overdue; a long list is summarised.
            "rows": sorted(rows, key=lambda row: not row["new"])[:LISTED],
            "more": max(0, len(rows) - LISTED),
            "count": len(rows),
            "new_count": sum(row["new"] for row in rows),
            "days": settings.DEBRIEF_ESCALATION_DAYS,
            "team_url": absolute(
                reverse("action_list") + f"?team={digest.team.slug}&due=escalated"
            ),
            "preferences_url": absolute(reverse("preferences")),
        }
        _send(
            render_to_string("emails/escalation_digest_subject.txt", context).strip(),
            render_to_string("emails/escalation_digest.txt", context),
            render_to_string("emails/escalation_digest.html", context),
            lead.email,
        )
        digest.sent_at = now
        digest.save(update_fields=["sent_at"])
        # Remember which items the lead has been told about, so next week marks only new ones.
        Reminder.objects.bulk_create(
            [
                Reminder(
                    action_item=row["item"],
                    kind=Kind.ESCALATION,
                    due=row["item"].due,
                    recipient=lead,
                    sent_at=now,
                )
                for row in rows
                if row["new"]
            ],
            ignore_conflicts=True,
        )
        result.emails += 1
        result.delivered += len(rows)


def send_escalation_digests(*, today: dt.date | None = None) -> RunResult:
    """What `manage.py send_escalation_digest` does: plan this week's digests, deliver them."""
    today = today or timezone.localdate()
    now = timezone.now()
    result = RunResult(recorded=plan_digests(today=today))
    pending = EscalationDigest.objects.filter(sent_at__isnull=True).order_by("pk")
    digest_ids = list(pending.values_list("pk", flat=True))
    for index, digest_id in enumerate(digest_ids):
        try:
            _deliver_digest(digest_id, today=today, now=now, result=result)
        except Exception as error:  # one bad address must not stop the others
            _log_failure("Escalation digest %s", digest_id, error)
            result.failures.append(f"digest {digest_id}: {error}")
            if mail_server_unreachable(error):  # …but a server that is down stops the run
                result.not_tried = len(digest_ids) - index - 1
                break
    return result
