"""The three kinds of user, each from the sign-in form to the end of their errand, in Debian's
chromium: an engineer files a write-up, a manager approves it and works the overdue action
items, a team member finds an old incident and reads its lesson.

Selectors are labels and roles, as a screen-reader user finds things. Screenshots of the key
moments at 1280 and 390 px wide go to $DEBRIEF_ARTIFACTS (default var/artifacts/screens/, which
git ignores), named <journey>-<step>-<width>.png.
"""

import csv
import datetime as dt
import os
import re
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from incidents.models import ActionItem, Answer, ContributingFactor, Incident, TimelineEntry
from lessons import services as lessons
from tests.factories import (
    make_action_item,
    make_entry,
    make_factor,
    make_incident,
    make_service,
    make_team,
    make_user,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-good-password-1"
WIDTHS = (1280, 390)
ARTIFACTS = Path(
    os.environ.get("DEBRIEF_ARTIFACTS") or Path(settings.BASE_DIR) / "var" / "artifacts" / "screens"
)


def screenshots(page, journey, step):
    """The page as it is now, whole, at each width; the journey goes on at the first width."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(
            path=ARTIFACTS / f"{journey}-{step}-{width}.png",
            full_page=True,
            # Hiding the caret leaves style="" on inputs, which htmx copies when it swaps
            # them: a CSP violation in the console that the app did not cause.
            caret="initial",
        )
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def watch_console(page):
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def sign_in(page, base, username):
    """The real login form, as anyone signs in."""
    page.goto(f"{base}/")
    page.wait_for_url(f"{base}/accounts/login/?next=/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


CHAT = """\
[09:18] ana: checkout error-rate alert fired
[09:21] maria: customers report failed payments, I see it in the logs too
[09:40] maria: rolling back the config push
[09:47] ana: all clear, error rate back to normal
"""


def test_engineer_files_a_write_up_from_a_blank_page_to_submitted_for_review(
    page, site, guided_questions
):
    """Basics, impact (a blameful sentence flagged within 2 s, then reworded), a chat log pasted
    into the timeline, a factor with evidence, an action item that insists on a team and a due
    date, the checklist all done, and submitted: "In review"."""
    make_user(username="maria", first_name="Maria", password=PASSWORD)
    make_team(name="Payments", slug="payments")
    make_service(name="checkout", slug="checkout")
    day = timezone.localdate() - dt.timedelta(days=2)
    base = site()
    errors = watch_console(page)
    sign_in(page, base, "maria")

    # A blank page: the basics.
    page.get_by_role("link", name="New write-up").click()
    page.wait_for_url(f"{base}/incidents/new/")
    page.get_by_label("Title").fill("Checkout errors after a config push")
    page.get_by_role("radio", name=re.compile(r"^SEV2\b")).check()
    page.get_by_label("Summary").fill(
        "A config push disabled the payment provider's fallback; checkouts failed for 40 minutes."
    )
    page.get_by_role("group", name="Services affected").get_by_label("checkout").check()
    page.get_by_role("group", name="Teams involved").get_by_label("Payments").check()
    page.get_by_label("Started").fill(f"{day:%Y-%m-%d}T09:12")
    screenshots(page, "engineer", "1-basics")
    page.get_by_role("button", name="Start the write-up").click()
    page.wait_for_url("**/edit/impact/")
    incident = Incident.objects.get()
    assert incident.status == Incident.Status.DRAFT and incident.severity == "SEV2"

    # Impact: a blameful sentence, typed; the checker's hint shows within two seconds.
    impact = page.get_by_label("Impact", exact=True)
    impact.press_sequentially("Dave should have checked the config.")
    typed = time.monotonic()
    hint = page.get_by_text("This may read as blame")
    expect(hint).to_be_visible(timeout=2000)
    waited = time.monotonic() - typed
    print(f"\nblame hint shown {waited * 1000:.0f} ms after the last keystroke")
    assert waited < 2.0, waited
    expect(page.get_by_text("Describe what the person saw")).to_be_visible()
    expect(page.locator("#findings-impact mark")).to_have_text("Dave should have checked")
    screenshots(page, "engineer", "2-blame-hint")

    # Reworded in systems terms, the finding goes away.
    impact.fill("")
    impact.press_sequentially(
        "About 30% of checkouts failed for 40 minutes. The config push skipped the canary "
        "stage that code deploys go through, so nothing caught the bad value."
    )
    expect(hint).to_be_hidden(timeout=2000)
    expect(page.locator("#findings-impact mark")).to_have_count(0)
    page.get_by_role("group", name="Was it visible to customers?").get_by_role(
        "radio", name="Yes", exact=True
    ).check()
    page.get_by_role("group", name="Was data lost?").get_by_role(
        "radio", name="No", exact=True
    ).check()
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url("**/edit/timeline/")
    incident.refresh_from_db()
    assert incident.impact.startswith("About 30% of checkouts failed")
    assert "Dave" not in incident.impact
    assert incident.customer_visible is True and incident.data_lost is False

    # Timeline: a chat log pasted, previewed (one kind corrected), then added.
    page.get_by_text("Paste many lines at once").click()
    page.get_by_label("Lines from a chat log or your notes").fill(CHAT)
    page.get_by_role("button", name="Preview").click()
    preview = page.get_by_role("table", name=re.compile("nothing is saved yet"))
    expect(preview).to_be_visible()
    expect(preview.get_by_role("row")).to_have_count(5)  # the header and four lines
    assert TimelineEntry.objects.count() == 0
    expect(page.get_by_label("Kind of line 4")).to_have_value("resolution")  # guessed
    page.get_by_label("Kind of line 1").select_option("detection")
    screenshots(page, "engineer", "3-paste-preview")
    page.get_by_role("button", name="Add 4 entries").click()
    expect(page.get_by_text("Added 4 entries.")).to_be_visible()
    entries = TimelineEntry.objects.filter(incident=incident).order_by("at")
    assert [(e.at.astimezone(dt.UTC).strftime("%H:%M"), e.kind) for e in entries] == [
        ("09:18", "detection"), ("09:21", "detection"),
        ("09:40", "mitigation"), ("09:47", "resolution"),
    ]  # fmt: skip
    assert {e.at.date() for e in entries} == {day}  # the day the incident started

    # From the inside: every guided question answered.
    page.get_by_role("link", name="Continue: From the inside →").click()
    page.wait_for_url("**/edit/inside/")
    for question in guided_questions:
        page.get_by_label(question.prompt, exact=True).fill(
            "What we saw then, and why it made sense."
        )
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url("**/edit/factors/")
    assert Answer.objects.filter(incident=incident).count() == len(guided_questions)

    # Factors, with evidence from the timeline.
    page.get_by_label("Category").select_option("change")
    page.get_by_label("What was the condition?").fill(
        "Config pushes skip the canary stage that code deploys get."
    )
    page.get_by_role("checkbox", name=re.compile("Detection · ana: checkout error-rate")).check()
    page.get_by_role("button", name="Add factor").click()
    factors = page.get_by_role("list", name=re.compile("Contributing factors"))
    expect(factors).to_contain_text("Config pushes skip the canary stage")
    expect(factors).to_contain_text("Evidence:")

    page.get_by_role("link", name="Continue: Went well →").click()
    page.wait_for_url("**/edit/reflect/")
    page.get_by_label("What went well?").fill("The rollback took two minutes.")
    page.get_by_label("Where did we get lucky?").fill("It happened at low traffic.")
    page.get_by_label("What did we learn?").fill("Config is code and needs a canary.")
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url("**/edit/actions/")

    # An action item: without a team and a due date it is refused, with both it is added.
    page.get_by_label("What will change?").fill("Run config pushes through the canary stage")
    page.get_by_role("button", name="Add action item").click()
    expect(page.get_by_text("Every action item needs an owner team.")).to_be_visible()
    expect(page.get_by_text("Every action item needs a due date")).to_be_visible()
    assert ActionItem.objects.count() == 0
    screenshots(page, "engineer", "4-action-needs-team-and-due")
    expect(page.get_by_label("What will change?")).to_have_value(
        "Run config pushes through the canary stage"
    )
    page.get_by_label("Owner team").select_option(label="Payments")
    page.get_by_label("Due date").fill((timezone.localdate() + dt.timedelta(days=30)).isoformat())
    page.get_by_role("checkbox", name=re.compile("Config pushes skip")).check()
    page.get_by_role("button", name="Add action item").click()
    expect(page.get_by_role("list", name="Action items")).to_contain_text(
        "Run config pushes through the canary stage"
    )
    item = ActionItem.objects.get()
    assert item.team.slug == "payments" and item.incident == incident
    assert list(item.addresses.all()) == list(ContributingFactor.objects.filter(incident=incident))

    # Review: nothing missing, no blaming words; submit.
    page.get_by_role("link", name="Continue: Review →").click()
    page.wait_for_url("**/edit/review/")
    expect(page.get_by_text("Everything on the checklist is done.")).to_be_visible()
    expect(page.get_by_text("No blaming phrases found.")).to_be_visible()
    screenshots(page, "engineer", "5-review")
    page.get_by_role("button", name="Submit for review").click()
    page.wait_for_url(f"{base}{incident.get_absolute_url()}")
    expect(page.get_by_role("status")).to_contain_text("Submitted for review.")
    expect(page.get_by_text("In review", exact=True)).to_be_visible()
    incident.refresh_from_db()
    assert incident.status == Incident.Status.IN_REVIEW
    screenshots(page, "engineer", "6-in-review")
    assert errors == []


def test_manager_approves_a_review_then_bulk_updates_overdue_items_and_downloads_csv(page, site):
    """The review waiting on the home page, approved and published; then the overdue action
    items filtered, two picked and changed at once ("2 action items updated"), and the CSV of
    the filtered list downloaded."""
    manager = make_user(username="rita", first_name="Rita", password=PASSWORD)
    make_user(username="omar", first_name="Omar")
    team = make_team(name="Payments", slug="payments", lead=manager)
    author = make_user(username="maria", first_name="Maria")
    incident = make_incident(
        title="Checkout errors after a config push", status=Incident.Status.IN_REVIEW,
        authors=[author], reviewers=[manager], teams=[team],
    )  # fmt: skip
    make_entry(incident, kind="detection", text="Error-rate alert fired for checkout")
    make_action_item(incident, title="Run config pushes through the canary stage", team=team)
    older = make_incident(title="Queue backlog on the payment worker", teams=[team])
    today = timezone.localdate()
    make_action_item(older, title="Alert on queue depth", team=team, priority="low",
                     due=today - dt.timedelta(days=3))  # fmt: skip
    make_action_item(older, title="Write the failover runbook", team=team, priority="low",
                     due=today - dt.timedelta(days=20))  # fmt: skip
    make_action_item(
        older, title="Load-test the worker", team=team, due=today + dt.timedelta(days=9)
    )
    base = site()
    errors = watch_console(page)
    sign_in(page, base, "rita")

    # The review waits for her on the home page.
    waiting = page.get_by_role("region", name="Reviews waiting for me")
    waiting.get_by_role("link", name="Checkout errors after a config push").click()
    page.wait_for_url(f"{base}{incident.get_absolute_url()}")
    page.get_by_role("link", name="Review: approve or ask for changes").click()
    page.wait_for_url(f"{base}/incidents/{incident.slug}/review/")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Review of “Checkout errors after a config push”"
    )
    screenshots(page, "manager", "1-review")
    page.get_by_role("button", name="Approve and publish").click()
    expect(page.locator("#review-status .badge.status")).to_have_text("Published")
    incident.refresh_from_db()
    assert incident.status == Incident.Status.PUBLISHED
    screenshots(page, "manager", "2-published")

    # The overdue action items.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Action items").click()
    page.wait_for_url(f"{base}/actions/")
    results = page.locator("#results")
    expect(results.get_by_text("4 action items")).to_be_visible()
    # The counts beside the filters arrive after the table and replace the filter form: wait
    # for them, or the choice below could be swapped away.
    page.locator("#f-due option", has_text="Overdue (2)").wait_for(state="attached")
    page.get_by_label("Due", exact=True).select_option("overdue")
    page.wait_for_url(f"{base}/actions/?due=overdue")
    expect(results.get_by_text("2 action items", exact=True)).to_be_visible()
    expect(results.get_by_text("Load-test the worker")).to_have_count(0)

    page.get_by_label("Select “Alert on queue depth”").check()
    page.get_by_label("Select “Write the failover runbook”").check()
    expect(page.locator("#selected-count")).to_have_text("(2 selected)")
    bulk = page.get_by_role("group", name=re.compile("Change the selected items"))
    bulk.get_by_label("Priority").select_option("high")
    bulk.get_by_label("Owner", exact=True).fill("omar")
    screenshots(page, "manager", "3-overdue-selected")
    bulk.get_by_role("button", name="Update selected").click()
    expect(results.get_by_role("status")).to_have_text("2 action items updated.")
    screenshots(page, "manager", "4-updated")
    overdue = ActionItem.objects.filter(due__lt=today)
    assert {(i.priority, i.owner.username) for i in overdue} == {("high", "omar")}
    assert ActionItem.objects.filter(owner__isnull=False).count() == 2

    with page.expect_download() as download_info:
        results.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert download.suggested_filename == f"action-items-{today:%Y-%m-%d}.csv"
    with open(download.path(), encoding="utf-8", newline="") as file:
        header, *rows = list(csv.reader(file))
    assert header[:2] == ["id", "title"]
    assert {"incident_title", "team", "owner", "due", "priority", "status", "url"} <= set(header)
    rows = [dict(zip(header, row, strict=True)) for row in rows]
    assert sorted(row["title"] for row in rows) == [
        "Alert on queue depth", "Write the failover runbook"
    ]  # fmt: skip
    assert {(row["priority"], row["owner"], row["team"]) for row in rows} == {
        ("high", "omar", "payments")
    }
    assert errors == []


def test_team_member_finds_a_half_remembered_incident_follows_a_similar_one_and_reads_its_lesson(
    page, site
):
    """A word half remembered, typed in another case ("Thunder" for "thundering"), finds the
    incident; its similar-incidents panel leads to an older one, whose lessons section links
    to the lesson in the library."""
    member = make_user(username="tomas", first_name="Tomás", password=PASSWORD)
    writer = make_user(username="ana", first_name="Ana")
    payments = make_team(name="Payments", slug="payments")
    payments.members.add(member)
    checkout = make_service(name="checkout", slug="checkout")
    now = timezone.now()
    remembered = make_incident(
        title="Payment gateway overwhelmed by retries", services=[checkout], teams=[payments],
        summary="A thundering herd of client retries overwhelmed the payment gateway.",
        started_at=now - dt.timedelta(days=5),
    )  # fmt: skip
    make_factor(remembered, category="capacity")
    earlier = make_incident(
        title="Checkout latency after cache flush", services=[checkout], authors=[writer],
        started_at=now - dt.timedelta(days=60),
        lessons="Warm the cache before flushing it; a cold cache sends every read to the database.",
    )  # fmt: skip
    make_factor(earlier, category="capacity")
    make_incident(title="Disk full on the search cluster", started_at=now - dt.timedelta(days=3))
    lesson, _ = lessons.publish_from_incident(incident=earlier, by=writer)
    base = site()
    errors = watch_console(page)
    sign_in(page, base, "tomas")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Incidents").click()
    page.wait_for_url(f"{base}/incidents/")
    page.get_by_role("searchbox", name="Search").press_sequentially("Thunder")
    page.wait_for_url("**/incidents/?q=Thunder**")
    results = page.locator("#results")
    expect(results.get_by_text("1 incident", exact=False)).to_be_visible()
    expect(results.get_by_role("link", name="Disk full on the search cluster")).to_have_count(0)
    expect(results.locator("mark").first).to_have_text(re.compile("^thundering$", re.I))
    screenshots(page, "member", "1-search")
    results.get_by_role("link", name="Payment gateway overwhelmed by retries").click()
    page.wait_for_url(f"{base}{remembered.get_absolute_url()}")

    # The similar panel loads when scrolled into view.
    similar = page.get_by_role("region", name="Similar past incidents")
    similar.scroll_into_view_if_needed()
    link = similar.get_by_role("link", name="Checkout latency after cache flush")
    expect(link).to_be_visible()
    screenshots(page, "member", "2-similar")
    link.click()
    page.wait_for_url(f"{base}{earlier.get_absolute_url()}")

    library = page.get_by_role("region", name="In the lessons library")
    library.scroll_into_view_if_needed()
    library.get_by_role("link", name=lesson.title).click()
    page.wait_for_url(f"{base}{lesson.get_absolute_url()}")
    expect(page.get_by_role("heading", level=1)).to_have_text(lesson.title)
    expect(page.get_by_text("Warm the cache before flushing it")).to_be_visible()
    screenshots(page, "member", "3-lesson")
    assert errors == []
