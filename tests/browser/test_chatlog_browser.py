"""End to end in Debian's chromium: an author pastes a chat log and it becomes timeline."""

import datetime as dt
import json

import pytest
from axe_playwright_python.sync_playwright import Axe

from incidents.models import TimelineEntry
from tests.factories import make_incident, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOG = """[10:42] alice: restarted the primary
[10:45] bob: Status: error rate back under 1%, watching
[10:47] carol: anyone want lunch?
"""


def test_paste_a_chat_log_into_the_timeline(page, site):
    """Paste, preview (status update stands out), untick the chatter, change a kind, add."""
    author = make_user(username="writer", password="a-good-password-1")
    incident = make_incident(
        title="Primary database failover", authors=[author],
        started_at=dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC),
    )  # fmt: skip
    base = site()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill("writer")
    page.get_by_label("Password").fill("a-good-password-1")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")

    page.goto(f"{base}{incident.get_absolute_url()}")
    page.get_by_role("link", name="Import chat log").click()
    page.wait_for_url(f"**/incidents/{incident.slug}/timeline/import/")
    page.get_by_label("…or paste the log").fill(LOG)
    page.get_by_label("Time zone of the log").select_option("Europe/Berlin")
    page.get_by_role("button", name="Preview").click()

    preview = page.locator("#chatlog table.chatlog")
    preview.wait_for()
    rows = preview.locator("tbody tr")
    assert rows.count() == 3
    status_row = rows.nth(1)
    assert "kind-status_update" in status_row.get_attribute("class")
    assert status_row.evaluate("row => getComputedStyle(row).backgroundColor") != (
        rows.nth(0).evaluate("row => getComputedStyle(row).backgroundColor")
    )
    assert rows.nth(0).locator("time").inner_text() == "2 Mar 10:42:00"

    page.get_by_label("Kind of the message at 10:42").select_option("mitigation")
    assert "kind-mitigation" in rows.nth(0).get_attribute("class")  # exchange.js restyles
    rows.nth(2).get_by_role("checkbox").uncheck()
    page.get_by_role("button", name="Add the ticked messages to the timeline").click()

    page.wait_for_url(f"{base}{incident.get_absolute_url()}#timeline")
    timeline = page.locator("#timeline")
    assert timeline.get_by_text("alice: restarted the primary").is_visible()
    assert timeline.get_by_text("bob: Status: error rate back under 1%, watching").is_visible()
    assert timeline.get_by_text("anyone want lunch").count() == 0
    entries = list(TimelineEntry.objects.filter(incident=incident).order_by("at"))
    assert [(e.at, e.kind) for e in entries] == [
        (dt.datetime(2026, 3, 2, 9, 42, tzinfo=dt.UTC), "mitigation"),
        (dt.datetime(2026, 3, 2, 9, 45, tzinfo=dt.UTC), "status_update"),
    ]
    assert errors == []


def test_exchange_pages_have_no_serious_accessibility_violations(page, site):
    """axe-core on the chat-log preview and the staff import preview (with errors shown)."""

    def serious(results):
        return [
            f"{v['id']}: {v['help']} {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]

    staff = make_user(username="admin1", password="a-good-password-1", is_staff=True)
    incident = make_incident(title="Queue backlog", authors=[staff])
    base = site()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill("admin1")
    page.get_by_label("Password").fill("a-good-password-1")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")
    axe = Axe()

    page.goto(f"{base}/incidents/{incident.slug}/timeline/import/")
    assert serious(axe.run(page)) == []
    page.get_by_label("…or paste the log").fill(LOG)
    page.get_by_role("button", name="Preview").click()
    page.locator("table.chatlog").wait_for()
    assert serious(axe.run(page)) == []

    page.goto(f"{base}/import/")
    assert serious(axe.run(page)) == []
    bad = {"format": "debrief/1", "incidents": [{"title": "x", "severity": "SEV99"}]}
    page.set_input_files(
        "input[type=file]",
        files=[{"name": "bad.json", "mimeType": "application/json",
                "buffer": json.dumps(bad).encode()}],
    )  # fmt: skip
    page.get_by_role("button", name="Preview").click()
    page.locator(".exchange-errors").wait_for()
    assert serious(axe.run(page)) == []
