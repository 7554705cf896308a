import datetime as dt

import pytest
from django.db import DatabaseError
from django.test import Client
from django.urls import reverse

from incidents.models import Answer, GuidedQuestion, Incident
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

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url", ["/", "/incidents/", "/incidents/new/", "/actions/", "/lessons/", "/metrics/"]
)
def test_pages_require_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    "url", ["/", "/incidents/", "/incidents/new/", "/actions/", "/lessons/", "/metrics/"]
)
def test_pages_render_for_a_signed_in_user(client_logged_in, url):
    response = client_logged_in.get(url)
    assert response.status_code == 200
    assert b"New write-up" in response.content


def test_login_page_is_public(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_sign_in_with_wrong_password_shows_error(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"correct username and password" in response.content


def test_unknown_incident_gets_styled_404(client_logged_in):
    response = client_logged_in.get("/incidents/no-such-thing/")
    assert response.status_code == 404
    assert b"couldn't find that page" in response.content


def test_detail_shows_the_whole_write_up(client_logged_in):
    team = make_team(name="Payments", slug="payments")
    incident = make_incident(title="Checkout down", teams=[team], went_well="Rollback was fast",
                             lucky="Low traffic", lessons="Config needs canaries")  # fmt: skip
    entry = make_entry(incident, kind="detection", text="Alert fired")
    make_factor(incident, description="Alert baseline too long", evidence=[entry])
    make_action_item(incident, title="Alert on canary errors", team=team)
    response = client_logged_in.get(incident.get_absolute_url())
    body = response.content.decode()
    assert response.status_code == 200
    for text in ("Checkout down", "Alert fired", "Alert baseline too long", "Alert on canary errors",
                 "Rollback was fast", "Low traffic", "Config needs canaries", "Time to resolve",
                 "47 min", "Payments"):  # fmt: skip
        assert text in body, text
    assert f'href="#entry-{entry.pk}"' in body


def test_detail_links_chips_and_lists_each_factors_evidence_in_timeline_order(client_logged_in):
    """The incident page reads its links, evidence and answers without prefetch_related:
    each factor keeps only its own evidence, in timeline order, and the chips link out."""
    service = make_service(name="Checkout", slug="checkout")
    tag = make_tag(name="dns", slug="dns")
    team = make_team(name="Payments", slug="payments")
    incident = make_incident(services=[service], teams=[team], tags=[tag])
    late = make_entry(incident, at=incident.started_at + dt.timedelta(minutes=30), kind="alert")
    early = make_entry(incident, at=incident.started_at + dt.timedelta(minutes=5))
    unused = make_entry(incident, at=incident.started_at + dt.timedelta(minutes=10))
    both = make_factor(incident, description="Both entries", evidence=[late, early])
    one = make_factor(incident, description="Only the alert", evidence=[late])
    none = make_factor(incident, description="No evidence")
    question = GuidedQuestion.objects.create(prompt="What did the dashboards show?")
    Answer.objects.create(incident=incident, question=question, text="A flat *line*.")
    other = make_incident()
    make_factor(other, evidence=[make_entry(other)])

    response = client_logged_in.get(incident.get_absolute_url())
    body = response.content.decode()
    assert response.status_code == 200
    for url, text in (("/services/checkout/", "Checkout"), ("/teams/payments/", "Payments"),
                      ("/tags/dns/", "#dns")):  # fmt: skip
        assert f'href="{url}">{text}</a>' in body, url
    assert "services=checkout" in body  # the similar-incidents query carries the services
    factors = {factor.pk: factor for factor in response.context["factors"]}
    assert [e.pk for e in factors[both.pk].evidence_entries] == [early.pk, late.pk]
    assert [e.pk for e in factors[one.pk].evidence_entries] == [late.pk]
    assert factors[none.pk].evidence_entries == []
    assert f'href="#entry-{unused.pk}"' not in body
    assert "What did the dashboards show?" in body and "<em>line</em>" in body


def test_detail_marks_overdue_action_items(client_logged_in):
    incident = make_incident()
    make_action_item(incident, due=dt.date(2020, 1, 1))
    response = client_logged_in.get(incident.get_absolute_url())
    assert b"Overdue" in response.content


def test_draft_of_someone_else_is_not_acknowledged(client_logged_in):
    """Someone else's draft answers 404, exactly like a slug that does not exist."""
    draft = make_incident(status=Incident.Status.DRAFT)
    response = client_logged_in.get(draft.get_absolute_url())
    assert response.status_code == 404
    assert draft.title.encode() not in response.content


def test_private_incident_is_not_acknowledged_to_outsiders(client_logged_in):
    """A 403 would confirm that a private write-up with this slug exists."""
    incident = make_incident(visibility=Incident.Visibility.PEOPLE)
    response = client_logged_in.get(incident.get_absolute_url())
    missing = client_logged_in.get("/incidents/no-such-incident/")
    assert response.status_code == missing.status_code == 404
    assert incident.title.encode() not in response.content


def test_create_with_milestones_out_of_order_keeps_what_was_typed(client_logged_in):
    response = client_logged_in.post(
        "/incidents/new/",
        {"title": "Keep me", "severity": "SEV2", "started_at": "2026-03-02T10:00",
         "detected_at": "2026-03-02T09:00", "summary": "typed text"},
    )  # fmt: skip
    body = response.content.decode()
    assert response.status_code == 200
    assert "Detected time must not be before started time." in body
    assert 'value="Keep me"' in body and "typed text" in body
    assert not Incident.objects.filter(title="Keep me").exists()


def test_create_with_unknown_severity_is_rejected(client_logged_in):
    response = client_logged_in.post(
        "/incidents/new/", {"title": "x", "severity": "SEV99", "started_at": "2026-03-02T10:00"}
    )
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert Incident.objects.count() == 0


def test_times_are_entered_in_the_authors_zone_and_stored_in_utc(client, user):
    from incidents.models import Profile

    Profile.objects.create(user=user, timezone="Europe/Paris")
    client.post("/accounts/login/", {"username": "alice", "password": "pw-for-tests-123"})
    client.post("/incidents/new/", {"title": "Zoned", "severity": "SEV3",
                                    "started_at": "2026-03-02T10:00"})  # fmt: skip
    incident = Incident.objects.get(title="Zoned")
    assert incident.started_at == dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def test_only_authors_may_edit(client_logged_in):
    incident = make_incident()
    assert client_logged_in.get(f"/incidents/{incident.slug}/edit/").status_code == 403


def test_post_without_csrf_token_is_forbidden(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/incidents/new/", {"title": "x", "severity": "SEV2"})
    assert response.status_code == 403
    assert Incident.objects.count() == 0


def test_list_filters_by_severity_and_team(client_logged_in):
    team = make_team(slug="payments")
    match = make_incident(title="Payments SEV1", severity="SEV1", teams=[team])
    make_incident(title="Other SEV1", severity="SEV1")
    make_incident(title="Payments SEV3", severity="SEV3", teams=[team])
    response = client_logged_in.get("/incidents/?severity=SEV1&team=payments")
    assert list(response.context["page"].object_list) == [match]


def test_list_search_matches_words(client_logged_in):
    match = make_incident(title="Expired certificate on API")
    make_incident(title="Disk full")
    response = client_logged_in.get("/incidents/?q=certificate")
    assert list(response.context["page"].object_list) == [match]


def test_list_bad_filters_never_crash(client_logged_in):
    response = client_logged_in.get(
        "/incidents/?severity=SEV99&since=not-a-date&page=abc&q=" + "x" * 5000
    )
    assert response.status_code == 200


def test_list_filter_form_keeps_the_choices_and_points_at_refused_values(client_logged_in):
    """The filter form is written out by hand (not through widget templates): what was
    chosen stays selected, and a refused value is marked invalid and tied to its message."""
    body = client_logged_in.get(
        "/incidents/?status=published&category=monitoring&severity=SEV99&since=2024-01-01&until=soon"
    ).content.decode()
    assert '<option value="published" selected>Published</option>' in body
    assert '<option value="monitoring" selected>Monitoring &amp; alerting gap</option>' in body
    assert '<option value="SEV1">' in body and "SEV99" not in body.split("</form>")[0]
    assert 'id="id_since" value="2024-01-01">' in body
    for name in ("severity", "until"):
        assert f'aria-invalid="true" aria-describedby="id_{name}_error"' in body, name
        assert f'<p id="id_{name}_error">' in body, name
    assert 'aria-describedby="id_status_error"' not in body


def test_list_team_service_and_tag_selects_escape_names_and_keep_the_choice(client_logged_in):
    team = make_team(name="Ops & <Infra>", slug="ops-infra")
    make_service(name="payments", slug="payments", team=team)
    make_tag(name="dns", slug="dns")
    body = client_logged_in.get("/incidents/?service=payments&team=not%20a%20slug").content
    form = body.decode().split('role="search"')[1].split("</form>")[0]
    assert '<option value="">Any service</option><option value="payments" selected>payments' in form
    assert '<option value="ops-infra">Ops &amp; &lt;Infra&gt;</option>' in form
    assert '<option value="" selected>Any tag</option><option value="dns">dns</option>' in form
    assert 'id="id_team" aria-invalid="true" aria-describedby="id_team_error"' in form
    assert "<Infra>" not in form


def test_list_date_range_backwards_shows_message(client_logged_in):
    response = client_logged_in.get("/incidents/?since=2026-05-01&until=2026-01-01")
    assert b"must not be before its start" in response.content


def test_list_htmx_request_gets_the_results_partial(client_logged_in):
    make_incident(title="Partial test")
    response = client_logged_in.get("/incidents/", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="results"')
    assert "<html" not in body
    assert "HX-Request" in response["Vary"]


def test_list_history_restore_gets_the_full_page(client_logged_in):
    response = client_logged_in.get(
        "/incidents/", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert b"<html" in response.content


def test_list_paginates(client_logged_in):
    for _ in range(30):
        make_incident()
    first = client_logged_in.get("/incidents/")
    second = client_logged_in.get("/incidents/?page=2")
    assert len(first.context["page"].object_list) == 25
    assert len(second.context["page"].object_list) == 5
    assert b"Next" in first.content


def test_list_hides_drafts_of_others(client_logged_in):
    make_incident(title="Someone's draft", status=Incident.Status.DRAFT)
    response = client_logged_in.get("/incidents/")
    assert b"Someone&#x27;s draft" not in response.content
    assert response.context["page"].paginator.count == 0


def test_home_lists_my_drafts_and_reviews(client_logged_in, user):
    make_incident(title="My draft", status=Incident.Status.DRAFT, authors=[user])
    make_incident(title="To review", status=Incident.Status.IN_REVIEW, reviewers=[user])
    team = make_team(name="Core")
    team.members.add(user)
    make_action_item(title="Team follow-up", team=team)
    body = client_logged_in.get("/").content.decode()
    assert "My draft" in body and "To review" in body and "Team follow-up" in body


def test_home_empty_states(client_logged_in):
    body = client_logged_in.get("/").content.decode()
    assert "No write-ups in progress" in body
    assert "Nothing waits for your review" in body


def test_team_page(client_logged_in):
    team = make_team(name="Payments", slug="payments")
    make_incident(title="Team incident", teams=[team])
    make_action_item(title="Team action", team=team)
    response = client_logged_in.get("/teams/payments/")
    assert response.status_code == 200
    assert b"Team incident" in response.content and b"Team action" in response.content
    assert client_logged_in.get("/teams/nope/").status_code == 404


def test_actions_filter_overdue(client_logged_in):
    late = make_action_item(title="Late one", due=dt.date(2020, 1, 1))
    make_action_item(title="Future one")
    response = client_logged_in.get("/actions/?overdue=1")
    assert list(response.context["page"].object_list) == [late]


def test_actions_hide_items_of_private_incidents(client_logged_in):
    private = make_incident(visibility=Incident.Visibility.PEOPLE)
    make_action_item(private, title="Secret follow-up")
    response = client_logged_in.get("/actions/")
    assert b"Secret follow-up" not in response.content


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_503_when_database_fails(client, monkeypatch):
    from django.db.backends.utils import CursorWrapper

    def broken(*args, **kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] != "ok"


def test_security_headers_present(client_logged_in):
    response = client_logged_in.get("/incidents/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_htmx_is_served_from_static_with_a_nonce(client_logged_in):
    body = client_logged_in.get("/").content.decode()
    assert "/static/django_htmx/htmx-2.min.js" in body
    assert 'nonce="' in body
    assert 'hx-headers=\'{"x-csrftoken"' in body


def test_author_markdown_is_inside_hx_disable(client_logged_in):
    incident = make_incident(summary='<div hx-get="/admin/">x</div>')
    body = client_logged_in.get(incident.get_absolute_url()).content.decode()
    assert "hx-disable" in body
    assert 'hx-get="/admin/"' not in body


def test_anonymous_user_cannot_see_admin(client):
    assert client.get("/admin/").status_code == 302


def test_staff_admin_lists_render(client, staff):
    make_incident()
    make_action_item()
    client.force_login(staff)
    staff.is_superuser = True
    staff.save()
    for path in ("incidents/incident", "incidents/actionitem", "incidents/timelineentry",
                 "incidents/team", "lessons/lesson", "incidents/guidedquestion"):  # fmt: skip
        assert client.get(f"/admin/{path}/").status_code == 200, path


def test_admin_incident_change_page(client, staff):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    incident = make_incident()
    make_entry(incident)
    assert (
        client.get(reverse("admin:incidents_incident_change", args=[incident.pk])).status_code
        == 200
    )


def test_outsider_sees_lesson_without_private_incident_links(client_logged_in):
    from lessons.models import Lesson

    private = make_incident(title="Hidden incident", visibility=Incident.Visibility.PEOPLE)
    lesson = Lesson.objects.create(title="A lesson", body="Body")
    lesson.incidents.add(private)
    body = client_logged_in.get(lesson.get_absolute_url()).content.decode()
    assert "A lesson" in body
    assert "Hidden incident" not in body


def test_outsider_user_is_not_author(client):
    outsider = make_user()
    incident = make_incident()
    assert not incident.can_edit(outsider)
