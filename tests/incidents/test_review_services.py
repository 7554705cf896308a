"""Review services without HTTP: comments, people, readers, the meeting and its invitations,
and the review notices sent after the commit."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from icalendar import Calendar

from incidents import undo
from incidents.lifecycle import TransitionError, publish, submit_for_review
from incidents.models import Incident
from incidents.review import (
    add_comment,
    add_person,
    anchor_choices,
    cancel_meeting,
    comment_threads,
    delete_comment,
    delete_incident,
    find_users,
    meeting_candidates,
    meeting_ics,
    remove_person,
    reopen_comment,
    resolve_comment,
    schedule_meeting,
    send_pending_notices,
    send_review_notice,
    set_visibility,
)
from incidents.review_models import ReviewComment, ReviewMeeting, ReviewNotice
from tests import factories
from tests.factories import make_action_item, make_entry, make_factor, make_incident, make_team

pytestmark = pytest.mark.django_db


def make_user(**overrides):
    """A user without a password: these tests sign in with force_login, and skipping the
    password hash makes them several times faster."""
    return factories.make_user(**({"password": None} | overrides))


def soon(hours=24):
    return (timezone.now() + dt.timedelta(hours=hours)).replace(second=0, microsecond=0)


# --- Comments --------------------------------------------------------------------------------


def test_comment_anchored_to_each_kind_of_part():
    """A comment can be about the write-up, a section, a timeline entry, a factor or an item."""
    reviewer = make_user()
    incident = make_incident(reviewers=[reviewer])
    entry = make_entry(incident)
    factor = make_factor(incident)
    item = make_action_item(incident)
    cases = {
        "incident": ("Write-up", ""),
        "impact": ("Impact", "impact"),
        f"timeline_entry:{entry.pk}": ("Timeline", f"entry-{entry.pk}"),
        f"factor:{factor.pk}": ("Factor", f"factor-{factor.pk}"),
        f"action_item:{item.pk}": ("Action item", f"action-{item.pk}"),
    }
    for anchor, (label, fragment) in cases.items():
        comment = add_comment(incident=incident, by=reviewer, body="Look here", anchor=anchor)
        assert comment.anchor_label.startswith(label)
        assert comment.anchor_fragment == fragment


def test_anchor_on_another_incidents_row_is_refused():
    reviewer = make_user()
    incident = make_incident(reviewers=[reviewer])
    foreign_entry = make_entry(make_incident())
    with pytest.raises(ValidationError, match="not there any more"):
        add_comment(
            incident=incident, by=reviewer, body="x", anchor=f"timeline_entry:{foreign_entry.pk}"
        )
    with pytest.raises(ValidationError):
        add_comment(incident=incident, by=reviewer, body="x", anchor="bogus")
    assert not ReviewComment.objects.exists()


def test_comment_markdown_is_sanitised():
    reviewer = make_user()
    incident = make_incident(reviewers=[reviewer])
    comment = add_comment(
        incident=incident,
        by=reviewer,
        body="**Bold** <script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)>",
    )
    assert "<strong>Bold</strong>" in comment.body_html
    assert "<script" not in comment.body_html
    assert "javascript:" not in comment.body_html
    assert "onerror" not in comment.body_html


def test_outsiders_cannot_comment_and_empty_comments_are_refused():
    incident = make_incident()
    with pytest.raises(TransitionError) as caught:
        add_comment(incident=incident, by=make_user(), body="Hi")
    assert caught.value.code == "forbidden"
    author = make_user()
    incident.authors.add(author)
    incident.forget_people()
    with pytest.raises(ValidationError, match="Write something"):
        add_comment(incident=incident, by=author, body="   ")


def test_threads_replies_and_resolution():
    """Replies join the thread of their root; resolving a reply resolves the thread; a reply
    to a resolved thread reopens it."""
    author, reviewer = make_user(), make_user()
    incident = make_incident(authors=[author], reviewers=[reviewer])
    root = add_comment(incident=incident, by=reviewer, body="Why 40 minutes?", anchor="impact")
    reply = add_comment(incident=incident, by=author, body="Paging delay.", parent=root)
    nested = add_comment(incident=incident, by=reviewer, body="Thanks", parent=reply)
    assert reply.parent == root and nested.parent == root
    assert nested.anchor == "impact"

    resolve_comment(comment=nested, by=author)
    root.refresh_from_db()
    assert root.resolved_by == author
    assert comment_threads(incident, show="open") == []
    assert [t.pk for t in comment_threads(incident, show="all")] == [root.pk]

    add_comment(incident=incident, by=reviewer, body="One more thing", parent=root)
    root.refresh_from_db()
    assert root.resolved_at is None
    resolve_comment(comment=root, by=reviewer)
    reopen_comment(comment=root, by=author)
    root.refresh_from_db()
    assert root.resolved_at is None


def test_only_the_writer_or_staff_delete_a_comment_and_undo_brings_the_thread_back():
    author, reviewer = make_user(), make_user()
    incident = make_incident(authors=[author], reviewers=[reviewer])
    root = add_comment(incident=incident, by=reviewer, body="Root")
    add_comment(incident=incident, by=author, body="Reply", parent=root)
    with pytest.raises(TransitionError, match="wrote"):
        delete_comment(comment=root, by=author)
    trashed = delete_comment(comment=root, by=reviewer)
    assert trashed.label == "Comment and its 1 reply"
    assert not ReviewComment.objects.exists()
    undo.restore(trashed, by=reviewer)
    assert ReviewComment.objects.count() == 2


def test_anchor_choices_list_the_incidents_parts():
    incident = make_incident()
    entry = make_entry(incident, text="Alert fired")
    factor = make_factor(incident)
    groups = dict(anchor_choices(incident))
    assert ("impact", "Impact") in groups["Sections"]
    assert groups["Timeline"][0][0] == f"timeline_entry:{entry.pk}"
    assert groups["Contributing factors"][0][0] == f"factor:{factor.pk}"
    assert "Action items" not in groups


# --- People and readers ------------------------------------------------------------------------


def test_add_and_remove_reviewers_with_undo():
    author, reviewer = make_user(), make_user()
    incident = make_incident(authors=[author])
    add_person(incident=incident, by=author, role="reviewer", user=reviewer)
    assert incident.is_reviewer(reviewer)
    with pytest.raises(ValidationError, match="already"):
        add_person(incident=incident, by=author, role="reviewer", user=reviewer)
    trashed = remove_person(incident=incident, by=author, role="reviewer", user=reviewer)
    assert not Incident.objects.get(pk=incident.pk).reviewers.exists()
    undo.restore(trashed, by=author)
    assert list(Incident.objects.get(pk=incident.pk).reviewers.all()) == [reviewer]


def test_authors_cannot_review_their_own_write_up_and_the_last_author_stays():
    author = make_user()
    incident = make_incident(authors=[author])
    with pytest.raises(ValidationError, match="someone else should review"):
        add_person(incident=incident, by=author, role="reviewer", user=author)
    with pytest.raises(ValidationError, match="at least one author"):
        remove_person(incident=incident, by=author, role="author", user=author)


def test_reviewers_cannot_change_people():
    reviewer = make_user()
    incident = make_incident(reviewers=[reviewer])
    with pytest.raises(TransitionError) as caught:
        add_person(incident=incident, by=reviewer, role="reviewer", user=make_user())
    assert caught.value.code == "forbidden"


def test_adding_a_reviewer_during_review_asks_them_by_mail():
    author, reviewer = make_user(), make_user()
    incident = make_incident(status="in_review", authors=[author])
    add_person(incident=incident, by=author, role="reviewer", user=reviewer)
    notice = ReviewNotice.objects.get()
    assert (notice.kind, notice.recipient) == ("review_requested", reviewer)


def test_visibility_rules_and_history():
    author = make_user()
    team = make_team()
    reader = make_user()
    incident = make_incident(authors=[author])
    with pytest.raises(ValidationError, match="at least one team"):
        set_visibility(incident=incident, by=author, visibility="teams")
    with pytest.raises(ValidationError, match="at least one person"):
        set_visibility(incident=incident, by=author, visibility="people")
    set_visibility(incident=incident, by=author, visibility="people", users=[reader])
    incident.refresh_from_db()
    assert incident.visibility == "people"
    assert Incident.objects.visible_to(reader).filter(pk=incident.pk).exists()
    assert not Incident.objects.visible_to(make_user()).filter(pk=incident.pk).exists()
    set_visibility(incident=incident, by=author, visibility="teams", teams=[team])
    record = Incident.history.filter(id=incident.pk).order_by("-history_id").first()
    assert record.history_change_reason == "Readers: only chosen teams"
    assert [r.team_id for r in record.visible_teams.all()] == [team.pk]
    set_visibility(incident=incident, by=author, visibility="everyone", teams=[team])
    assert not incident.visible_teams.exists()


def test_find_users_by_username_any_case():
    make_user(username="Dana")
    make_user(username="inactive", is_active=False)
    found, missing = find_users("dana, nobody inactive")
    assert [u.username for u in found] == ["Dana"]
    assert missing == ["nobody", "inactive"]


def test_delete_incident_needs_the_slug_typed():
    author = make_user()
    incident = make_incident(authors=[author])
    with pytest.raises(ValidationError, match="to confirm"):
        delete_incident(incident=incident, by=author, confirm_slug="nope")
    with pytest.raises(TransitionError):
        delete_incident(incident=incident, by=make_user(), confirm_slug=incident.slug)
    slug = incident.slug
    trashed = delete_incident(incident=incident, by=author, confirm_slug=f" {slug} ")
    assert not Incident.objects.filter(slug=slug).exists()
    undo.restore(trashed, by=author)
    assert Incident.objects.filter(slug=slug).exists()


# --- The meeting -----------------------------------------------------------------------------


def test_meeting_invitation_then_update_keeps_uid_and_raises_sequence(
    django_capture_on_commit_callbacks, mailoutbox
):
    """The .ics of a change has the same UID and a higher SEQUENCE, and is e-mailed."""
    author, reviewer = make_user(), make_user()
    incident = make_incident(authors=[author], reviewers=[reviewer])
    with django_capture_on_commit_callbacks(execute=True):
        meeting = schedule_meeting(
            incident=incident, by=author, starts_at=soon(), duration=45,
            location="Room 4", facilitator=author, attendees=[reviewer],
        )  # fmt: skip
    assert meeting.sequence == 0
    assert sorted(m.to[0] for m in mailoutbox) == sorted([author.email, reviewer.email])
    first = Calendar.from_ical(mailoutbox[0].attachments[0].content)
    event = first.walk("VEVENT")[0]
    assert str(event["UID"]) == meeting.uid
    assert int(event["SEQUENCE"]) == 0
    assert str(first["METHOD"]) == "REQUEST"

    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        changed = schedule_meeting(
            incident=incident, by=author, starts_at=soon(48), duration=45,
            location="Room 4", facilitator=author, attendees=[reviewer],
        )  # fmt: skip
    assert changed.pk == meeting.pk and changed.sequence == 1
    assert len(mailoutbox) == 2
    updated = Calendar.from_ical(mailoutbox[0].attachments[0].content).walk("VEVENT")[0]
    assert str(updated["UID"]) == meeting.uid
    assert int(updated["SEQUENCE"]) == 1
    assert "changed" in mailoutbox[0].subject


def test_saving_an_unchanged_meeting_sends_nothing():
    author = make_user()
    incident = make_incident(authors=[author])
    when = soon()
    schedule_meeting(incident=incident, by=author, starts_at=when, facilitator=author)
    count = ReviewNotice.objects.count()
    again = schedule_meeting(incident=incident, by=author, starts_at=when, facilitator=author)
    assert again.sequence == 0
    assert ReviewNotice.objects.count() == count


def test_people_taken_off_the_meeting_get_a_cancellation():
    author, dropped = make_user(), make_user()
    incident = make_incident(authors=[author], reviewers=[dropped])
    schedule_meeting(incident=incident, by=author, starts_at=soon(), facilitator=author,
                     attendees=[dropped])  # fmt: skip
    schedule_meeting(incident=incident, by=author, starts_at=soon(), facilitator=author,
                     attendees=[])  # fmt: skip
    cancel = ReviewNotice.objects.filter(recipient=dropped).order_by("-id").first()
    assert "METHOD:CANCEL" in cancel.ics


def test_attendees_must_be_able_to_read_a_private_write_up():
    author, outsider = make_user(), make_user()
    incident = make_incident(authors=[author], visibility="people")
    with pytest.raises(ValidationError, match="may not read"):
        schedule_meeting(incident=incident, by=author, starts_at=soon(), facilitator=author,
                         attendees=[outsider])  # fmt: skip
    assert not ReviewMeeting.objects.exists()


def test_cancel_sends_cancel_and_undo_sends_a_newer_invitation():
    author, reviewer = make_user(), make_user()
    incident = make_incident(authors=[author], reviewers=[reviewer])
    meeting = schedule_meeting(incident=incident, by=author, starts_at=soon(),
                               facilitator=author, attendees=[reviewer])  # fmt: skip
    trashed = cancel_meeting(incident=incident, by=author)
    assert not ReviewMeeting.objects.exists()
    cancel = ReviewNotice.objects.filter(recipient=reviewer, ics__contains="METHOD:CANCEL").get()
    assert "SEQUENCE:1" in cancel.ics
    undo.restore(trashed, by=author)
    back = ReviewMeeting.objects.get()
    assert back.uid == meeting.uid and back.sequence == 2
    assert list(back.attendees.all()) == [reviewer]
    newest = ReviewNotice.objects.filter(recipient=reviewer).order_by("-id").first()
    assert "METHOD:REQUEST" in newest.ics and "SEQUENCE:2" in newest.ics


def test_ics_describes_the_meeting():
    author, reviewer = make_user(first_name="Ana"), make_user()
    incident = make_incident(authors=[author], reviewers=[reviewer], title="DNS outage")
    meeting = schedule_meeting(incident=incident, by=author, starts_at=soon(), duration=30,
                               location="https://meet.example.com/x", facilitator=author,
                               attendees=[reviewer], agenda="Walk the timeline")  # fmt: skip
    event = Calendar.from_ical(meeting_ics(meeting)).walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == "Incident review: DNS outage"
    assert event["DTEND"].dt - event["DTSTART"].dt == dt.timedelta(minutes=30)
    assert str(event["LOCATION"]) == "https://meet.example.com/x"
    assert str(event["ORGANIZER"]) == f"mailto:{author.email}"
    assert "Walk the timeline" in str(event["DESCRIPTION"])


def test_meeting_candidates_are_people_who_may_read_it():
    team = make_team()
    member, stranger_member = make_user(teams=[team]), make_user(teams=[team])
    author = make_user()
    incident = make_incident(authors=[author], teams=[team], visibility="people")
    incident.visible_users.add(member)
    names = {u.pk for u in meeting_candidates(incident)}
    assert names == {author.pk, member.pk}
    assert stranger_member.pk not in names


# --- Notices ---------------------------------------------------------------------------------


def test_notices_go_out_after_commit_and_never_twice(
    django_capture_on_commit_callbacks, mailoutbox, settings
):
    settings.DEBRIEF_BASE_URL = "https://debrief.example.com"
    author, reviewer = make_user(), make_user()
    incident = make_incident(status="draft", authors=[author], reviewers=[reviewer])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submit_for_review(incident=incident, by=author, note="Please look at detection")
    assert mailoutbox == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == [reviewer.email]
    assert "Review requested" in message.subject
    assert f"https://debrief.example.com/incidents/{incident.slug}/review/" in message.body
    assert "Please look at detection" in message.body
    # A retried task sends nothing more.
    notice = ReviewNotice.objects.get()
    send_review_notice.call(notice.pk)
    assert len(mailoutbox) == 1


def test_a_failing_mail_server_keeps_the_change_and_the_notice_for_a_retry(
    django_capture_on_commit_callbacks, mailoutbox, monkeypatch
):
    author, reviewer = make_user(), make_user()
    incident = make_incident(status="in_review", authors=[author], reviewers=[reviewer])

    def broken(*args, **kwargs):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr("incidents.review.send_mail", broken)
    with django_capture_on_commit_callbacks(execute=True):
        publish(incident=incident, by=reviewer)
    assert Incident.objects.get(pk=incident.pk).status == "published"
    notice = ReviewNotice.objects.get()
    assert notice.sent_at is None and "mail server down" in notice.last_error

    monkeypatch.undo()
    ReviewNotice.objects.update(created_at=timezone.now() - dt.timedelta(hours=1))
    assert send_pending_notices() == 1
    assert [m.to for m in mailoutbox] == [[author.email]]
    assert send_pending_notices() == 0


def test_people_without_email_or_inactive_get_no_notice():
    author = make_user()
    quiet, gone = make_user(email=""), make_user(is_active=False)
    incident = make_incident(status="draft", authors=[author], reviewers=[quiet, gone])
    submit_for_review(incident=incident, by=author)
    assert not ReviewNotice.objects.exists()
