"""End to end in Debian's chromium: a manager works the action-items dashboard."""

import csv
import datetime as dt

import pytest
from django.utils import timezone

from incidents.models import ActionItem
from tests.factories import make_action_item, make_team, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-good-password-1"


def sign_in(page, base, username):
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")


def watch_console(page):
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def test_manager_filters_overdue_bulk_closes_two_with_evidence_and_downloads_csv(page, site):
    make_user(username="manager", password=PASSWORD, is_staff=True)
    team = make_team(name="Payments", slug="payments")
    today = timezone.localdate()
    make_action_item(
        title="Alert on queue depth", kind="detect", team=team, due=today - dt.timedelta(days=3)
    )
    make_action_item(
        title="Write the failover runbook", kind="process", team=team,
        due=today - dt.timedelta(days=20),
    )  # fmt: skip
    make_action_item(title="Not due yet", team=team, due=today + dt.timedelta(days=30))
    base = site()
    errors = watch_console(page)

    sign_in(page, base, "manager")
    page.get_by_role("link", name="Action items", exact=True).click()
    page.wait_for_url(f"{base}/actions/")
    results = page.locator("#results")
    results.get_by_text("3 action items").wait_for()
    # Counts beside the filters arrive after the table.
    page.locator("#f-due option", has_text="Overdue (2)").wait_for(state="attached")

    page.get_by_label("Due", exact=True).select_option("overdue")
    page.wait_for_url(f"{base}/actions/?due=overdue")  # only what is set
    results.get_by_text("2 action items").wait_for()
    assert results.get_by_text("Not due yet").count() == 0
    assert results.get_by_text("Escalated").count() == 1

    page.get_by_label("All on this page").check()
    assert page.locator('input[name="items"]:checked').count() == 2
    assert page.locator("#selected-count").inner_text() == "(2 selected)"
    page.locator("#bulk-status").select_option("done")
    page.get_by_label("What changed (link)").fill("https://git.example.com/ops/pull/42")
    page.get_by_label("How it was verified").fill("The new alert fired in the game day on Monday.")
    page.get_by_role("button", name="Update selected").click()
    results.get_by_text("2 action items updated.").wait_for()
    assert set(ActionItem.objects.filter(due__lt=today).values_list("status", flat=True)) == {
        "done"
    }
    assert ActionItem.objects.get(title="Not due yet").status == "open"

    page.get_by_label("Status", exact=True).select_option("done")
    page.wait_for_url("**status=done**")
    results.get_by_text("0 action items").wait_for()  # done items are not overdue any more
    page.get_by_label("Due", exact=True).select_option("")
    page.wait_for_url(f"{base}/actions/?status=done")
    results.get_by_text("2 action items").wait_for()
    with page.expect_download() as download_info:
        results.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("action-items-")
    with open(download.path(), encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert {row["title"] for row in rows} == {"Alert on queue depth", "Write the failover runbook"}
    assert {row["status"] for row in rows} == {"done"}
    assert errors == []


# Runs in the page before any of its scripts: the moment the counts replace the filter form, the
# next task changes a filter, as a quick hand (or a slow machine) can. The change must not be lost.
CHANGE_DUE_AS_COUNTS_ARRIVE = """
document.addEventListener("htmx:afterSwap", function (event) {
  var path = (event.detail.pathInfo && event.detail.pathInfo.requestPath) || "";
  if (path.indexOf("/actions/facets/") !== 0 || window.changedAsCountsArrived) { return; }
  window.changedAsCountsArrived = true;
  setTimeout(function () {
    var select = document.getElementById("f-due");
    select.value = "overdue";
    select.dispatchEvent(new Event("change", {bubbles: true}));
  }, 0);
});
"""


def test_a_filter_changed_the_moment_the_counts_arrive_still_applies(page, site):
    make_user(username="manager", password=PASSWORD, is_staff=True)
    today = timezone.localdate()
    make_action_item(title="Overdue by a week", due=today - dt.timedelta(days=7))
    make_action_item(title="Due next month", due=today + dt.timedelta(days=30))
    base = site()
    sign_in(page, base, "manager")
    page.add_init_script(CHANGE_DUE_AS_COUNTS_ARRIVE)
    page.goto(f"{base}/actions/")
    page.wait_for_url(f"{base}/actions/?due=overdue", timeout=5000)
    results = page.locator("#results")
    results.get_by_text("1 action item").wait_for()
    assert results.get_by_text("Due next month").count() == 0
    assert page.evaluate("window.changedAsCountsArrived") is True


def test_inline_edit_in_the_row_and_a_conflict(page, site):
    make_user(username="manager", password=PASSWORD, is_staff=True)
    make_user(username="omar", password=PASSWORD)
    item = make_action_item(title="Rotate the certificates")
    base = site()
    errors = watch_console(page)
    sign_in(page, base, "manager")
    page.goto(f"{base}/actions/")
    row = page.locator(f"#action-row-{item.pk}")
    row.get_by_role("link", name="Edit “Rotate the certificates”").click()
    page.locator(f"#action-row-{item.pk}.editing").wait_for()
    # The closing fields stay hidden until the status needs them.
    assert not row.get_by_label("What changed (link)").is_visible()
    row.get_by_label("Owner").fill("omar")
    row.get_by_label("Status").select_option("in_progress")
    page.get_by_role("button", name="Save").click()
    page.locator(f"#action-row-{item.pk}:not(.editing)").wait_for()
    assert "In progress" in row.inner_text()
    item.refresh_from_db()
    assert item.owner.username == "omar" and item.version == 2

    # Someone else saves while this manager edits: 409, their values, nothing overwritten.
    row.get_by_role("link", name="Edit “Rotate the certificates”").click()
    page.locator(f"#action-row-{item.pk}.editing").wait_for()
    ActionItem.objects.filter(pk=item.pk).update(version=3, status="open")
    row.get_by_label("Status").select_option("done")
    assert row.get_by_label("What changed (link)").is_visible()
    row.get_by_label("What changed (link)").fill("https://git.example.com/ops/pull/7")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Someone else changed").wait_for()
    assert ActionItem.objects.get(pk=item.pk).status == "open"
    # The browser logs the 409 response itself; nothing else may fail.
    assert [e for e in errors if "409" not in e] == []


@pytest.mark.parametrize("width", [1280, 390])
def test_action_pages_have_no_serious_accessibility_violations(browser, site, width):
    """axe-core on the dashboard (with an inline edit open and bulk errors shown), the item
    page and the preferences page."""
    from axe_playwright_python.sync_playwright import Axe

    make_user(username="manager", password=PASSWORD, is_staff=True)
    item = make_action_item(title="Alert on queue depth", due=dt.date(2020, 1, 1))
    make_action_item(
        title="Done item", status="done", evidence="**What changed:** <https://x.example.com/>"
    )
    base = site()
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    sign_in(page, base, "manager")
    axe = Axe()

    def serious():
        return [
            f"{v['id']}: {v['help']} {[n['target'] for n in v['nodes']][:3]}"
            for v in axe.run(page).response["violations"]
            if v["impact"] in ("serious", "critical")
        ]

    problems = {}
    page.goto(f"{base}/actions/")
    page.locator("#f-status option", has_text="(").first.wait_for(state="attached")
    problems["dashboard"] = serious()
    page.get_by_role("link", name="Edit “Alert on queue depth”").click()
    page.locator(f"#action-row-{item.pk}.editing").wait_for()
    page.get_by_role("button", name="Update selected").click()
    page.get_by_text("Select at least one action item.").wait_for()
    problems["editing"] = serious()
    page.goto(f"{base}/actions/{item.pk}/")
    problems["item"] = serious()
    page.goto(f"{base}/preferences/")
    problems["preferences"] = serious()
    context.close()
    assert {name: found for name, found in problems.items() if found} == {}
