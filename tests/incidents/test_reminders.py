"""`send_reminders`: who is reminded about what, one e-mail per person, and the promise that a
re-run or a crash half-way never sends the same reminder twice and never skips one."""

import datetime as dt
import io
from collections import Counter
from smtplib import SMTPException

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.core.management import CommandError, call_command

from incidents.models import Profile, Reminder
from incidents.reminders import deliver_reminders, plan_reminders, send_reminders
from tests.factories import make_action_item, make_incident, make_team, make_user

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 3, 10)


class FailOnThird(EmailBackend):
    """Accepts messages, except that the third one ever offered raises like an SMTP error."""

    offered = 0

    def send_messages(self, messages):
        for _ in messages:
            type(self).offered += 1
            if type(self).offered == 3:
                raise SMTPException("451 try again later")
        return super().send_messages(messages)


class ProcessKilled(BaseException):
    """Stands in for the process dying: not an Exception, so nothing catches it."""


class DieOnThird(EmailBackend):
    offered = 0

    def send_messages(self, messages):
        type(self).offered += 1
        if type(self).offered == 3:
            raise ProcessKilled
        return super().send_messages(messages)


def use_backend(settings, backend):
    backend.offered = 0
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.{backend.__name__}"}}


def recipients():
    return Counter(address for message in mail.outbox for address in message.to)


def owners_with_items(n=5):
    """n owners, each with one overdue and one due-soon item."""
    owners = []
    for i in range(n):
        owner = make_user(username=f"owner{i}", email=f"owner{i}@example.com")
        make_action_item(owner=owner, title=f"Overdue {i}", due=TODAY - dt.timedelta(days=2))
        make_action_item(owner=owner, title=f"Soon {i}", due=TODAY + dt.timedelta(days=3))
        owners.append(owner)
    return owners


def test_one_email_per_person_listing_all_their_items():
    owner = make_user(email="olga@example.com", first_name="Olga")
    make_action_item(owner=owner, title="Overdue alert", due=TODAY - dt.timedelta(days=1))
    make_action_item(owner=owner, title="Due today", due=TODAY)
    make_action_item(owner=owner, title="Due in 3 days", due=TODAY + dt.timedelta(days=3))
    make_action_item(owner=owner, title="Due in 4 days", due=TODAY + dt.timedelta(days=4))
    make_action_item(owner=owner, title="Closed item", due=TODAY, status="done", evidence="x")
    result = send_reminders(today=TODAY)
    assert (result.emails, result.delivered) == (1, 3)
    [message] = mail.outbox
    assert message.to == ["olga@example.com"]
    assert message.subject == "Debrief: 1 action item overdue, 2 due soon"
    for title in ("Overdue alert", "Due today", "Due in 3 days"):
        assert title in message.body
    assert "Due in 4 days" not in message.body and "Closed item" not in message.body
    assert "http://127.0.0.1:8000/actions/" in message.body
    assert "http://127.0.0.1:8000/preferences/" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "Overdue alert" in html
    assert set(Reminder.objects.values_list("kind", flat=True)) == {"overdue", "due_soon"}
    assert not Reminder.objects.filter(sent_at__isnull=True).exists()


def test_rerun_sends_nothing_twice():
    owners_with_items(3)
    send_reminders(today=TODAY)
    assert len(mail.outbox) == 3
    second = send_reminders(today=TODAY)
    third = send_reminders(today=TODAY + dt.timedelta(days=1))
    assert (second.emails, third.emails) == (0, 0)
    assert len(mail.outbox) == 3


def test_due_soon_item_gets_an_overdue_reminder_later_and_a_moved_date_counts_anew():
    owner = make_user(email="o@example.com")
    item = make_action_item(owner=owner, due=TODAY + dt.timedelta(days=1))
    send_reminders(today=TODAY)
    send_reminders(today=TODAY + dt.timedelta(days=2))  # now overdue
    assert [m.subject for m in mail.outbox] == [
        "Debrief: 1 action item due soon",
        "Debrief: 1 action item overdue",
    ]
    item.due = TODAY + dt.timedelta(days=3)
    item.save()
    send_reminders(today=TODAY + dt.timedelta(days=2))
    assert len(mail.outbox) == 3  # same item, new due date: a new reminder


def test_team_members_are_reminded_when_there_is_no_owner():
    team = make_team()
    members = [make_user(email=f"m{i}@example.com", teams=[team]) for i in range(2)]
    make_user(email="", teams=[team])  # no address: cannot be reached
    make_action_item(team=team, owner=None, title="Nobody's yet", due=TODAY)
    send_reminders(today=TODAY)
    assert recipients() == Counter({m.email: 1 for m in members})
    assert "your team owns it" in mail.outbox[0].body


def test_inactive_owner_falls_back_to_the_team():
    team = make_team()
    member = make_user(email="member@example.com", teams=[team])
    gone = make_user(email="gone@example.com", is_active=False)
    make_action_item(team=team, owner=gone, due=TODAY)
    send_reminders(today=TODAY)
    assert recipients() == Counter({member.email: 1})


def test_preference_turns_reminders_off():
    """Someone who turned reminders off gets none, and nobody is told in their place."""
    team = make_team()
    make_user(email="member@example.com", teams=[team])
    quiet = make_user(email="quiet@example.com", teams=[team])
    profile = Profile.for_user(quiet)
    profile.email_reminders = False
    profile.save()
    make_action_item(team=team, owner=quiet, due=TODAY)
    send_reminders(today=TODAY)
    assert mail.outbox == []
    assert not Reminder.objects.exists()


def test_nobody_is_told_about_a_write_up_they_may_not_read():
    owner = make_user(email="o@example.com")
    make_action_item(make_incident(status="draft"), owner=owner, due=TODAY)
    send_reminders(today=TODAY)
    assert mail.outbox == []


def test_reminder_no_longer_true_is_dropped_not_sent():
    """Recorded, then the crash; by the next run the item was closed: nothing is sent."""
    owner = make_user(email="o@example.com")
    item = make_action_item(owner=owner, due=TODAY)
    assert plan_reminders(today=TODAY) == 1
    item.status = "done"
    item.evidence = "x"
    item.save()
    result = deliver_reminders(today=TODAY)
    assert (result.emails, result.dropped) == (0, 1)
    assert mail.outbox == [] and not Reminder.objects.exists()


def test_crash_between_recording_and_sending_skips_nobody():
    """Recording happens first; if the process dies before sending, the next run sends."""
    owners = owners_with_items(3)
    plan_reminders(today=TODAY)
    assert mail.outbox == []
    send_reminders(today=TODAY)
    assert recipients() == Counter({o.email: 1 for o in owners})


def test_mail_backend_failing_on_the_third_message_then_rerun(settings):
    """The crash test from the issue: the third e-mail fails; the others go out; the command
    says so and exits non-zero; a re-run sends only the missing one. Each owner ends up with
    exactly one e-mail holding both their reminders."""
    owners = owners_with_items(5)
    use_backend(settings, FailOnThird)
    with pytest.raises(CommandError, match="1 e-mail"):
        call_command("send_reminders", "--date", TODAY.isoformat(), stdout=io.StringIO())
    assert len(mail.outbox) == 4
    assert Reminder.objects.filter(sent_at__isnull=True).count() == 2
    call_command("send_reminders", "--date", TODAY.isoformat(), stdout=io.StringIO())
    call_command("send_reminders", "--date", TODAY.isoformat(), stdout=io.StringIO())
    assert recipients() == Counter({o.email: 1 for o in owners})
    for message in mail.outbox:
        n = message.to[0].removeprefix("owner").split("@")[0]
        assert f"Overdue {n}" in message.body and f"Soon {n}" in message.body
    assert Reminder.objects.filter(sent_at__isnull=False).count() == 10


def test_process_dying_on_the_third_message_then_rerun(settings):
    """A harder crash (nothing is caught): already-sent reminders are never repeated, and the
    ones not sent yet all go out on the next run."""
    owners = owners_with_items(5)
    use_backend(settings, DieOnThird)
    with pytest.raises(ProcessKilled):
        send_reminders(today=TODAY)
    assert len(mail.outbox) == 2
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    send_reminders(today=TODAY)
    send_reminders(today=TODAY)
    assert recipients() == Counter({o.email: 1 for o in owners})


def test_command_output_and_dry_run():
    owners_with_items(2)
    out = io.StringIO()
    call_command("send_reminders", "--dry-run", "--date", TODAY.isoformat(), stdout=out)
    assert "4 reminder(s) would be recorded." in out.getvalue()
    assert mail.outbox == [] and not Reminder.objects.exists()
    out = io.StringIO()
    call_command("send_reminders", "--date", TODAY.isoformat(), stdout=out)
    assert "Recorded 4 new reminder(s); sent 2 e-mail(s) covering 4 reminder(s)." in out.getvalue()


def test_unique_constraint_refuses_a_duplicate_reminder():
    """The database, not only the code, guarantees one reminder per item, kind, date, person."""
    from django.db import IntegrityError, transaction

    owner = make_user(email="o@example.com")
    item = make_action_item(owner=owner, due=TODAY)
    Reminder.objects.create(action_item=item, kind="due_soon", due=TODAY, recipient=owner)
    with pytest.raises(IntegrityError), transaction.atomic():
        Reminder.objects.create(action_item=item, kind="due_soon", due=TODAY, recipient=owner)


def test_a_long_backlog_is_summarised_but_every_reminder_is_recorded():
    """35 overdue items: the e-mail lists 30 and links the rest; all 35 count as sent."""
    owner = make_user(email="o@example.com")
    for n in range(35):
        make_action_item(owner=owner, title=f"Backlog {n}", due=TODAY - dt.timedelta(days=1))
    send_reminders(today=TODAY)
    [message] = mail.outbox
    assert message.subject == "Debrief: 35 action items overdue"
    assert message.body.count("Backlog ") == 30
    assert "… and 5 more overdue" in message.body
    assert Reminder.objects.filter(sent_at__isnull=False).count() == 35
