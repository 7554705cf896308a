"""End to end in Debian's chromium: an author submits, a reviewer comments and requests changes,
the author resolves and resubmits, the reviewer approves and the write-up is published. Also:
Undo of a deleted comment, and a deleted timeline entry restored from the Trash."""

import re

import pytest
from playwright.sync_api import expect

from incidents import undo
from incidents.models import Incident, TimelineEntry
from incidents.review_models import ReviewComment
from tests.factories import make_entry, make_incident, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-good-password-1"


def signed_in(browser, base, username):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")
    return context, page, errors


def status_of(incident):
    return Incident.objects.get(pk=incident.pk).status


def test_submit_comment_request_changes_resolve_resubmit_approve(browser, site):
    make_user(username="ana", first_name="Ana", password=PASSWORD)
    make_user(username="rui", first_name="Rui", password=PASSWORD)
    author = make_user(username="author", first_name="Alex", password=PASSWORD)
    reviewer = make_user(username="reviewer", first_name="Rita", password=PASSWORD)
    incident = make_incident(status="draft", authors=[author], reviewers=[reviewer],
                             title="Checkout timeouts after deploy")  # fmt: skip
    entry = make_entry(incident, kind="alert", text="Latency alert fired")
    base = site()
    review_url = f"{base}/incidents/{incident.slug}/review/"

    author_ctx, author_page, author_errors = signed_in(browser, base, "author")
    reviewer_ctx, reviewer_page, reviewer_errors = signed_in(browser, base, "reviewer")
    try:
        # The author submits from the incident page.
        author_page.goto(f"{base}{incident.get_absolute_url()}")
        author_page.get_by_role("button", name="Submit for review").click()
        author_page.wait_for_url(f"{base}{incident.get_absolute_url()}")
        expect(author_page.get_by_text("was submitted for review")).to_be_visible()
        assert status_of(incident) == "in_review"

        # The reviewer comments on the timeline entry, without a page reload.
        reviewer_page.goto(review_url)
        reviewer_page.evaluate("window.__stillHere = true")
        reviewer_page.get_by_label("About").select_option(f"timeline_entry:{entry.pk}")
        reviewer_page.get_by_label("Comment", exact=True).fill(
            "Why did the alert take **20 minutes**?"
        )
        reviewer_page.get_by_role("button", name="Add comment").click()
        thread = reviewer_page.locator(".comment-thread").first
        expect(thread.locator("strong", has_text="20 minutes")).to_be_visible()
        expect(thread.get_by_role("link", name=re.compile("Timeline"))).to_be_visible()
        expect(reviewer_page.locator("#comments .open-count")).to_have_text("1 open")
        # The status panel follows: approving now would need a reason.
        expect(reviewer_page.get_by_text("1 review comment is still open.")).to_be_visible()
        assert reviewer_page.evaluate("window.__stillHere") is True

        # … and asks for changes.
        reviewer_page.get_by_label("What should change?").fill("Explain the alert delay.")
        reviewer_page.get_by_role("button", name="Request changes").click()
        expect(reviewer_page.locator("#review-status .badge.status")).to_have_text(
            "Changes requested"
        )
        assert status_of(incident) == "changes_requested"

        # The author replies, resolves the thread (htmx) and resubmits.
        author_page.goto(review_url)
        author_page.evaluate("window.__stillHere = true")
        author_page.locator(".comment-thread summary", has_text="Reply").click()
        author_page.get_by_label("Reply", exact=True).fill(
            "The threshold needed 15 minutes of data."
        )
        author_page.get_by_role("button", name="Reply").click()
        expect(author_page.get_by_text("The threshold needed 15 minutes of data.")).to_be_visible()
        author_page.get_by_role("button", name="Resolve").click()
        expect(author_page.locator("#comments .open-count")).to_have_text("0 open")
        assert author_page.evaluate("window.__stillHere") is True
        assert ReviewComment.objects.get(parent=None).resolved_by == author
        author_page.get_by_role("button", name="Submit for review").click()
        expect(author_page.locator("#review-status .badge.status")).to_have_text("In review")

        # The reviewer approves: no open comments, so no reason is needed.
        reviewer_page.goto(review_url)
        expect(reviewer_page.get_by_text("still open")).to_have_count(0)
        reviewer_page.get_by_role("button", name="Approve and publish").click()
        expect(reviewer_page.locator("#review-status .badge.status")).to_have_text("Published")
        assert status_of(incident) == "published"

        # The history tells the story.
        reviewer_page.goto(f"{base}/incidents/{incident.slug}/history/")
        expect(reviewer_page.get_by_text("Approved and published")).to_be_visible()
        expect(reviewer_page.get_by_text("Changes requested").first).to_be_visible()
        assert author_errors == [] and reviewer_errors == []
    finally:
        author_ctx.close()
        reviewer_ctx.close()


def test_deleted_comment_comes_back_with_undo(browser, site):
    reviewer = make_user(username="reviewer", password=PASSWORD)
    incident = make_incident(status="in_review", reviewers=[reviewer], authors=[make_user()])
    from incidents.review import add_comment

    add_comment(incident=incident, by=reviewer, body="Typo in the summary")
    base = site()
    context, page, errors = signed_in(browser, base, "reviewer")
    try:
        page.goto(f"{base}/incidents/{incident.slug}/review/")
        page.get_by_role("button", name="Delete").click()
        toast = page.locator(".undo-toast")
        expect(toast).to_contain_text("Comment moved to the trash.")
        expect(page.get_by_text("Typo in the summary")).to_have_count(0)
        toast.get_by_role("button", name="Undo").click()
        expect(page.locator(".undo-toast")).to_contain_text("Restored: Comment.")
        # The threads refresh themselves on the debrief:restored event.
        expect(page.get_by_text("Typo in the summary")).to_be_visible()
        assert ReviewComment.objects.count() == 1
        assert errors == []
    finally:
        context.close()


def test_deleted_timeline_entry_comes_back_from_the_trash(browser, site):
    author = make_user(username="author", password=PASSWORD)
    incident = make_incident(authors=[author])
    entry = make_entry(incident, text="Rolled back the canary")
    pk = entry.pk
    undo.soft_delete(entry, by=author, label="Timeline entry “Rolled back the canary”")
    base = site()
    context, page, errors = signed_in(browser, base, "author")
    try:
        page.goto(f"{base}/trash/")
        row = page.get_by_role("row", name=re.compile("Rolled back the canary"))
        row.get_by_role("button", name="Restore").click()
        page.wait_for_url(f"{base}{incident.get_absolute_url()}")
        expect(page.get_by_text("Rolled back the canary").first).to_be_visible()
        assert TimelineEntry.objects.filter(pk=pk).exists()
        assert errors == []
    finally:
        context.close()


def serious(results) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("width", [1280, 390])
def test_review_pages_have_no_serious_accessibility_violations(browser, site, width):
    """axe-core on the review page (threads, meeting, people, readers), the meeting form, the
    history, the trash, the delete page and the incident page with its review panel."""
    import datetime as dt

    from axe_playwright_python.sync_playwright import Axe
    from django.utils import timezone

    from incidents.review import add_comment, schedule_meeting

    author = make_user(username="author", first_name="Alex", password=PASSWORD)
    reviewer = make_user(username="reviewer", first_name="Rita", password=PASSWORD)
    incident = make_incident(status="in_review", authors=[author], reviewers=[reviewer])
    entry = make_entry(incident, kind="alert", text="Latency alert fired")
    root = add_comment(incident=incident, by=reviewer, body="Why *so* late?",
                       anchor=f"timeline_entry:{entry.pk}")  # fmt: skip
    add_comment(incident=incident, by=author, body="Threshold.", parent=root)
    schedule_meeting(incident=incident, by=author, facilitator=author, attendees=[reviewer],
                     starts_at=timezone.now() + dt.timedelta(days=1), location="Room 4")  # fmt: skip
    undo.soft_delete(make_entry(incident, text="Old entry"), by=author)
    base = site()
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill("author")
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")
    axe = Axe()
    incident_url = f"{base}/incidents/{incident.slug}"
    problems = {}
    for path in ("/review/", "/review/?edit=meeting", "/history/", "/delete/", "/"):
        page.goto(incident_url + path)
        if path == "/":
            page.locator("#comments-panel").wait_for()
        found = serious(axe.run(page))
        if found:
            problems[path] = found
    page.goto(f"{base}/trash/")
    found = serious(axe.run(page))
    if found:
        problems["/trash/"] = found
    context.close()
    assert problems == {}
