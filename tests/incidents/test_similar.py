"""Similar past incidents with the reason each matched, and recurrence notes."""

import datetime as dt

import pytest
from django.test import RequestFactory
from django.utils import timezone

from incidents.models import Incident
from incidents.similar import find_similar, recurrence_notes, split_param
from tests.factories import make_entry, make_factor, make_incident, make_service, make_user

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


@pytest.fixture
def checkout():
    return make_service(name="checkout", slug="checkout")


def test_split_param_reads_repeated_and_comma_separated_values():
    """?services=a&services=b,c and duplicates read as one list."""
    request = RequestFactory().get("/x", {"services": ["a", "b, c", "a", ""]})
    assert split_param(request, "services") == ["a", "b", "c"]


def test_shared_service_category_and_words_are_the_reasons(user, checkout):
    """Each result says what it shares: the service, the factor category, the words."""
    past = make_incident(title="Checkout canary errors", services=[checkout])
    make_factor(past, category="monitoring")
    (match,) = find_similar(
        user, services=["checkout"], categories=["monitoring"], text="canary went wrong"
    )
    assert match.incident == past
    assert match.reasons == [
        "Also on checkout",
        "Also had a monitoring & alerting gap",
        "Also mentions “canary”",
    ]


def test_more_in_common_ranks_first_and_newest_breaks_ties(user, checkout):
    """Service and category together beat a service alone; ties go to the newest."""
    now = timezone.now()
    old_service_only = make_incident(title="Old", services=[checkout], started_at=now - 40 * DAY)
    new_service_only = make_incident(title="New", services=[checkout], started_at=now - 5 * DAY)
    both = make_incident(title="Both", services=[checkout], started_at=now - 90 * DAY)
    make_factor(both, category="capacity")
    found = find_similar(user, services=["checkout"], categories=["capacity"])
    assert [s.incident for s in found] == [both, new_service_only, old_service_only]


def test_at_most_five_and_never_the_incident_itself(user, checkout):
    for n in range(7):
        make_incident(title=f"Past {n}", services=[checkout])
    current = make_incident(title="Current", services=[checkout])
    found = find_similar(user, services=["checkout"], exclude_slug=current.slug)
    assert len(found) == 5
    assert current not in [s.incident for s in found]


def test_words_alone_find_similar_incidents(user):
    """While writing, the title's words find incidents even before services are chosen; what
    a write-up is about (title, summary, impact, lessons) counts, not every timeline word."""
    past = make_incident(title="Elasticsearch disk full", summary="The watermark was reached.")
    timeline_only = make_incident(title="Unrelated outage")
    make_entry(timeline_only, text="Checked the elasticsearch watermark alerts.")
    (match,) = find_similar(user, text="elasticsearch watermark alerts")
    assert match.incident == past
    assert "Also mentions “elasticsearch” and “watermark”" in match.reasons


def test_only_published_incidents_the_reader_may_see(user, checkout):
    """Drafts and private write-ups never appear, not even through shared words."""
    make_incident(title="Draft", services=[checkout], status=Incident.Status.DRAFT)
    make_incident(title="Private", services=[checkout], visibility=Incident.Visibility.PEOPLE)
    assert find_similar(user, services=["checkout"], text="draft private") == []


def test_nothing_asked_nothing_found(user):
    make_incident()
    assert find_similar(user) == []


def test_recurrence_counts_the_one_being_written(user, checkout):
    """Two earlier monitoring gaps on checkout in 90 days: this one is the 3rd."""
    now = timezone.now()
    for days in (10, 60):
        incident = make_incident(services=[checkout], started_at=now - days * DAY)
        make_factor(incident, category="monitoring")
    too_old = make_incident(services=[checkout], started_at=now - 120 * DAY)
    make_factor(too_old, category="monitoring")
    other_service = make_incident(services=[make_service()], started_at=now - 3 * DAY)
    make_factor(other_service, category="monitoring")
    notes = recurrence_notes(user, services=["checkout"], categories=["monitoring"])
    assert [n.text for n in notes] == [
        "3rd incident with a monitoring & alerting gap on checkout in 90 days"
    ]


def test_recurrence_is_counted_before_the_incident_read(user, checkout):
    """On an old incident's page, the window is the 90 days before it, itself excluded."""
    start = timezone.now() - 400 * DAY
    earlier = make_incident(services=[checkout], started_at=start - 30 * DAY)
    make_factor(earlier, category="testing")
    current = make_incident(services=[checkout], started_at=start)
    make_factor(current, category="testing")
    later = make_incident(services=[checkout], started_at=start + 10 * DAY)
    make_factor(later, category="testing")
    notes = recurrence_notes(
        user, services=["checkout"], categories=["testing"], exclude_slug=current.slug,
        reference=current.started_at,
    )  # fmt: skip
    assert [n.text for n in notes] == ["2nd incident with a testing gap on checkout in 90 days"]


def test_recurrence_without_services_or_categories(user, checkout):
    now = timezone.now()
    incident = make_incident(services=[checkout], started_at=now - DAY)
    make_factor(incident, category="capacity")
    assert [n.text for n in recurrence_notes(user, categories=["capacity"])] == [
        "2nd incident with a capacity factor in 90 days"
    ]
    assert [n.text for n in recurrence_notes(user, services=["checkout"])] == [
        "2nd incident on checkout in 90 days"
    ]
    assert recurrence_notes(user) == []


def test_recurrence_counts_only_what_the_reader_may_see(checkout):
    outsider = make_user()
    hidden = make_incident(services=[checkout], visibility=Incident.Visibility.PEOPLE)
    make_factor(hidden, category="monitoring")
    assert recurrence_notes(outsider, services=["checkout"], categories=["monitoring"]) == []


def test_view_partial_lists_reasons_and_notes(client_logged_in, checkout):
    """The htmx partial: notes, matches and reasons; no page around it."""
    past = make_incident(title="Checkout outage last month", services=[checkout],
                         started_at=timezone.now() - 20 * DAY)  # fmt: skip
    make_factor(past, category="monitoring")
    response = client_logged_in.get(
        "/incidents/similar/?services=checkout&categories=monitoring,bogus&q=outage",
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert body.lstrip().startswith('<div class="similar-results"')
    assert "Checkout outage last month" in body
    assert "Also on checkout" in body
    assert "2nd incident with a monitoring &amp; alerting gap on checkout in 90 days" in body
    assert "HX-Request" in response["Vary"]


def test_view_full_page_for_a_plain_link(client_logged_in, checkout):
    """Without htmx the same results come inside the whole page (the no-JS fallback)."""
    current = make_incident(title="Current one", services=[checkout])
    make_incident(title="Earlier one", services=[checkout])
    response = client_logged_in.get(f"/incidents/similar/?exclude={current.slug}&services=checkout")
    body = response.content.decode()
    assert "<html" in body and "Similar past incidents" in body
    assert "Earlier one" in body
    assert "Past incidents like" in body


def test_view_uses_the_excluded_incidents_title_when_no_words_given(client_logged_in):
    current = make_incident(title="Kafka consumer lag")
    make_incident(title="Kafka broker restart")
    response = client_logged_in.get(
        f"/incidents/similar/?exclude={current.slug}", headers={"HX-Request": "true"}
    )
    assert b"Kafka broker restart" in response.content
    assert b"Kafka consumer lag" not in response.content


@pytest.mark.parametrize(
    "query",
    ["", "services=" + "x," * 500, "categories=%00", "q=" + "NEAR " * 1000, "exclude=../.."],
)
def test_view_never_fails_on_odd_input(client_logged_in, query):
    response = client_logged_in.get(f"/incidents/similar/?{query}", headers={"HX-Request": "true"})
    assert response.status_code == 200


def test_view_query_count_is_fixed(client_logged_in, django_assert_max_num_queries, checkout):
    def build(n):
        for _ in range(n):
            incident = make_incident(title="Checkout zebra", services=[checkout])
            make_factor(incident, category="monitoring")

    url = "/incidents/similar/?services=checkout&categories=monitoring&q=zebra"
    build(3)
    with django_assert_max_num_queries(12) as few:
        client_logged_in.get(url, headers={"HX-Request": "true"})
    build(20)
    with django_assert_max_num_queries(12) as many:
        client_logged_in.get(url, headers={"HX-Request": "true"})
    assert len(few.captured_queries) == len(many.captured_queries)


def test_incident_page_loads_panels_lazily_with_link_fallbacks(client_logged_in, checkout):
    """The incident page links the similar panel (htmx on reveal, plain link without JS) with
    its services and factor categories, and the lessons panel."""
    incident = make_incident(services=[checkout])
    make_factor(incident, category="monitoring")
    body = client_logged_in.get(incident.get_absolute_url()).content.decode()
    assert 'hx-trigger="revealed"' in body
    assert (
        f"/incidents/similar/?exclude={incident.slug}&amp;services=checkout&amp;categories=monitoring"
        in body
    )
    assert f"/lessons/from/{incident.slug}/" in body
