"""The guided write-up's pages: starting one, each step as a page and as an htmx partial,
validation that keeps what was typed, permissions, time zones and version conflicts."""

import datetime as dt

import pytest
from django.test import Client

from incidents.models import Answer, GuidedQuestion, Incident, Profile
from tests.factories import (
    make_action_item,
    make_entry,
    make_factor,
    make_incident,
    make_service,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db

STEPS = ["basics", "impact", "timeline", "inside", "factors", "reflect", "actions", "review"]
HX = {"HX-Request": "true"}


@pytest.fixture
def draft(user):
    return make_incident(title="Checkout errors", status=Incident.Status.DRAFT, authors=[user])


def step_url(incident, step):
    return f"/incidents/{incident.slug}/edit/{step}/"


def basics_data(**overrides):
    data = {"title": "Search stale", "severity": "SEV3", "started_at": "2026-03-02T09:12",
            "summary": "Search went stale.", "go": "next"}  # fmt: skip
    data.update(overrides)
    return data


# Starting a write-up ----------------------------------------------------------------------


def test_new_write_up_page_stores_nothing(client_logged_in):
    """Opening "New write-up" shows the basics step and creates no empty incident."""
    response = client_logged_in.get("/incidents/new/")
    assert response.status_code == 200
    assert b"The basics" in response.content and b"Step 1 of 8" in response.content
    assert Incident.objects.count() == 0


def test_create_makes_a_draft_with_the_creator_as_author(client_logged_in, user):
    """The first valid basics post creates the draft and moves on to the impact step."""
    service = make_service(slug="search")
    response = client_logged_in.post("/incidents/new/", basics_data(services=[service.pk]))
    incident = Incident.objects.get(title="Search stale")
    assert response.status_code == 302
    assert response["Location"] == step_url(incident, "impact")
    assert incident.status == Incident.Status.DRAFT
    assert list(incident.authors.all()) == [user]
    assert incident.created_by == user
    assert incident.slug == "search-stale-2026-03-02"
    assert list(incident.services.all()) == [service]
    assert incident.summary_html == "<p>Search went stale.</p>"


def test_create_with_htmx_redirects_the_client(client_logged_in):
    """With htmx a valid post answers with HX-Redirect to the next step."""
    response = client_logged_in.post("/incidents/new/", basics_data(), headers=HX)
    incident = Incident.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == step_url(incident, "impact")


def test_double_submit_does_not_start_two_write_ups(client_logged_in):
    """A double click on "Start" within seconds reuses the draft just made."""
    client_logged_in.post("/incidents/new/", basics_data())
    client_logged_in.post("/incidents/new/", basics_data())
    assert Incident.objects.count() == 1


def test_create_with_milestones_out_of_order_keeps_what_was_typed(client_logged_in):
    """Field errors, status 200, everything typed still there, nothing stored."""
    response = client_logged_in.post(
        "/incidents/new/",
        basics_data(title="Keep me", started_at="2026-03-02T10:00",
                    detected_at="2026-03-02T09:00", summary="typed text"),
    )  # fmt: skip
    body = response.content.decode()
    assert response.status_code == 200
    assert "Detected time must not be before started time." in body
    assert 'value="Keep me"' in body and "typed text" in body
    assert 'value="2026-03-02T09:00"' in body
    assert not Incident.objects.exists()


def test_create_without_title_or_start_explains_what_is_needed(client_logged_in):
    """Missing title and start time get clear messages, as a partial for htmx."""
    response = client_logged_in.post(
        "/incidents/new/", {"severity": "SEV2", "summary": "x"}, headers=HX
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="step"')
    assert "Give the write-up a title" in body
    assert "When did it start?" in body
    assert not Incident.objects.exists()


def test_create_with_unknown_severity_is_rejected(client_logged_in):
    """An invalid choice is a field error, never a 500."""
    response = client_logged_in.post("/incidents/new/", basics_data(severity="SEV99"))
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert not Incident.objects.exists()


def test_times_are_entered_in_the_authors_zone_and_stored_in_utc(client, user):
    """The author in Paris types 10:00; the database holds 09:00 UTC."""
    Profile.objects.create(user=user, timezone="Europe/Paris")
    client.post("/accounts/login/", {"username": "alice", "password": "pw-for-tests-123"})
    response = client.get("/incidents/new/")
    assert b"Europe/Paris" in response.content
    client.post("/incidents/new/", basics_data(title="Zoned", started_at="2026-03-02T10:00"))
    incident = Incident.objects.get(title="Zoned")
    assert incident.started_at == dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    # And it is shown back in the author's zone.
    assert b'value="2026-03-02T10:00"' in client.get(step_url(incident, "basics")).content


def test_times_in_the_future_are_refused(client_logged_in):
    """A resolved time next year is surely a typo (a wrong day or zone)."""
    response = client_logged_in.post("/incidents/new/", basics_data(started_at="2099-01-01T10:00"))
    assert b"is in the future" in response.content
    assert not Incident.objects.exists()


def test_post_without_csrf_token_is_forbidden(user):
    """CSRF protection stays on for the guided flow."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post("/incidents/new/", basics_data()).status_code == 403
    assert not Incident.objects.exists()


# Steps as pages and partials ----------------------------------------------------------------


@pytest.mark.parametrize("step", STEPS)
def test_every_step_renders_as_a_page_and_as_a_partial(client_logged_in, draft, step):
    """Full page with the progress bar; with htmx only the step's section, Vary set."""
    page = client_logged_in.get(step_url(draft, step))
    assert page.status_code == 200
    body = page.content.decode()
    assert "<html" in body and 'id="progress"' in body and 'aria-current="step"' in body
    partial = client_logged_in.get(step_url(draft, step), headers=HX)
    text = partial.content.decode()
    assert partial.status_code == 200
    assert text.lstrip().startswith('<section id="step"') and "<html" not in text
    assert "HX-Request" in partial["Vary"]


def test_history_restore_gets_the_whole_page(client_logged_in, draft):
    """The back button after htmx swaps must not show a bare fragment."""
    response = client_logged_in.get(
        step_url(draft, "impact"), headers={**HX, "HX-History-Restore-Request": "true"}
    )
    assert b"<html" in response.content


def test_unknown_step_is_404(client_logged_in, draft):
    """Only the eight steps exist."""
    assert client_logged_in.get(step_url(draft, "nonsense")).status_code == 404


def test_unknown_incident_is_404(client_logged_in):
    assert client_logged_in.get("/incidents/nope/edit/basics/").status_code == 404


@pytest.mark.parametrize("step", ["basics", "timeline", "review"])
def test_outsiders_may_not_edit(client_logged_in, step):
    """Not an author, reviewer or staff: 403 on reads and writes, page and partial."""
    incident = make_incident()
    assert client_logged_in.get(step_url(incident, step)).status_code == 403
    assert client_logged_in.get(step_url(incident, step), headers=HX).status_code == 403
    response = client_logged_in.post(step_url(incident, step), {"title": "x"})
    assert response.status_code == 403


def test_reviewers_and_staff_may_edit(client, staff):
    """Reviewers and staff edit too; the edit link resolves for them."""
    reviewer = make_user()
    incident = make_incident(reviewers=[reviewer])
    client.force_login(reviewer)
    assert client.get(step_url(incident, "impact")).status_code == 200
    client.force_login(staff)
    assert client.get(step_url(incident, "impact")).status_code == 200


def test_only_authors_may_edit_old_url(client_logged_in):
    """/edit/ itself checks permission before redirecting."""
    incident = make_incident()
    assert client_logged_in.get(f"/incidents/{incident.slug}/edit/").status_code == 403


def test_edit_goes_to_the_first_step_then_to_where_the_author_left_off(client_logged_in, draft):
    """Stop at any moment and come back to the same place."""
    response = client_logged_in.get(f"/incidents/{draft.slug}/edit/")
    assert response["Location"] == step_url(draft, "basics")
    client_logged_in.get(step_url(draft, "factors"))
    response = client_logged_in.get(f"/incidents/{draft.slug}/edit/")
    assert response["Location"] == step_url(draft, "factors")


def test_progress_bar_shows_complete_and_missing_steps(client_logged_in, user):
    """Steps with what they need are ✓; the others say they are missing."""
    incident = make_incident(status="draft", authors=[user], teams=[make_team()],
                             customer_visible=True, data_lost=False)  # fmt: skip
    body = client_logged_in.get(step_url(incident, "timeline")).content.decode()
    assert "2 of 7 steps complete" in body
    assert body.count("(complete)") == 2
    assert 'Timeline</span>\n          <span class="vh">(missing)' in body


# Saving a step ------------------------------------------------------------------------------


def test_save_and_continue_moves_to_the_next_step(client_logged_in, draft):
    """A valid plain post saves, bumps the version and redirects to the next step."""
    response = client_logged_in.post(
        step_url(draft, "impact"),
        {"impact": "Everyone", "customer_visible": "true", "data_lost": "false",
         "version": draft.version, "go": "next"},
    )  # fmt: skip
    assert response["Location"] == step_url(draft, "timeline")
    draft.refresh_from_db()
    assert (draft.impact, draft.customer_visible, draft.data_lost) == ("Everyone", True, False)
    assert draft.version == 2


def test_save_stays_on_the_step(client_logged_in, draft):
    """ "Save" keeps the author where they are, with a message."""
    response = client_logged_in.post(
        step_url(draft, "reflect"),
        {"went_well": "Fast rollback", "lucky": "", "lessons": "", "version": 1, "go": "save"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == step_url(draft, "reflect")
    assert b"Saved at" in response.content


def test_htmx_save_swaps_the_step_with_saved_status_and_progress(client_logged_in, draft):
    """htmx: the step partial, the progress bar out of band, the new version in a header."""
    response = client_logged_in.post(
        step_url(draft, "reflect"),
        {"went_well": "Fast rollback", "lucky": "Low traffic", "lessons": "Canary config",
         "version": 1, "go": "save"},
        headers=HX,
    )  # fmt: skip
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="step"')
    assert (
        'id="progress" class="steps" aria-label="Steps of the write-up" hx-swap-oob="true"' in body
    )
    assert "Saved <time" in body
    assert response["X-Debrief-Version"] == "2"
    assert response["X-Debrief-Saved"] == "1"


def test_htmx_save_and_continue_redirects_the_client(client_logged_in, draft):
    response = client_logged_in.post(
        step_url(draft, "reflect"),
        {"went_well": "x", "lucky": "", "lessons": "", "version": 1, "go": "next"},
        headers=HX,
    )
    assert response["HX-Redirect"] == step_url(draft, "actions")


def test_basics_edit_keeps_the_slug_and_saves_choices(client_logged_in, draft):
    """Renaming does not move the URL; services and teams are saved with the version."""
    team = make_team()
    response = client_logged_in.post(
        step_url(draft, "basics"),
        basics_data(title="Renamed", teams=[team.pk], version=1),
    )
    assert response.status_code == 302
    slug = draft.slug
    draft.refresh_from_db()
    assert draft.title == "Renamed" and draft.slug == slug
    assert list(draft.teams.all()) == [team]


def test_invalid_step_post_keeps_the_text_and_saves_nothing(client_logged_in, draft):
    """Invalid data: errors as a 200 partial for htmx, every typed value kept."""
    response = client_logged_in.post(
        step_url(draft, "basics"),
        basics_data(title="", summary="my summary text", version=1),
        headers=HX,
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Give the write-up a title" in body and "my summary text" in body
    draft.refresh_from_db()
    assert draft.title == "Checkout errors" and draft.version == 1


def test_stale_step_post_gets_409_keeps_text_and_shows_theirs(client_logged_in, draft):
    """Someone saved in between: 409, nothing overwritten, both versions on the page."""
    Incident.objects.filter(pk=draft.pk).update(version=5, impact="someone else's text")
    response = client_logged_in.post(
        step_url(draft, "impact"),
        {"impact": "my careful text", "customer_visible": "", "data_lost": "",
         "version": 1, "go": "next"},
    )  # fmt: skip
    body = response.content.decode()
    assert response.status_code == 409
    assert "my careful text" in body and "someone else&#x27;s text" in body
    assert "someone else saved this write-up" in body
    # The form still says version 1; only the explicit button carries version 5.
    assert 'name="version" value="1"' in body
    assert 'name="overwrite_version" value="5"' in body
    draft.refresh_from_db()
    assert draft.impact == "someone else's text"


def test_keep_mine_after_a_conflict_overwrites_on_purpose(client_logged_in, draft):
    """ "Save mine, replacing theirs" saves with the version the author has now seen."""
    Incident.objects.filter(pk=draft.pk).update(version=5, impact="theirs")
    response = client_logged_in.post(
        step_url(draft, "impact"),
        {"impact": "mine", "customer_visible": "", "data_lost": "", "version": 1,
         "overwrite_version": 5},
    )  # fmt: skip
    assert response["Location"] == step_url(draft, "impact")
    draft.refresh_from_db()
    assert draft.impact == "mine" and draft.version == 6


def test_stale_htmx_post_is_a_409_partial(client_logged_in, draft):
    """htmx gets the conflict as a partial (debrief.js swaps 409)."""
    Incident.objects.filter(pk=draft.pk).update(version=3)
    response = client_logged_in.post(
        step_url(draft, "reflect"),
        {"went_well": "x", "lucky": "", "lessons": "", "version": 1},
        headers=HX,
    )
    assert response.status_code == 409
    assert response.content.decode().lstrip().startswith('<section id="step"')


def test_missing_version_is_never_current(client_logged_in, draft):
    """A post without a version cannot overwrite anything."""
    response = client_logged_in.post(
        step_url(draft, "reflect"), {"went_well": "x", "lucky": "", "lessons": ""}
    )
    assert response.status_code == 409
    draft.refresh_from_db()
    assert draft.went_well == ""


def test_inside_step_saves_answers_and_story(client_logged_in, draft):
    """Answers are stored per question; empty answers are not created."""
    first, second = GuidedQuestion.objects.filter(is_active=True)[:2]
    response = client_logged_in.post(
        step_url(draft, "inside"),
        {f"answer-{first.pk}": "The error-rate alert.", f"answer-{second.pk}": "",
         "narrative": "It began with a config push.", "version": 1},
    )  # fmt: skip
    assert response["Location"] == step_url(draft, "factors")
    answers = list(Answer.objects.filter(incident=draft))
    assert [(a.question_id, a.text) for a in answers] == [(first.pk, "The error-rate alert.")]
    draft.refresh_from_db()
    assert draft.narrative == "It began with a config push." and draft.version == 2


def test_inside_step_shows_every_question_with_its_help(client_logged_in, draft):
    """The questions are data: prompts and help texts from the model, in order."""
    body = client_logged_in.get(step_url(draft, "inside")).content.decode()
    for question in GuidedQuestion.objects.filter(is_active=True):
        assert question.prompt.replace("'", "&#x27;") in body
    assert "What made the actions taken make sense at the time?" in body


def test_inactive_question_without_answer_is_hidden(client_logged_in, draft):
    question = GuidedQuestion.objects.create(prompt="Old question?", is_active=False)
    assert b"Old question?" not in client_logged_in.get(step_url(draft, "inside")).content
    Answer.objects.create(incident=draft, question=question, text="kept")
    assert b"Old question?" in client_logged_in.get(step_url(draft, "inside")).content


def test_stale_inside_post_is_409_and_keeps_answers(client_logged_in, draft):
    question = GuidedQuestion.objects.filter(is_active=True).first()
    Answer.objects.create(incident=draft, question=question, text="their answer")
    Incident.objects.filter(pk=draft.pk).update(version=4)
    response = client_logged_in.post(
        step_url(draft, "inside"),
        {f"answer-{question.pk}": "my answer", "narrative": "", "version": 1},
    )
    body = response.content.decode()
    assert response.status_code == 409
    assert "my answer" in body and "their answer" in body
    assert Answer.objects.get(incident=draft, question=question).text == "their answer"


def test_blame_findings_show_under_the_field_and_never_block(client_logged_in, draft):
    """Saving blameful text works; the finding is shown under it, escaped, with a suggestion."""
    response = client_logged_in.post(
        step_url(draft, "impact"),
        {"impact": "<b>Bob</b> forgot to renew the cert. human error.", "customer_visible": "",
         "data_lost": "", "version": 1, "go": "save"},
        follow=True,
    )  # fmt: skip
    body = response.content.decode()
    draft.refresh_from_db()
    assert draft.impact.startswith("<b>Bob</b>")
    assert "<mark>human error</mark>" in body
    assert "&lt;b&gt;Bob&lt;/b&gt;" in body and "<b>Bob</b>" not in body
    assert "Not blame here — dismiss" in body


def test_no_js_dismiss_records_and_saves(client_logged_in, draft):
    """Without JavaScript the dismiss button posts the step form: saved, dismissed, stays."""
    response = client_logged_in.post(
        step_url(draft, "impact"),
        {"impact": "It was human error.", "customer_visible": "", "data_lost": "",
         "version": 1, "dismiss": "impact|human_error|human error"},
    )  # fmt: skip
    assert response["Location"] == step_url(draft, "impact")
    assert draft.dismissals.get().phrase == "human error"
    body = client_logged_in.get(step_url(draft, "impact")).content.decode()
    assert "<mark>human error</mark>" not in body


# Review and submit --------------------------------------------------------------------------


def full_incident(user):
    incident = make_incident(status="draft", authors=[user], teams=[make_team()],
                             customer_visible=True, data_lost=False, went_well="a",
                             lucky="b", lessons="c")  # fmt: skip
    detection = make_entry(incident, kind="detection", text="Alert fired")
    make_entry(incident, kind="resolution", text="Recovered")
    factor = make_factor(incident, evidence=[detection])
    make_action_item(incident).addresses.add(factor)
    for question in GuidedQuestion.objects.filter(is_active=True):
        Answer.objects.create(incident=incident, question=question, text="An answer.")
    return incident


def test_review_lists_gaps_with_links(client_logged_in, draft):
    """Each open item links to the step (and place) where it is fixed."""
    make_factor(draft, description="Alert baseline too long")
    body = client_logged_in.get(step_url(draft, "review")).content.decode()
    assert "The timeline has a detection" in body
    assert f'href="/incidents/{draft.slug}/edit/timeline/#add-entry"' in body
    assert f'href="/incidents/{draft.slug}/edit/factors/#factors-' in body
    assert "Submit with" in body


def test_review_summarises_blame_findings_with_links(client_logged_in, draft):
    draft.impact = "Dave should have checked."
    draft.save()
    make_action_item(draft, title="Be more careful")
    body = client_logged_in.get(step_url(draft, "review")).content.decode()
    assert "2 phrases may read as blame" in body
    assert "<mark>Be more careful</mark>" in body
    assert f'href="/incidents/{draft.slug}/edit/impact/#impact-field"' in body


def test_submit_complete_write_up(client_logged_in, user):
    """A complete write-up goes to review; the author lands on the incident page."""
    incident = full_incident(user)
    body = client_logged_in.get(step_url(incident, "review")).content.decode()
    assert "Everything on the checklist is done." in body
    response = client_logged_in.post(step_url(incident, "review"), {"action": "submit"})
    assert response["Location"] == incident.get_absolute_url()
    incident.refresh_from_db()
    assert incident.status == Incident.Status.IN_REVIEW


def test_submit_with_gaps_needs_a_deliberate_tick(client_logged_in, draft):
    """Open checklist items: submitting asks for the box; with it, the write-up goes."""
    response = client_logged_in.post(step_url(draft, "review"), {"action": "submit"})
    assert response.status_code == 200
    assert b"still open" in response.content
    draft.refresh_from_db()
    assert draft.status == Incident.Status.DRAFT
    response = client_logged_in.post(
        step_url(draft, "review"), {"action": "submit", "accept_gaps": "1"}, headers=HX
    )
    assert response["HX-Redirect"] == draft.get_absolute_url()
    draft.refresh_from_db()
    assert draft.status == Incident.Status.IN_REVIEW


def test_blame_findings_never_block_submitting(client_logged_in, user):
    incident = full_incident(user)
    incident.impact = "It was human error; Dave should have checked."
    incident.save()
    client_logged_in.post(step_url(incident, "review"), {"action": "submit"})
    incident.refresh_from_db()
    assert incident.status == Incident.Status.IN_REVIEW


def test_reviewer_cannot_submit_and_is_told_why(client):
    reviewer = make_user()
    incident = make_incident(status="draft", reviewers=[reviewer])
    client.force_login(reviewer)
    body = client.get(step_url(incident, "review")).content.decode()
    assert "Only the write-up's authors can submit it" in body
    response = client.post(step_url(incident, "review"), {"action": "submit", "accept_gaps": 1})
    assert b"Only the write-up&#x27;s authors can submit it for review." in response.content
    incident.refresh_from_db()
    assert incident.status == Incident.Status.DRAFT


def test_submitted_write_up_cannot_be_submitted_again(client_logged_in, user):
    incident = full_incident(user)
    Incident.objects.filter(pk=incident.pk).update(status=Incident.Status.IN_REVIEW)
    body = client_logged_in.get(step_url(incident, "review")).content.decode()
    assert "Submit for review</button>" not in body
    response = client_logged_in.post(step_url(incident, "review"), {"action": "submit"})
    assert b"can&#x27;t be submitted for review" in response.content


# Query counts -------------------------------------------------------------------------------


@pytest.mark.parametrize("step", STEPS)
def test_step_pages_have_a_fixed_number_of_queries(
    client_logged_in, user, django_assert_max_num_queries, step
):
    """No query per row: a big write-up costs what a small one does."""
    small = full_incident(user)
    with django_assert_max_num_queries(40) as few:
        assert client_logged_in.get(step_url(small, step)).status_code == 200
    big = full_incident(user)
    entries = [make_entry(big) for _ in range(20)]
    for i in range(6):
        factor = make_factor(big, evidence=entries[i : i + 3])
        make_action_item(big).addresses.add(factor)
    with django_assert_max_num_queries(40) as many:
        assert client_logged_in.get(step_url(big, step)).status_code == 200
    assert len(many.captured_queries) == len(few.captured_queries)


def test_detail_page_shows_answers_under_their_questions(client_logged_in, user):
    """The incident page shows the guided answers, within its query budget."""
    incident = full_incident(user)
    question = GuidedQuestion.objects.order_by("position").first()
    Answer.objects.filter(incident=incident, question=question).update(
        text="The **error-rate** alert", text_html="<p>The <strong>error-rate</strong> alert</p>"
    )
    body = client_logged_in.get(incident.get_absolute_url()).content.decode()
    assert question.prompt in body
    assert "<strong>error-rate</strong>" in body


def test_invalid_post_does_not_change_the_page_around_the_form(client_logged_in, draft):
    """The heading and title still show the saved title while the form shows the typed one."""
    response = client_logged_in.post(step_url(draft, "basics"), basics_data(title="", version=1))
    body = response.content.decode()
    assert '<span class="write-name">Checkout errors</span>' in body
    assert "<title>Basics · Checkout errors · Debrief</title>" in body
