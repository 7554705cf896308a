"""Escalation: items overdue by more than DEBRIEF_ESCALATION_DAYS are flagged, and each
owning team's lead gets one weekly digest — once per week however often the command runs."""

import datetime as dt
import io
from smtplib import SMTPException

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.core.management import CommandError, call_command

from incidents.models import EscalationDigest, Incident, Profile, Reminder
from incidents.reminders import send_escalation_digests
from tests.factories import make_action_item, make_incident, make_team, make_user

pytestmark = pytest.mark.django_db

MONDAY = dt.date(2026, 3, 9)


@pytest.fixture(autouse=True)
def fourteen_days(settings):
    settings.DEBRIEF_ESCALATION_DAYS = 14


def late(days, **overrides):
    return make_action_item(due=MONDAY - dt.timedelta(days=days), **overrides)


class AlwaysFails(EmailBackend):
    def send_messages(self, messages):
        raise SMTPException("421 service not available")


def test_digest_goes_to_the_lead_with_only_escalated_items():
    lead = make_user(email="lead@example.com", first_name="Lee")
    team = make_team(name="Payments", slug="payments", lead=lead)
    late(15, team=team, title="Stuck for 15 days")
    late(14, team=team, title="Exactly 14 days late")
    late(30, team=team, title="Closed long ago", status="done", evidence="x")
    late(40, title="Another team's item")
    result = send_escalation_digests(today=MONDAY)
    assert (result.emails, result.delivered) == (1, 1)
    [message] = mail.outbox
    assert message.to == ["lead@example.com"]
    assert message.subject == (
        "Debrief: 1 Payments action item overdue by more than 14 days (1 new)"
    )
    assert "Stuck for 15 days" in message.body
    assert "Exactly 14 days late" not in message.body and "Closed long ago" not in message.body
    assert "?team=payments&due=escalated" in message.body
    assert message.alternatives[0][1] == "text/html"


def test_once_per_week_and_new_items_are_marked_next_week():
    lead = make_user(email="lead@example.com")
    team = make_team(lead=lead)
    late(20, team=team, title="Old news")
    send_escalation_digests(today=MONDAY)
    send_escalation_digests(today=MONDAY + dt.timedelta(days=2))  # same week: nothing
    assert len(mail.outbox) == 1
    late(16, team=team, title="Fresh escalation")
    send_escalation_digests(today=MONDAY + dt.timedelta(days=7))
    assert len(mail.outbox) == 2
    body = mail.outbox[1].body
    assert "[NEW] Fresh escalation" in body
    assert "Old news" in body and "[NEW] Old news" not in body
    assert EscalationDigest.objects.filter(sent_at__isnull=False).count() == 2
    assert Reminder.objects.filter(kind="escalation", recipient=lead).count() == 2


def test_no_lead_no_address_or_reminders_off_means_no_digest():
    late(20, team=make_team())
    late(20, team=make_team(lead=make_user(email="")))
    quiet = make_user(email="quiet@example.com")
    Profile.objects.create(user=quiet, email_reminders=False)
    late(20, team=make_team(lead=quiet))
    assert send_escalation_digests(today=MONDAY).emails == 0
    assert mail.outbox == []


def test_lead_is_not_told_about_items_of_write_ups_they_may_not_read():
    lead = make_user(email="lead@example.com")
    team = make_team(lead=lead)
    late(20, team=team, incident=make_incident(status="draft"))
    send_escalation_digests(today=MONDAY)
    assert mail.outbox == []
    assert not EscalationDigest.objects.exists()  # dropped, so a later run may try again


def test_failed_digest_is_sent_on_the_next_run(settings):
    lead = make_user(email="lead@example.com")
    late(20, team=make_team(lead=lead))
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.AlwaysFails"}}
    with pytest.raises(CommandError, match="1 digest"):
        call_command("send_escalation_digest", "--date", MONDAY.isoformat(), stdout=io.StringIO())
    assert EscalationDigest.objects.get().sent_at is None
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    out = io.StringIO()
    call_command("send_escalation_digest", "--date", MONDAY.isoformat(), stdout=out)
    assert "Sent 1 escalation digest(s)" in out.getvalue()
    assert len(mail.outbox) == 1


def test_dashboard_flags_escalated_items(client_logged_in):
    import django.utils.timezone as tz

    today = tz.localdate()
    make_action_item(title="Way late", due=today - dt.timedelta(days=15))
    make_action_item(title="A bit late", due=today - dt.timedelta(days=3))
    body = client_logged_in.get("/actions/?due=escalated").content.decode()
    assert "Way late" in body and "A bit late" not in body
    assert 'class="badge escalated"' in body
    body = client_logged_in.get("/actions/?due=overdue").content.decode()
    assert body.count('class="badge escalated"') == 1 and body.count('class="badge overdue"') == 1


def test_incident_model_is_untouched_by_digest():
    """Sending digests writes only digests and escalation reminders."""
    lead = make_user(email="lead@example.com")
    item = late(20, team=make_team(lead=lead))
    before = Incident.objects.get(pk=item.incident_id).updated_at
    send_escalation_digests(today=MONDAY)
    assert Incident.objects.get(pk=item.incident_id).updated_at == before
