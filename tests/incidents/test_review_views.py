"""Review views over HTTP: each htmx view as a full page and as a partial, plain posts that
redirect, invalid input that re-renders with errors, Undo and the Trash."""

import datetime as dt
import json

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from incidents import undo
from incidents.models import Incident, TimelineEntry
from incidents.review import add_comment, schedule_meeting
from incidents.review_models import ReviewComment, ReviewMeeting, TrashEntry
from tests import factories
from tests.factories import make_entry, make_incident

pytestmark = pytest.mark.django_db


def make_user(**overrides):
    """A user without a password: these tests sign in with force_login, and skipping the
    password hash makes them several times faster."""
    return factories.make_user(**({"password": None} | overrides))


HTMX = {"HX-Request": "true"}


@pytest.fixture
def cast():
    author = make_user(username="ana", first_name="Ana")
    reviewer = make_user(username="rui", first_name="Rui")
    incident = make_incident(status="in_review", authors=[author], reviewers=[reviewer],
                             title="Payments timeout")  # fmt: skip
    return author, reviewer, incident


def login(user):
    client = Client()
    client.force_login(user)
    return client


def url(name, incident, *args):
    return reverse(name, args=[incident.slug, *args])


# --- The review page ---------------------------------------------------------------------------


def test_review_page_full_and_each_panel_partial(cast):
    _author, reviewer, incident = cast
    client = login(reviewer)
    page = client.get(url("review_page", incident))
    assert page.status_code == 200
    html = page.content.decode()
    for element in ('id="comments"', 'id="review-status"', 'id="review-meeting"',
                    'id="review-people"', 'id="review-readers"', "Approve and publish"):  # fmt: skip
        assert element in html
    assert "HX-Request" in page["Vary"]
    for name, element in (("review_comments", 'id="comments"'),
                          ("review_meeting", 'id="review-meeting"'),
                          ("review_readers", 'id="review-readers"')):  # fmt: skip
        partial = client.get(url(name, incident), headers=HTMX)
        assert partial.status_code == 200
        assert element in partial.content.decode()
        assert "<html" not in partial.content.decode()
        full = client.get(url(name, incident))
        assert "<html" in full.content.decode() and element in full.content.decode()


def test_compact_comments_panel_for_the_incident_page(cast):
    """The lazily loaded panel lists open threads compactly and links to the review page."""
    author, reviewer, incident = cast
    add_comment(incident=incident, by=reviewer, body="Which **dashboard**?", anchor="impact")
    client = login(author)
    panel = client.get(url("review_comments", incident) + "?view=panel", headers=HTMX)
    html = panel.content.decode()
    assert panel.status_code == 200 and "<html" not in html
    assert 'id="comments-panel"' in html and "1 open" in html
    assert "<strong>dashboard</strong>" in html
    assert f'href="{url("review_page", incident)}#comments"' in html
    full = client.get(url("review_comments", incident) + "?view=panel")
    assert "<html" in full.content.decode()


def test_review_page_query_count_does_not_grow_with_comments(cast, django_assert_max_num_queries):
    author, reviewer, incident = cast
    client = login(reviewer)

    def count():
        with django_assert_max_num_queries(30) as captured:
            assert client.get(url("review_page", incident)).status_code == 200
        return len(captured.captured_queries)

    add_comment(incident=incident, by=reviewer, body="One", anchor="impact")
    few = count()
    for n in range(6):
        root = add_comment(incident=incident, by=reviewer, body=f"Thread {n}")
        add_comment(incident=incident, by=author, body="Reply", parent=root)
    assert count() == few


def test_detail_page_shows_the_review_panel_with_lazy_parts(cast, django_assert_max_num_queries):
    """The panel adds no query to the incident page; threads and meeting load lazily."""
    _author, reviewer, incident = cast
    client = login(reviewer)
    with django_assert_max_num_queries(12):
        page = client.get(incident.get_absolute_url())
    html = page.content.decode()
    assert 'id="review-panel"' in html
    assert f'hx-get="{url("review_comments", incident)}?view=panel"' in html
    assert f'href="{url("review_page", incident)}#comments"' in html  # no-JS fallback
    assert "Review: approve or ask for changes" in html


# --- Comments ----------------------------------------------------------------------------------


def test_add_comment_with_htmx_returns_the_threads(cast):
    _author, reviewer, incident = cast
    entry = make_entry(incident, text="Pager fired")
    response = login(reviewer).post(
        url("review_comments", incident),
        {"anchor": f"timeline_entry:{entry.pk}", "body": "Why **20 minutes**?"},
        headers=HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert "<strong>20 minutes</strong>" in html
    assert f"#entry-{entry.pk}" in html
    assert "1 open" in html
    assert ReviewComment.objects.get().timeline_entry == entry
    assert "debrief:comments-changed" in response["HX-Trigger"]


def test_status_panel_refreshes_on_its_own(cast):
    """The status panel re-counts open comments when the threads change (htmx event)."""
    _author, reviewer, incident = cast
    add_comment(incident=incident, by=reviewer, body="Open one")
    client = login(reviewer)
    part = client.get(url("review_page", incident) + "?part=status", headers=HTMX)
    html = part.content.decode()
    assert part.status_code == 200 and html.lstrip().startswith('<section id="review-status"')
    assert "1 review comment is still open" in html
    assert 'hx-trigger="debrief:comments-changed from:body' in html


def test_add_comment_plain_post_redirects_to_the_thread(cast):
    _author, reviewer, incident = cast
    response = login(reviewer).post(url("review_comments", incident), {"body": "Numbers?"})
    comment = ReviewComment.objects.get()
    assert response.status_code == 302
    assert response["Location"].endswith(f"#comment-{comment.pk}")


def test_invalid_comment_shows_errors_in_place(cast):
    _author, reviewer, incident = cast
    client = login(reviewer)
    partial = client.post(url("review_comments", incident), {"body": "  "}, headers=HTMX)
    assert partial.status_code == 200
    assert "This field is required" in partial.content.decode()
    bad_anchor = client.post(
        url("review_comments", incident), {"body": "x", "anchor": "factor:999"}
    )
    assert bad_anchor.status_code == 200
    assert "Select a valid choice" in bad_anchor.content.decode()
    assert not ReviewComment.objects.exists()


def test_reply_resolve_reopen_with_htmx(cast):
    author, reviewer, incident = cast
    root = add_comment(incident=incident, by=reviewer, body="Add the graph", anchor="impact")
    client = login(author)
    reply = client.post(url("review_comments", incident), {"parent": root.pk, "body": "Done"},
                        headers=HTMX)  # fmt: skip
    assert reply.status_code == 200 and "Done" in reply.content.decode()
    resolved = client.post(url("review_comment_action", incident, root.pk, "resolve"), {"show": "all"},
                           headers=HTMX)  # fmt: skip
    assert "Resolved by Ana" in resolved.content.decode()
    assert ReviewComment.objects.get(pk=root.pk).is_resolved
    only_open = client.post(url("review_comment_action", incident, root.pk, "reopen"), headers=HTMX)
    assert only_open.status_code == 200
    assert not ReviewComment.objects.get(pk=root.pk).is_resolved


def test_delete_comment_offers_undo_and_undo_restores_it(cast):
    _author, reviewer, incident = cast
    comment = add_comment(incident=incident, by=reviewer, body="Typo in title")
    client = login(reviewer)
    response = client.post(
        url("review_comment_action", incident, comment.pk, "delete"), headers=HTMX
    )
    html = response.content.decode()
    entry = TrashEntry.objects.get()
    assert 'hx-swap-oob="afterbegin:#main"' in html
    assert reverse("undo", args=[entry.token]) in html
    assert not ReviewComment.objects.exists()

    undone = client.post(reverse("undo", args=[entry.token]), headers=HTMX)
    assert undone.status_code == 200
    assert "Restored: Comment." in undone.content.decode()
    assert json.loads(undone["HX-Trigger"]) == {
        "debrief:restored": {"model": "incidents.reviewcomment"}
    }
    assert ReviewComment.objects.get().body == "Typo in title"


def test_delete_comment_plain_post_adds_a_message_with_undo(cast):
    _author, reviewer, incident = cast
    comment = add_comment(incident=incident, by=reviewer, body="x")
    client = login(reviewer)
    response = client.post(url("review_comment_action", incident, comment.pk, "delete"))
    assert response.status_code == 302
    page = client.get(response["Location"])
    token = TrashEntry.objects.get().token
    assert f'action="{reverse("undo", args=[token])}"' in page.content.decode()
    back = client.post(reverse("undo", args=[token]))
    assert back.status_code == 302 and back["Location"].endswith("#comments")
    assert ReviewComment.objects.exists()


def test_someone_elses_comment_cannot_be_deleted(cast):
    author, reviewer, incident = cast
    comment = add_comment(incident=incident, by=reviewer, body="x")
    response = login(author).post(url("review_comment_action", incident, comment.pk, "delete"))
    assert response.status_code == 403
    assert ReviewComment.objects.exists()


# --- Moves -------------------------------------------------------------------------------------


def test_submit_from_the_incident_page_returns_there(cast):
    author, _reviewer, incident = cast
    Incident.objects.filter(pk=incident.pk).update(status="draft")
    response = login(author).post(
        url("review_move", incident, "submit"), {"next": incident.get_absolute_url()}
    )
    assert response.status_code == 302
    assert response["Location"] == incident.get_absolute_url()
    assert Incident.objects.get(pk=incident.pk).status == "in_review"


def test_next_may_not_leave_the_site(cast):
    author, _reviewer, incident = cast
    Incident.objects.filter(pk=incident.pk).update(status="draft")
    response = login(author).post(url("review_move", incident, "submit"),
                                  {"next": "https://evil.example.com/"})  # fmt: skip
    assert response["Location"] == url("review_page", incident)


def test_approve_with_open_comments_needs_a_reason_then_refreshes(cast):
    _author, reviewer, incident = cast
    add_comment(incident=incident, by=reviewer, body="Still unclear")
    client = login(reviewer)
    refused = client.post(url("review_move", incident, "approve"), {}, headers=HTMX)
    assert refused.status_code == 200
    assert "1 review comment is still open" in refused.content.decode()
    assert Incident.objects.get(pk=incident.pk).status == "in_review"
    approved = client.post(url("review_move", incident, "approve"),
                           {"open_comments_reason": "Cosmetic only"}, headers=HTMX)  # fmt: skip
    assert approved.status_code == 200
    assert approved["HX-Refresh"] == "true"
    assert Incident.objects.get(pk=incident.pk).status == "published"


def test_a_move_from_a_stale_state_is_a_conflict(cast):
    _author, reviewer, incident = cast
    client = login(reviewer)
    client.post(url("review_move", incident, "approve"), {})
    again = client.post(
        url("review_move", incident, "request-changes"), {"note": "x"}, headers=HTMX
    )
    assert again.status_code == 409
    assert "published can&#x27;t be sent back" in again.content.decode()


def test_unknown_move_is_404(cast):
    _author, reviewer, incident = cast
    assert login(reviewer).post(url("review_move", incident, "explode")).status_code == 404


def test_moves_need_post(cast):
    _author, reviewer, incident = cast
    assert login(reviewer).get(url("review_move", incident, "approve")).status_code == 405


def test_state_changes_need_csrf(cast):
    _author, reviewer, incident = cast
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    assert client.post(url("review_move", incident, "approve"), {}).status_code == 403
    assert client.post(url("review_comments", incident), {"body": "x"}).status_code == 403
    assert Incident.objects.get(pk=incident.pk).status == "in_review"


# --- People, readers, meeting ----------------------------------------------------------------


def test_add_and_remove_reviewer_with_htmx(cast):
    author, reviewer, incident = cast
    make_user(username="zoe", first_name="Zoe")
    client = login(author)
    added = client.post(url("review_people", incident), {"role": "reviewer", "username": "ZOE"},
                        headers=HTMX)  # fmt: skip
    assert added.status_code == 200 and "Zoe" in added.content.decode()
    unknown = client.post(url("review_people", incident), {"role": "reviewer", "username": "nobody"},
                          headers=HTMX)  # fmt: skip
    assert unknown.status_code == 200
    assert "No active account is called nobody" in unknown.content.decode()
    removed = client.post(
        url("review_person_remove", incident, "reviewer", reviewer.pk), headers=HTMX
    )
    assert "Rui as reviewer moved to the trash" in removed.content.decode()
    assert not incident.reviewers.filter(pk=reviewer.pk).exists()


def test_readers_form_makes_a_write_up_private(cast):
    author, _reviewer, incident = cast
    reader = make_user(username="rea")
    response = login(author).post(url("review_readers", incident),
                                  {"visibility": "people", "visible_users": "rea"})  # fmt: skip
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.visibility == "people"
    assert list(incident.visible_users.all()) == [reader]
    invalid = login(author).post(url("review_readers", incident), {"visibility": "teams"},
                                 headers=HTMX)  # fmt: skip
    assert invalid.status_code == 200 and "Choose at least one team" in invalid.content.decode()


def test_schedule_meeting_and_download_ics(cast):
    author, reviewer, incident = cast
    client = login(author)
    form = client.get(url("review_meeting", incident) + "?edit=meeting", headers=HTMX)
    assert 'name="starts_at"' in form.content.decode()
    when = (timezone.localtime() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    saved = client.post(url("review_meeting", incident), {
        "starts_at": when, "duration": 60, "location": "Room 2", "facilitator": author.pk,
        "attendees": [reviewer.pk], "more_attendees": "", "agenda": "",
    }, headers=HTMX)  # fmt: skip
    assert saved.status_code == 200
    assert "Room 2" in saved.content.decode()
    assert "attendees get the invitation" in saved.content.decode()
    ics = client.get(url("review_meeting_ics", incident))
    assert ics["Content-Type"].startswith("text/calendar")
    assert "attachment" in ics["Content-Disposition"]
    assert (
        b"BEGIN:VEVENT" in ics.content and ReviewMeeting.objects.get().uid.encode() in ics.content
    )


def test_invalid_meeting_form_shows_errors(cast):
    author, _reviewer, incident = cast
    response = login(author).post(url("review_meeting", incident),
                                  {"starts_at": "", "duration": 5}, headers=HTMX)  # fmt: skip
    html = response.content.decode()
    assert response.status_code == 200
    assert "This field is required" in html
    assert "greater than or equal to 15" in html
    assert not ReviewMeeting.objects.exists()


def test_cancel_meeting_offers_undo(cast):
    author, reviewer, incident = cast
    schedule_meeting(incident=incident, by=author, starts_at=timezone.now() + dt.timedelta(days=1),
                     facilitator=author, attendees=[reviewer])  # fmt: skip
    response = login(reviewer).post(url("review_meeting_cancel", incident), headers=HTMX)
    assert "Review meeting moved to the trash" in response.content.decode()
    assert "No review meeting planned" in response.content.decode()
    assert login(reviewer).get(url("review_meeting_ics", incident)).status_code == 404


# --- Delete, undo, trash -------------------------------------------------------------------


def test_delete_incident_asks_for_the_slug(cast):
    author, _reviewer, incident = cast
    client = login(author)
    assert client.get(url("incident_delete", incident)).status_code == 200
    wrong = client.post(url("incident_delete", incident), {"confirm_slug": "nope"})
    assert wrong.status_code == 200 and f"Type {incident.slug} to confirm" in wrong.content.decode()
    assert Incident.objects.filter(pk=incident.pk).exists()
    done = client.post(url("incident_delete", incident), {"confirm_slug": incident.slug})
    assert done.status_code == 302 and done["Location"] == reverse("home")
    assert not Incident.objects.filter(pk=incident.pk).exists()
    messages = [str(m) for m in get_messages(done.wsgi_request)]
    assert any("Payments timeout" in m and "Undo" in m for m in messages)


def test_undo_of_a_deleted_incident_goes_back_to_it(cast):
    author, _reviewer, incident = cast
    slug = incident.slug
    entry = undo.soft_delete(incident, by=author, next_url=f"/incidents/{slug}/")
    response = login(author).post(reverse("undo", args=[entry.token]))
    assert response.status_code == 302 and response["Location"] == f"/incidents/{slug}/"
    assert Incident.objects.filter(slug=slug).exists()


def test_undo_with_reload_refreshes_the_page(cast):
    """A feature that cannot refresh its list in place asks for a reload on Undo."""
    author, _reviewer, incident = cast
    entry = undo.soft_delete(make_entry(incident), by=author)
    response = login(author).post(
        reverse("undo", args=[entry.token]), {"reload": "1"}, headers=HTMX
    )
    assert response["HX-Refresh"] == "true"
    assert TimelineEntry.objects.filter(incident=incident).exists()


def test_undo_twice_or_by_someone_else(cast):
    author, _reviewer, incident = cast
    entry = undo.soft_delete(make_entry(incident), by=author)
    assert login(make_user()).post(reverse("undo", args=[entry.token])).status_code == 404
    client = login(author)
    client.post(reverse("undo", args=[entry.token]))
    again = client.post(reverse("undo", args=[entry.token]), headers=HTMX)
    assert again.status_code == 409 and "already restored" in again.content.decode()
    unknown = client.post(reverse("undo", args=["00000000-0000-0000-0000-000000000000"]))
    assert unknown.status_code == 404
    assert client.post("/undo/not-a-token/").status_code == 404


def test_trash_page_lists_and_restores(cast):
    author, _reviewer, incident = cast
    entry = undo.soft_delete(
        make_entry(incident, text="Rolled back"), by=author, label="Rollback entry"
    )
    client = login(author)
    page = client.get(reverse("trash"))
    assert page.status_code == 200 and "<td>Rollback entry</td>" in page.content.decode()
    assert "Payments timeout" in page.content.decode()
    assert "Rollback entry" not in login(make_user()).get(reverse("trash")).content.decode()
    restored = client.post(reverse("undo", args=[entry.token]))
    assert restored.status_code == 302
    assert "<td>Rollback entry</td>" not in client.get(reverse("trash")).content.decode()


def test_undo_toast_is_appended_for_htmx_responses(rf, cast):
    """announce() keeps the response's own content and adds the out-of-band toast."""
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.http import HttpResponse

    author, _reviewer, incident = cast
    entry = undo.soft_delete(make_entry(incident), by=author, label="Entry 09:00")
    request = rf.post("/")
    request.session = {}
    request._messages = FallbackStorage(request)
    response = undo.announce(request, entry, HttpResponse("<ol id='timeline'></ol>"))
    html = response.content.decode()
    assert html.startswith("<ol id='timeline'></ol>")
    assert "Entry 09:00 moved to the trash." in html and 'hx-target="closest .undo"' in html
