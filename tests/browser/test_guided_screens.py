"""Screenshots of every step of the guided write-up at desktop and phone widths, for people to
look at. Runs only with DEBRIEF_SCREENS=<directory> set (it writes files, it asserts little)."""

import datetime as dt
import os
from pathlib import Path

import pytest
from django.utils import timezone

from incidents.guided import STEPS
from incidents.models import Answer, Incident
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


SCREENS = os.environ.get("DEBRIEF_SCREENS", "")


@pytest.mark.skipif(not SCREENS, reason="set DEBRIEF_SCREENS=<directory> to take screenshots")
@pytest.mark.parametrize("width", [1280, 390])
def test_screenshots_of_every_step(browser, site, guided_questions, width):
    """Every step renders with realistic content at both widths (and no console errors)."""
    out = Path(SCREENS)
    out.mkdir(parents=True, exist_ok=True)
    author = make_user(username="maria", first_name="Maria", password="a-good-password-1")
    team = make_team(name="Payments", slug="payments")
    make_team(name="Platform", slug="platform")
    service = make_service(name="checkout", slug="checkout")
    make_service(name="search", slug="search")
    start = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(days=2)
    incident = make_incident(
        title="Checkout errors after a config push",
        status=Incident.Status.DRAFT,
        authors=[author],
        teams=[team],
        services=[service],
        started_at=start,
        summary="A config push disabled the payment provider's fallback; about 30% of checkouts failed for 40 minutes.",
        impact="About 30% of checkouts failed for 40 minutes. Dave should have checked the canary first.",
        customer_visible=True,
        data_lost=False,
        went_well="The rollback took two minutes once we knew what to roll back.",
    )
    detection = make_entry(
        incident,
        at=start + dt.timedelta(minutes=6),
        kind="detection",
        text="Error-rate alert fired for checkout",
    )
    make_entry(
        incident,
        at=start + dt.timedelta(minutes=9),
        kind="status_update",
        text="Posted “investigating” on the status page",
    )
    make_entry(
        incident,
        at=start + dt.timedelta(minutes=9),
        kind="action",
        text="Opened the deploy log; the last change was a config push",
    )
    rollback = make_entry(
        incident,
        at=start + dt.timedelta(minutes=40),
        kind="mitigation",
        text="Rolled back the config push",
    )
    factor = make_factor(
        incident,
        category="change",
        evidence=[detection, rollback],
        description="Config pushes skip the canary stage that code deploys get.",
    )
    make_factor(
        incident,
        category="monitoring",
        description="The alert needed 5 minutes of errors before it fired.",
    )
    make_action_item(
        incident, title="Run config pushes through the canary stage", team=team
    ).addresses.add(factor)
    make_action_item(incident, title="Be more careful with config pushes", team=team)
    question = guided_questions[0]
    Answer.objects.create(
        incident=incident,
        question=question,
        text="The error-rate alert. It told us checkout was failing, not why.",
    )

    base = site()
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill("a-good-password-1")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/incidents/new/")
    page.screenshot(path=str(out / f"{width}-0-new.png"), full_page=True)
    for step in STEPS:
        page.goto(f"{base}/incidents/{incident.slug}/edit/{step.slug}/")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(out / f"{width}-{step.number}-{step.slug}.png"), full_page=True)

    # States worth seeing: a live finding, a paste preview with a bad line, a conflict.
    page.goto(f"{base}/incidents/{incident.slug}/edit/reflect/")
    page.locator("#id_lessons").press_sequentially(
        "I messed up the rollout, stupid mistake on my part."
    )
    page.locator("#findings-lessons mark").first.wait_for()
    page.locator("#save-lessons .saved").wait_for()
    page.screenshot(path=str(out / f"{width}-9-finding.png"), full_page=True)
    page.goto(f"{base}/incidents/{incident.slug}/edit/timeline/")
    page.locator("#paste summary").click()
    page.locator("#id_paste_text").fill(
        "09:50 Checked the canary\nno time on this line\n[09:55] ana: all clear, resolved"
    )
    page.locator("#paste-form button[value=preview]").click()
    page.locator("#paste-preview").wait_for()
    page.locator("#paste").screenshot(path=str(out / f"{width}-9-paste-preview.png"))
    page.goto(f"{base}/incidents/{incident.slug}/edit/impact/")
    Incident.objects.filter(pk=incident.pk).update(version=99, impact="Someone else's newer text.")
    page.locator("#id_impact").press_sequentially(" More from me.")
    page.locator("#save-impact .conflict").wait_for()
    page.screenshot(path=str(out / f"{width}-9-conflict.png"), full_page=True)
    context.close()
    assert [e for e in errors if "409 (Conflict)" not in e] == []
