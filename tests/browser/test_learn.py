"""End to end in Debian's chromium: find a half-remembered incident, follow a similar one, read
its lesson; mark the lesson useful; the metrics page draws its charts."""

import datetime as dt

import pytest
from django.utils import timezone

from lessons import services
from tests.factories import make_entry, make_factor, make_incident, make_service, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, base, username, password):
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")


def test_search_open_follow_similar_read_lesson(page, site):
    reader = make_user(username="reader", password="a-good-password-1")
    checkout = make_service(name="checkout", slug="checkout")
    now = timezone.now()
    remembered = make_incident(
        title="Payments misrouted during rollout", services=[checkout],
        started_at=now - dt.timedelta(days=5),
    )  # fmt: skip
    make_entry(remembered, kind="alert", text="Canary error rate above 2% on the payment step.")
    make_factor(remembered, category="monitoring")
    earlier = make_incident(
        title="Checkout latency after cache flush", services=[checkout],
        started_at=now - dt.timedelta(days=40), lessons="Warm the cache before flushing it.",
        authors=[reader],
    )  # fmt: skip
    make_factor(earlier, category="monitoring")
    make_incident(title="Unrelated disk alert", started_at=now - dt.timedelta(days=3))
    lesson, _ = services.publish_from_incident(incident=earlier, by=reader)
    base = site()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    sign_in(page, base, "reader", "a-good-password-1")
    page.goto(f"{base}/incidents/")
    # Half remembered: something about a canary.
    page.get_by_role("searchbox", name="Search").fill("canar*")
    results = page.locator("#results")
    results.get_by_text("1 incident").wait_for()
    assert results.locator("mark").first.inner_text().lower().startswith("canar")
    assert results.get_by_text("Timeline").is_visible()
    results.get_by_role("link", name="Payments misrouted during rollout").click()
    page.wait_for_url(f"{base}{remembered.get_absolute_url()}")

    # The similar panel loads when scrolled into view and says why it matched.
    panel = page.locator("#similar-incidents")
    panel.scroll_into_view_if_needed()
    panel.get_by_text("Also on checkout").wait_for()
    assert panel.get_by_text(
        "2nd incident with a monitoring & alerting gap on checkout"
    ).is_visible()
    panel.get_by_role("link", name="Checkout latency after cache flush").click()
    page.wait_for_url(f"{base}{earlier.get_absolute_url()}")

    lessons_panel = page.locator("#incident-lessons")
    lessons_panel.scroll_into_view_if_needed()
    lessons_panel.get_by_role("link", name=lesson.title).click()
    page.wait_for_url(f"{base}{lesson.get_absolute_url()}")
    assert page.get_by_text("Warm the cache before flushing it.").is_visible()

    # Useful, once: the button swaps in place.
    page.get_by_role("button", name="This was useful to me").click()
    page.get_by_text("1 found this useful, you included.").wait_for()
    assert errors == []


def test_metrics_page_draws_charts(page, site):
    make_user(username="reader", password="a-good-password-1")
    now = timezone.now()
    for n, minutes in enumerate((3, 7, 12, 45, 180)):
        incident = make_incident(
            started_at=now - dt.timedelta(days=10 + 30 * n),
            detected_at=now - dt.timedelta(days=10 + 30 * n) + dt.timedelta(minutes=minutes),
            severity=("SEV1", "SEV2", "SEV3", "SEV3", "SEV4")[n],
        )
        make_factor(incident, category="monitoring" if n % 2 else "change")
    base = site()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(page, base, "reader", "a-good-password-1")
    page.get_by_role("link", name="Metrics").click()
    page.wait_for_url(f"{base}/metrics/")
    assert page.get_by_role("img", name="Incidents per month, by severity").is_visible()
    assert page.get_by_role(
        "img", name="Time to detect, acknowledge, mitigate and resolve"
    ).is_visible()
    assert page.get_by_text("Half were detected within 12 min").is_visible()
    box = page.locator("svg rect.box").first.bounding_box()
    assert box and box["width"] > 2
    assert errors == []
