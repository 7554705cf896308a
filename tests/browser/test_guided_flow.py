"""The guided write-up end to end in Debian's chromium: a whole incident written with the
keyboard only, autosave, live blame findings, a stale second tab, a failed save."""

import datetime as dt
import time

import pytest
from playwright.sync_api import expect

from incidents.models import Answer, BlameDismissal, Incident, TimelineEntry
from tests.factories import make_incident, make_service, make_team, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-good-password-1"


# True once htmx has processed the element (htmx 2 keeps an init hash in its internal data).
HTMX_READY = """selector => {
    const element = document.querySelector(selector);
    const data = element && element["htmx-internal-data"];
    return Boolean(data && data.initHash);
}"""


def tab_to(page, selector, *, limit=120):
    """Press Tab until the focused element matches `selector` — the keyboard, no mouse."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def sign_in(page, base, username):
    page.goto(f"{base}/accounts/login/")
    page.keyboard.type(username)  # the username field has autofocus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")


def settles_on(read, expected, *, seconds=5.0):
    """Poll `read()` until it returns `expected` or time runs out; returns the last value."""
    deadline = time.monotonic() + seconds
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        value = read()
    return value


def console_errors(page):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def test_write_a_complete_incident_with_the_keyboard_only(page, site, guided_questions):
    """Every step, from "New write-up" to "Submit for review", without touching the mouse."""
    make_user(username="maria", first_name="Maria", password=PASSWORD)
    make_team(name="Payments", slug="payments")
    make_service(name="checkout", slug="checkout")
    questions = guided_questions
    base = site()
    errors = console_errors(page)
    sign_in(page, base, "maria")

    # New write-up: the basics. Nothing exists until the first valid post.
    tab_to(page, "a.new-writeup")
    page.keyboard.press("Enter")
    page.wait_for_url("**/incidents/new/")
    assert Incident.objects.count() == 0
    page.keyboard.type("Checkout errors after a config push")  # the title has autofocus
    tab_to(page, "input[name=severity]")
    page.keyboard.press("ArrowLeft")  # SEV3 (the default) → SEV2
    tab_to(page, "#id_summary")
    page.keyboard.type("A config push disabled a fallback; checkouts failed.")
    tab_to(page, "input[name=services]")
    page.keyboard.press("Space")
    tab_to(page, "input[name=teams]")
    page.keyboard.press("Space")
    tab_to(page, "#id_started_at")
    page.keyboard.type("03022026")
    page.keyboard.press("ArrowRight")
    page.keyboard.type("0912A")
    page.keyboard.press("Enter")  # Enter means "Save and continue"
    page.wait_for_url("**/edit/impact/")
    incident = Incident.objects.get()
    assert incident.severity == "SEV2" and incident.status == Incident.Status.DRAFT
    assert incident.started_at == dt.datetime(2026, 3, 2, 9, 12, tzinfo=dt.UTC)
    expect(page.locator("#progress")).to_contain_text("1 of 7 steps complete")

    # Impact: autosaves as the author types.
    tab_to(page, "#id_impact")
    page.keyboard.type("About 30% of checkouts failed for 40 minutes.")
    expect(page.locator("#save-impact")).to_contain_text("Saved", timeout=5000)
    tab_to(page, "input[name=customer_visible]")
    page.keyboard.press("ArrowRight")  # Not sure yet → Yes
    tab_to(page, "input[name=data_lost]")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")  # → No
    tab_to(page, ".step-nav button[value=next]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/edit/timeline/")

    # Timeline: one entry by hand, two pasted.
    tab_to(page, "#id_new-kind")
    page.keyboard.type("Detection")  # type-ahead in the select
    tab_to(page, "#id_new-text")
    page.keyboard.type("Error-rate alert fired for checkout")
    tab_to(page, "#add-entry-form button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator("#timeline-list")).to_contain_text("Error-rate alert fired")
    expect(page.locator("#id_new-at")).to_be_focused()  # ready for the next entry
    tab_to(page, "#paste summary")
    page.keyboard.press("Enter")
    tab_to(page, "#id_paste_text")
    page.keyboard.type("09:40 Rolled back the config push\n09:47 All clear, resolved")
    tab_to(page, "#paste-form button[value=preview]")
    page.keyboard.press("Enter")
    expect(page.locator("#paste-preview")).to_contain_text("nothing is saved yet")
    assert TimelineEntry.objects.count() == 1
    # The preview swapped in a new form: under load a key press can beat htmx to it and post
    # the plain form instead. Wait until htmx has taken the new form over, as a person would.
    page.wait_for_function(HTMX_READY, arg="#paste-form")
    tab_to(page, "#paste-form button[value=add]")
    page.keyboard.press("Enter")
    expect(page.locator("#timeline-editor")).to_contain_text("Added 2 entries.")
    expect(page.locator("#timeline-list-heading")).to_be_focused()  # the list, now longer
    assert list(TimelineEntry.objects.values_list("kind", flat=True)) == [
        "detection", "mitigation", "resolution"
    ]  # fmt: skip
    tab_to(page, ".step-nav a.button.primary")
    page.keyboard.press("Enter")
    page.wait_for_url("**/edit/inside/")

    # From the inside: every guided question.
    for question in questions:
        tab_to(page, f"#id_answer-{question.pk}")
        page.keyboard.type("What we saw then, and why it made sense.")
    expect(page.locator(f"#save-answer-{questions[-1].pk}")).to_contain_text("Saved")
    tab_to(page, ".step-nav button[value=next]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/edit/factors/")
    assert Answer.objects.filter(incident=incident).count() == len(questions)

    # Factors, with evidence picked from the timeline; the single-factor hint appears.
    tab_to(page, "#id_new-category")
    page.keyboard.type("C")  # Change / deploy
    tab_to(page, "#id_new-description")
    page.keyboard.type("Config pushes skip the canary stage that code deploys get.")
    tab_to(page, "input[name=new-evidence]")
    page.keyboard.press("Space")
    tab_to(page, "#add-factor-form button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator("#single-factor-hint")).to_be_visible()
    expect(page.locator("#id_new-category")).to_be_focused()
    tab_to(page, ".step-nav a.button.primary")
    page.keyboard.press("Enter")
    page.wait_for_url("**/edit/reflect/")

    # What went well, luck, lessons.
    for name, text in (("went_well", "The rollback took two minutes."),
                       ("lucky", "It happened at low traffic."),
                       ("lessons", "Config is code and needs a canary.")):  # fmt: skip
        tab_to(page, f"#id_{name}")
        page.keyboard.type(text)
    tab_to(page, ".step-nav button[value=next]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/edit/actions/")

    # An action item with an owner team and a due date, addressing the factor.
    tab_to(page, "#id_new-title")
    page.keyboard.type("Run config pushes through the canary stage")
    tab_to(page, "#id_new-team")
    page.keyboard.type("P")
    tab_to(page, "#id_new-due")
    page.keyboard.type("01312099")
    tab_to(page, "input[name=new-addresses]")
    page.keyboard.press("Space")
    tab_to(page, "#add-action-form button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator("#actions-list")).to_contain_text("Run config pushes")
    expect(page.locator("#id_new-title")).to_be_focused()
    tab_to(page, ".step-nav a.button.primary")
    page.keyboard.press("Enter")
    page.wait_for_url("**/edit/review/")

    # Review: nothing missing; submit.
    expect(page.locator("#step")).to_contain_text("Everything on the checklist is done.")
    expect(page.locator("#progress")).to_contain_text("7 of 7 steps complete")
    tab_to(page, "button[value=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{incident.get_absolute_url()}")
    incident.refresh_from_db()
    assert incident.status == Incident.Status.IN_REVIEW
    assert incident.went_well == "The rollback took two minutes."
    expect(page.locator("#inside")).to_contain_text("What we saw then")
    assert errors == []


def test_a_blameful_sentence_shows_a_finding_within_two_seconds(page, site):
    """Type, and the phrase appears highlighted with a suggestion; dismiss it for good."""
    author = make_user(username="maria", first_name="Maria", password=PASSWORD)
    incident = make_incident(status="draft", authors=[author], impact="")
    base = site()
    sign_in(page, base, "maria")
    page.goto(f"{base}/incidents/{incident.slug}/edit/impact/")
    tab_to(page, "#id_impact")
    page.keyboard.type("Dave should have checked the canary.")
    typed = time.monotonic()
    finding = page.locator("#findings-impact mark")
    expect(finding).to_have_text("Dave should have checked", timeout=2000)
    waited = time.monotonic() - typed
    print(f"\nblame finding shown {waited * 1000:.0f} ms after the last keystroke")
    assert waited < 2.0, waited
    expect(page.locator("#findings-impact")).to_contain_text("Describe what the person saw")
    expect(page.locator("#save-impact")).to_contain_text("Saved")
    tab_to(page, "#findings-impact button.dismiss")
    page.keyboard.press("Enter")
    expect(page.locator("#findings-impact mark")).to_have_count(0)
    assert BlameDismissal.objects.get().phrase == "dave should have checked"
    page.reload()
    expect(page.locator("#id_impact")).to_have_value("Dave should have checked the canary.")
    expect(page.locator("#findings-impact mark")).to_have_count(0)


def test_a_stale_second_tab_gets_the_conflict_message(browser, site):
    """Two tabs on one step: the second one's save is refused, its text kept, theirs shown."""
    author = make_user(username="maria", first_name="Maria", password=PASSWORD)
    incident = make_incident(status="draft", authors=[author], impact="First draft.")
    base = site()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    first, second = context.new_page(), context.new_page()
    sign_in(first, base, "maria")
    url = f"{base}/incidents/{incident.slug}/edit/impact/"
    first.goto(url)
    second.goto(url)

    tab_to(first, "#id_impact")
    first.keyboard.press("End")
    first.keyboard.type(" Tab one adds this.")
    expect(first.locator("#save-impact")).to_contain_text("Saved")

    tab_to(second, "#id_impact")
    second.keyboard.press("End")
    second.keyboard.type(" Tab two adds that.")
    conflict = second.locator("#save-impact .conflict")
    expect(conflict).to_contain_text("someone else changed this write-up")
    expect(conflict).to_contain_text("Tab one adds this.")
    expect(second.locator("#id_impact")).to_have_value("First draft. Tab two adds that.")
    incident.refresh_from_db()
    assert incident.impact == "First draft. Tab one adds this."

    # Keeping mine is a deliberate choice, and then autosave goes on from the new version.
    tab_to(second, "#save-impact button[name=overwrite_version]")
    second.keyboard.press("Enter")
    expect(second.locator("#save-impact")).to_contain_text("Saved")
    expect(second.locator("#id_impact")).to_be_focused()  # back to the text
    second.keyboard.press("Control+End")
    second.keyboard.type(" More.")
    expected = "First draft. Tab two adds that. More."
    assert settles_on(lambda: Incident.objects.get(pk=incident.pk).impact, expected) == expected
    expect(second.locator("#save-impact")).to_contain_text("Saved")
    context.close()


def test_a_failed_save_keeps_the_text_and_warns_before_leaving(page, site):
    """Server unreachable: "Not saved", a banner, a warning on leaving; saved once back."""
    author = make_user(username="maria", first_name="Maria", password=PASSWORD)
    incident = make_incident(status="draft", authors=[author], lessons="")
    base = site()
    sign_in(page, base, "maria")
    page.goto(f"{base}/incidents/{incident.slug}/edit/reflect/")
    page.route("**/edit/autosave/", lambda route: route.abort())
    tab_to(page, "#id_lessons")
    page.keyboard.type("Canaries for config.")
    expect(page.locator("#save-lessons")).to_contain_text("Not saved")
    expect(page.locator("#unsaved-warning")).to_be_visible()

    dialogs = []

    def refuse(dialog):
        dialogs.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", refuse)
    tab_to(page, "#progress a")
    page.keyboard.press("Enter")
    page.wait_for_timeout(500)
    assert dialogs == ["beforeunload"]
    assert page.url.endswith("/edit/reflect/")
    expect(page.locator("#id_lessons")).to_have_value("Canaries for config.")

    page.unroute("**/edit/autosave/")
    expect(page.locator("#save-lessons")).to_contain_text("Saved", timeout=10_000)  # retried
    expect(page.locator("#unsaved-warning")).to_be_hidden()
    incident.refresh_from_db()
    assert incident.lessons == "Canaries for config."


def test_a_step_works_without_javascript(browser, site):
    """Plain form posts: save, see the finding under the text, move on."""
    author = make_user(username="maria", first_name="Maria", password=PASSWORD)
    incident = make_incident(status="draft", authors=[author], impact="")
    base = site()
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, base, "maria")
    page.goto(f"{base}/incidents/{incident.slug}/edit/impact/")
    tab_to(page, "#id_impact")
    page.keyboard.type("It was human error.")
    tab_to(page, ".step-nav button[value=save]")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    expect(page.locator("#findings-impact mark")).to_have_text("human error")
    incident.refresh_from_db()
    assert incident.impact == "It was human error."
    tab_to(page, "#findings-impact button.dismiss")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    expect(page.locator("#findings-impact mark")).to_have_count(0)
    context.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_every_step_has_no_serious_accessibility_violations(browser, site, guided_questions, width):
    """axe-core on the new page and each step, with findings and rows on screen."""
    from axe_playwright_python.sync_playwright import Axe

    from incidents.guided import STEPS
    from tests.factories import make_action_item, make_entry, make_factor

    author = make_user(username="maria", first_name="Maria", password=PASSWORD)
    incident = make_incident(status="draft", authors=[author], teams=[make_team()],
                             impact="It was human error.")  # fmt: skip
    entry = make_entry(incident, kind="detection", text="Bob forgot to renew the certificate")
    make_entry(incident, kind="action", text="Same minute", at=entry.at)
    make_factor(incident, evidence=[entry])
    make_action_item(incident, title="Be more careful")
    base = site()
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    sign_in(page, base, "maria")
    axe = Axe()
    problems = {}
    for path in ["/incidents/new/"] + [
        f"/incidents/{incident.slug}/edit/{step.slug}/" for step in STEPS
    ]:
        page.goto(base + path)
        found = [
            f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in axe.run(page).response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        if found:
            problems[path] = found
    context.close()
    assert problems == {}
