"""End to end in Debian's chromium: a reader signs in, browses, opens a write-up."""

import pytest

from tests.factories import make_entry, make_incident, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, base, username, password):
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")


def test_sign_in_open_list_open_incident(page, site):
    make_user(username="reader", password="a-good-password-1")
    incident = make_incident(title="Expired certificate on the API")
    make_entry(incident, kind="detection", text="Synthetic check failed")
    base = site()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    sign_in(page, base, "reader", "a-good-password-1")
    page.get_by_role("link", name="Incidents", exact=True).click()
    page.wait_for_url(f"{base}/incidents/")
    page.get_by_role("link", name="Expired certificate on the API").click()
    page.wait_for_url(f"{base}{incident.get_absolute_url()}")

    assert page.get_by_role("heading", level=1).inner_text() == "Expired certificate on the API"
    assert page.get_by_text("Synthetic check failed").is_visible()
    # htmx loaded from our own static files under the CSP, with no console errors.
    assert page.evaluate("typeof window.htmx") == "object"
    assert errors == []


def test_list_search_swaps_results_with_htmx(page, site):
    make_user(username="reader", password="a-good-password-1")
    make_incident(title="Disk full on search")
    make_incident(title="Certificate expired")
    base = site()
    sign_in(page, base, "reader", "a-good-password-1")
    page.goto(f"{base}/incidents/")
    page.get_by_role("searchbox", name="Search").fill("certificate")
    page.wait_for_url("**/incidents/?q=certificate**")
    results = page.locator("#results")
    results.get_by_text("1 incident").wait_for()
    assert results.get_by_text("Certificate expired").is_visible()
    assert results.get_by_text("Disk full on search").count() == 0
