"""Mail server down: every change that sends e-mail is kept, the page says it is done (never a
500), the e-mails wait as unsent rows, and once the server is back the commands deliver each
one exactly once — a second run sends nothing.

Covers every place Debrief sends mail: the review moves (submit, from the review page and from
the guided flow; request changes; approve; reopen), a reviewer added while in review, the
review meeting (scheduled, changed, cancelled), `send_reminders` and
`send_escalation_digest`."""

import datetime as dt
import io
import smtplib
from collections import Counter

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.locmem import EmailBackend
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from incidents.models import EscalationDigest, Incident, Reminder
from incidents.review import schedule_meeting
from incidents.review_models import ReviewMeeting, ReviewNotice
from tests import factories
from tests.factories import make_action_item, make_incident, make_team

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
TODAY = dt.date(2026, 3, 9)  # a Monday


def make_user(**overrides):
    """No password hash: these tests sign in with force_login."""
    return factories.make_user(**({"password": None} | overrides))


class MailServerDown(BaseEmailBackend):
    """Every send fails like an SMTP server that does not answer; counts what was offered."""

    offered = 0
    error: BaseException = ConnectionRefusedError(111, "Connection refused")

    def send_messages(self, messages):
        type(self).offered += len(messages)
        raise type(self).error


class RefusesOneAddress(EmailBackend):
    """The server is up but refuses one recipient (a full mailbox, say)."""

    refused = "full@example.com"

    def send_messages(self, messages):
        for message in messages:
            if self.refused in message.to:
                raise smtplib.SMTPRecipientsRefused({self.refused: (552, b"Mailbox full")})
        return super().send_messages(messages)


class FailsSilently(BaseEmailBackend):
    """A backend set to fail silently: it raises nothing and sends nothing."""

    def send_messages(self, messages):
        return 0


SERVER_ERRORS = {
    "refused": ConnectionRefusedError(111, "Connection refused"),
    "timeout": TimeoutError("timed out"),
    "disconnected": smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
}


@pytest.fixture(params=sorted(SERVER_ERRORS))
def mail_down(request, settings):
    """Makes the mail server fail (each way it can); returns a function that brings it back."""
    MailServerDown.offered = 0
    MailServerDown.error = SERVER_ERRORS[request.param]
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.MailServerDown"}}

    def restore():
        settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}

    return restore


def login(user):
    client = Client()
    client.force_login(user)
    return client


def received():
    """(address, subject) → how many e-mails."""
    return Counter((address, m.subject) for m in mail.outbox for address in m.to)


def send_notices():
    out = io.StringIO()
    call_command("send_review_notices", stdout=out)
    return out.getvalue()


# --- Review notices: one case per action that sends them -------------------------------------


def cast():
    authors = [make_user(username="ana"), make_user(username="ama")]
    reviewers = [make_user(username="rui"), make_user(username="rita")]
    return authors, reviewers


def _submit(status="draft"):
    authors, reviewers = cast()
    incident = make_incident(status=status, authors=authors, reviewers=reviewers)
    response = login(authors[0]).post(reverse("review_move", args=[incident.slug, "submit"]))
    return incident, response, reviewers, Incident.Status.IN_REVIEW


def _submit_from_guided_flow():
    authors, reviewers = cast()
    incident = make_incident(status="draft", authors=authors, reviewers=reviewers)
    response = login(authors[0]).post(
        reverse("incident_step", args=[incident.slug, "review"]),
        {"action": "submit", "accept_gaps": "1"},
    )
    return incident, response, reviewers, Incident.Status.IN_REVIEW


def _request_changes():
    authors, reviewers = cast()
    incident = make_incident(status="in_review", authors=authors, reviewers=reviewers)
    response = login(reviewers[0]).post(
        reverse("review_move", args=[incident.slug, "request-changes"]),
        {"note": "Say more about detection."},
    )
    return incident, response, authors, Incident.Status.CHANGES_REQUESTED


def _approve():
    authors, reviewers = cast()
    incident = make_incident(status="in_review", authors=authors, reviewers=reviewers)
    response = login(reviewers[0]).post(reverse("review_move", args=[incident.slug, "approve"]))
    return incident, response, [*authors, reviewers[1]], Incident.Status.PUBLISHED


def _reopen():
    authors, reviewers = cast()
    incident = make_incident(status="published", authors=authors, reviewers=reviewers)
    response = login(authors[0]).post(
        reverse("review_move", args=[incident.slug, "reopen"]), {"reason": "New findings."}
    )
    return incident, response, reviewers, Incident.Status.IN_REVIEW


def _add_reviewer():
    authors, reviewers = cast()
    incident = make_incident(status="in_review", authors=authors, reviewers=reviewers)
    zoe = make_user(username="zoe")
    response = login(authors[0]).post(
        reverse("review_people", args=[incident.slug]),
        {"role": "reviewer", "username": "zoe"},
        headers=HTMX,
    )
    assert incident.reviewers.filter(pk=zoe.pk).exists()
    return incident, response, [zoe], Incident.Status.IN_REVIEW


def _meeting_form(facilitator, attendees, *, days=2, location="Room 2"):
    when = (timezone.localtime() + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")
    return {"starts_at": when, "duration": 60, "location": location,
            "facilitator": facilitator.pk, "attendees": [u.pk for u in attendees],
            "more_attendees": "", "agenda": ""}  # fmt: skip


def _schedule_meeting():
    authors, reviewers = cast()
    incident = make_incident(status="in_review", authors=authors, reviewers=reviewers)
    response = login(authors[0]).post(
        reverse("review_meeting", args=[incident.slug]),
        _meeting_form(authors[0], [authors[1], *reviewers]),
        headers=HTMX,
    )
    assert ReviewMeeting.objects.filter(incident=incident).exists()
    return incident, response, [*authors, *reviewers], Incident.Status.IN_REVIEW


def _change_meeting():
    authors, reviewers = cast()
    incident = make_incident(status="in_review", authors=authors, reviewers=reviewers)
    schedule_meeting(incident=incident, by=authors[0], facilitator=authors[0],
                     starts_at=timezone.now() + dt.timedelta(days=1), attendees=reviewers)  # fmt: skip
    ReviewNotice.objects.update(sent_at=timezone.now())  # the first invitations went out
    response = login(reviewers[0]).post(
        reverse("review_meeting", args=[incident.slug]),
        _meeting_form(authors[0], reviewers, days=3, location="Room 9"),
    )
    meeting = ReviewMeeting.objects.get(incident=incident)
    assert (meeting.location, meeting.sequence) == ("Room 9", 1)
    return incident, response, [authors[0], *reviewers], Incident.Status.IN_REVIEW


def _cancel_meeting():
    authors, reviewers = cast()
    incident = make_incident(status="in_review", authors=authors, reviewers=reviewers)
    schedule_meeting(incident=incident, by=authors[0], facilitator=authors[0],
                     starts_at=timezone.now() + dt.timedelta(days=1), attendees=reviewers)  # fmt: skip
    ReviewNotice.objects.update(sent_at=timezone.now())
    response = login(reviewers[0]).post(reverse("review_meeting_cancel", args=[incident.slug]))
    assert not ReviewMeeting.objects.filter(incident=incident).exists()  # in the trash
    return incident, response, [authors[0], *reviewers], Incident.Status.IN_REVIEW


ACTIONS = {
    "submit": _submit,
    "submit-guided": _submit_from_guided_flow,
    "request-changes": _request_changes,
    "approve": _approve,
    "reopen": _reopen,
    "add-reviewer": _add_reviewer,
    "schedule-meeting": _schedule_meeting,
    "change-meeting": _change_meeting,
    "cancel-meeting": _cancel_meeting,
}


@pytest.mark.parametrize("action", ACTIONS)
def test_review_action_with_mail_down_keeps_the_change_and_mails_later(
    action, mail_down, django_capture_on_commit_callbacks
):
    """The action succeeds as if mail were fine; its notices wait unsent (only one send was
    tried: the rest are not made to wait for a dead server); `send_review_notices` then sends
    each person exactly one e-mail, and a second run sends nothing."""
    with django_capture_on_commit_callbacks(execute=True):
        incident, response, recipients, status = ACTIONS[action]()
    assert response.status_code in (200, 302)
    assert Incident.objects.get(pk=incident.pk).status == status
    unsent = ReviewNotice.objects.filter(incident=incident, sent_at__isnull=True)
    assert sorted(unsent.values_list("recipient_id", flat=True)) == sorted(u.pk for u in recipients)
    assert all(unsent.values_list("last_error", flat=True))
    assert MailServerDown.offered == 1
    assert mail.outbox == []

    mail_down()
    count = len(recipients)
    assert send_notices() == f"Sent {count} review notice{'s' if count != 1 else ''}.\n"
    got = received()
    assert sorted(address for address, _subject in got) == sorted(u.email for u in recipients)
    assert set(got.values()) == {1}
    assert not ReviewNotice.objects.filter(sent_at__isnull=True).exists()
    assert send_notices() == "Sent 0 review notices.\n"
    assert len(mail.outbox) == len(recipients)


def test_htmx_move_with_mail_down_refreshes_the_page_with_the_message(
    mail_down, django_capture_on_commit_callbacks
):
    """The htmx form gets the usual reload and the confirmation, not an error."""
    authors, reviewers = cast()
    incident = make_incident(status="draft", authors=authors, reviewers=reviewers)
    client = login(authors[0])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("review_move", args=[incident.slug, "submit"]), headers=HTMX)
    assert response.status_code == 200 and response["HX-Refresh"] == "true"
    page = client.get(reverse("review_page", args=[incident.slug])).content.decode()
    assert "was submitted for review" in page
    assert ReviewNotice.objects.filter(sent_at__isnull=True).count() == 2


def test_command_stops_early_and_says_so_while_the_server_is_still_down(
    mail_down, django_capture_on_commit_callbacks
):
    """Run while the server is still down: exit status non-zero, a clear message, one try
    only; nothing is marked sent, so the next run still sends everything."""
    with django_capture_on_commit_callbacks(execute=True):
        _approve()
    MailServerDown.offered = 0
    with pytest.raises(CommandError, match=r"1 review notice\(s\) could not be sent; the mail "):
        send_notices()
    assert MailServerDown.offered == 1
    assert ReviewNotice.objects.filter(sent_at__isnull=True).count() == 3
    mail_down()
    send_notices()
    assert len(mail.outbox) == 3 and set(received().values()) == {1}


def test_one_refused_address_does_not_hold_back_the_others(
    settings, django_capture_on_commit_callbacks
):
    """A server that is up but refuses one mailbox: the others go out at once; the refused
    one stays unsent with the server's reason, for the command to retry."""
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.RefusesOneAddress"}}
    authors = [make_user(), make_user(email="full@example.com"), make_user()]
    reviewer = make_user()
    incident = make_incident(status="in_review", authors=authors, reviewers=[reviewer])
    with django_capture_on_commit_callbacks(execute=True):
        login(reviewer).post(reverse("review_move", args=[incident.slug, "approve"]))
    assert sorted(m.to[0] for m in mail.outbox) == sorted([authors[0].email, authors[2].email])
    stuck = ReviewNotice.objects.get(sent_at__isnull=True)
    assert stuck.recipient == authors[1] and "Mailbox full" in stuck.last_error
    with pytest.raises(CommandError, match=r"1 review notice\(s\) could not be sent\. They"):
        send_notices()
    assert len(mail.outbox) == 2


def test_a_backend_that_fails_silently_does_not_count_as_sent(
    settings, django_capture_on_commit_callbacks
):
    """A backend answering "0 sent" without an error leaves the notice unsent."""
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.FailsSilently"}}
    with django_capture_on_commit_callbacks(execute=True):
        _submit()
    assert ReviewNotice.objects.filter(sent_at__isnull=True).count() == 2
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    send_notices()
    assert len(mail.outbox) == 2


def test_notices_never_tried_wait_for_their_task_before_the_command_sends_them(settings):
    """A notice made but never tried (its task is still queued) is left to that task for
    5 minutes; after that the command sends it — once."""
    authors, reviewers = cast()
    incident = make_incident(status="draft", authors=authors, reviewers=reviewers)
    login(authors[0]).post(reverse("review_move", args=[incident.slug, "submit"]))
    assert ReviewNotice.objects.filter(sent_at__isnull=True, last_error="").count() == 2
    assert send_notices() == "Sent 0 review notices.\n"
    ReviewNotice.objects.update(created_at=timezone.now() - dt.timedelta(minutes=6))
    assert send_notices() == "Sent 2 review notices.\n"
    assert send_notices() == "Sent 0 review notices.\n"
    assert len(mail.outbox) == 2


# --- Reminders and the escalation digest -------------------------------------------------------


def test_send_reminders_with_mail_down_then_back(mail_down):
    """Reminders are recorded even though nothing could be sent; the run stops after one try
    and exits non-zero; the next run sends each owner exactly one e-mail; a third sends none."""
    owners = [make_user(email=f"owner{n}@example.com") for n in range(4)]
    for owner in owners:
        make_action_item(owner=owner, due=TODAY - dt.timedelta(days=1))
        make_action_item(owner=owner, due=TODAY + dt.timedelta(days=2))
    with pytest.raises(CommandError, match="the mail server could not be reached, so 3 more"):
        call_command("send_reminders", "--date", TODAY.isoformat(), stdout=io.StringIO())
    assert MailServerDown.offered == 1
    assert Reminder.objects.filter(sent_at__isnull=True).count() == 8
    mail_down()
    call_command("send_reminders", "--date", TODAY.isoformat(), stdout=io.StringIO())
    assert Counter(m.to[0] for m in mail.outbox) == Counter({o.email: 1 for o in owners})
    out = io.StringIO()
    call_command("send_reminders", "--date", TODAY.isoformat(), stdout=out)
    assert "sent 0 e-mail(s)" in out.getvalue()
    assert len(mail.outbox) == 4
    assert not Reminder.objects.filter(sent_at__isnull=True).exists()


def test_escalation_digest_with_mail_down_then_back(mail_down, settings):
    """Digests are recorded, none is marked sent; the next run sends one per lead; then none."""
    settings.DEBRIEF_ESCALATION_DAYS = 14
    leads = [make_user(email=f"lead{n}@example.com") for n in range(3)]
    for lead in leads:
        make_action_item(team=make_team(lead=lead), due=TODAY - dt.timedelta(days=20))
    with pytest.raises(CommandError, match="the mail server could not be reached, so 2 more"):
        call_command("send_escalation_digest", "--date", TODAY.isoformat(), stdout=io.StringIO())
    assert MailServerDown.offered == 1
    assert EscalationDigest.objects.filter(sent_at__isnull=True).count() == 3
    mail_down()
    call_command("send_escalation_digest", "--date", TODAY.isoformat(), stdout=io.StringIO())
    call_command("send_escalation_digest", "--date", TODAY.isoformat(), stdout=io.StringIO())
    assert Counter(m.to[0] for m in mail.outbox) == Counter({lead.email: 1 for lead in leads})
    assert not EscalationDigest.objects.filter(sent_at__isnull=True).exists()
