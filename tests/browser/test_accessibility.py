"""axe-core (bundled with axe-playwright-python, runs offline) finds no serious or critical
accessibility violations on the main pages, at desktop and phone widths."""

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.factories import (
    make_action_item,
    make_entry,
    make_factor,
    make_incident,
    make_service,
    make_tag,
    make_team,
    make_user,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = [
    "/", "/incidents/", "/incidents/?q=certificate", "{incident}", "{incident}history/",
    "/actions/", "/actions/?overdue=1", "/lessons/", "/metrics/", "/teams/{team}/",
    "/services/{service}/", "/tags/{tag}/", "/preferences/", "/trash/",
]  # fmt: skip


def serious(results) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("width", [1280, 390])
def test_main_pages_have_no_serious_violations(browser, site, width):
    team, service, tag = make_team(), make_service(), make_tag()
    make_user(username="reader", password="a-good-password-1", teams=[team])
    incident = make_incident(
        title="Expired certificate on the API", teams=[team], services=[service], tags=[tag]
    )
    entry = make_entry(incident, kind="detection", text="Synthetic check failed")
    make_factor(incident, evidence=[entry])
    make_action_item(incident, team=team)
    base = site()
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    axe = Axe()
    page.goto(f"{base}/accounts/login/")
    assert serious(axe.run(page)) == [], "login page"
    page.get_by_label("Username").fill("reader")
    page.get_by_label("Password").fill("a-good-password-1")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")
    problems = {}
    for path in PAGES:
        url = base + path.format(
            incident=incident.get_absolute_url(), team=team.slug, service=service.slug, tag=tag.slug
        )
        page.goto(url)
        found = serious(axe.run(page))
        if found:
            problems[path] = found
    context.close()
    assert problems == {}
