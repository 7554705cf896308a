"""The incident list: each filter, search with excerpts, partials, and pinned query counts."""

import datetime as dt

import pytest
from django.utils import timezone

from incidents.browse_views import filter_choices, filter_incidents
from incidents.models import Incident
from tests.factories import (
    make_entry,
    make_factor,
    make_incident,
    make_service,
    make_tag,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db


def listed(client, query=""):
    response = client.get(f"/incidents/?{query}")
    assert response.status_code == 200
    return [incident.title for incident in response.context["page"].object_list]


def test_filter_by_status(client_logged_in, user):
    """?status= keeps only that status (drafts only where the reader may see them)."""
    make_incident(title="Mine in review", status=Incident.Status.IN_REVIEW, authors=[user])
    make_incident(title="Published")
    assert listed(client_logged_in, "status=in_review") == ["Mine in review"]


def test_filter_by_severity(client_logged_in):
    make_incident(title="Big", severity="SEV1")
    make_incident(title="Small", severity="SEV4")
    assert listed(client_logged_in, "severity=SEV1") == ["Big"]


def test_filter_by_service_team_and_tag(client_logged_in):
    """Service, team and tag are named by slug."""
    checkout = make_service(name="Checkout", slug="checkout")
    payments = make_team(name="Payments", slug="payments")
    deploy = make_tag(name="deploy", slug="deploy")
    make_incident(title="On checkout", services=[checkout])
    make_incident(title="Payments team", teams=[payments])
    make_incident(title="Tagged", tags=[deploy])
    make_incident(title="Nothing")
    assert listed(client_logged_in, "service=checkout") == ["On checkout"]
    assert listed(client_logged_in, "team=payments") == ["Payments team"]
    assert listed(client_logged_in, "tag=deploy") == ["Tagged"]
    assert listed(client_logged_in, "tag=nope") == []


def test_filter_by_factor_category(client_logged_in):
    """?category= keeps incidents with a contributing factor of that category, once each."""
    gap = make_incident(title="Monitoring gap")
    make_factor(gap, category="monitoring")
    make_factor(gap, category="monitoring", description="Another one.")
    other = make_incident(title="Capacity")
    make_factor(other, category="capacity")
    assert listed(client_logged_in, "category=monitoring") == ["Monitoring gap"]


def test_filter_by_date_range(client_logged_in):
    """From and To are whole days, both included."""
    day = timezone.make_aware(dt.datetime(2026, 3, 2, 23, 30))
    make_incident(title="Inside", started_at=day)
    make_incident(title="Before", started_at=day - dt.timedelta(days=2))
    make_incident(title="After", started_at=day + dt.timedelta(days=1))
    assert listed(client_logged_in, "since=2026-03-01&until=2026-03-02") == ["Inside"]
    assert set(listed(client_logged_in, "since=2026-03-02")) == {"Inside", "After"}


def test_filters_combine_with_search(client_logged_in):
    """Search ranks within the filtered set."""
    checkout = make_service(slug="checkout")
    make_incident(title="Zebra on checkout", services=[checkout], severity="SEV1")
    make_incident(title="Zebra elsewhere", severity="SEV1")
    make_incident(title="Zebra small", services=[checkout], severity="SEV4")
    assert listed(client_logged_in, "q=zebra&service=checkout&severity=SEV1") == [
        "Zebra on checkout"
    ]


def test_bad_values_are_reported_and_the_rest_still_filters(client_logged_in):
    """A bad severity is reported; the good filters still apply; no 500."""
    make_incident(title="Big", severity="SEV1", status=Incident.Status.PUBLISHED)
    response = client_logged_in.get(
        "/incidents/?severity=SEV9&status=published&since=not-a-date&q=big&category=x"
    )
    assert response.status_code == 200
    assert b'role="alert"' in response.content
    assert [i.title for i in response.context["page"].object_list] == ["Big"]


@pytest.mark.parametrize("query", ["until=9999-12-31", "since=0001-01-01", "since=2026-02-30"])
def test_implausible_dates_are_reported(client_logged_in, query):
    """Year 9999 would overflow date arithmetic; it is a field error instead."""
    response = client_logged_in.get(f"/incidents/?{query}")
    assert response.status_code == 200
    assert b'role="alert"' in response.content


def test_backwards_date_range_is_reported(client_logged_in):
    response = client_logged_in.get("/incidents/?since=2026-05-01&until=2026-01-01")
    assert b"must not be before its start" in response.content


@pytest.mark.parametrize(
    "query", ['"unbalanced', "NEAR(a b)", "a AND OR NOT *", "x" * 5000, "-", "'; --"]
)
def test_malformed_search_never_500(client_logged_in, query):
    make_incident(title="Disk full")
    response = client_logged_in.get("/incidents/", {"q": query})
    assert response.status_code == 200


def test_search_results_show_marked_excerpts(client_logged_in):
    """Results say where the word was found and mark it; author HTML stays text."""
    incident = make_incident(title="Slow pages")
    make_entry(incident, text="Restarted the <em>varnish</em> cache.")
    body = client_logged_in.get("/incidents/", {"q": "varnish"}).content.decode()
    assert "<mark>varnish</mark>" in body
    assert "Timeline" in body
    assert "<em>varnish" not in body
    assert "best match first" in body


def test_search_partial_and_full_page(client_logged_in):
    """htmx gets only #results (Vary: HX-Request); a plain request gets the whole page."""
    make_incident(title="Zebra")
    partial = client_logged_in.get("/incidents/?q=zebra", headers={"HX-Request": "true"})
    assert partial.content.decode().lstrip().startswith('<section id="results"')
    assert "HX-Request" in partial["Vary"]
    full = client_logged_in.get("/incidents/?q=zebra")
    assert b"<html" in full.content and b"Zebra" in full.content


def test_single_service_list_doubles_as_service_page(client_logged_in):
    """Filtered to one service, the list says whose it is and links its trends."""
    team = make_team(name="Payments", slug="payments")
    make_service(name="Checkout", slug="checkout", team=team)
    body = client_logged_in.get("/incidents/?service=checkout").content.decode()
    assert "Service: Checkout" in body
    assert "/metrics/?service=checkout" in body
    assert "/teams/payments/" in body


def test_private_incidents_are_not_found(client_logged_in):
    """Search goes through visible_to: a private write-up is neither listed nor counted."""
    make_incident(title="Secret zebra", visibility=Incident.Visibility.PEOPLE)
    response = client_logged_in.get("/incidents/?q=zebra")
    assert response.context["page"].paginator.count == 0
    assert b"Secret" not in response.content


def test_filter_incidents_without_http():
    """The filter function applies only what is given."""
    checkout = make_service(slug="checkout")
    a = make_incident(services=[checkout], severity="SEV1")
    make_incident(severity="SEV1")
    qs = filter_incidents(Incident.objects.all(), {"service": "checkout", "severity": "SEV1"})
    assert list(qs) == [a]
    assert filter_incidents(Incident.objects.all(), {}).count() == 2


def build(n, team, service):
    for i in range(n):
        incident = make_incident(title=f"Zebra {i}", teams=[team], services=[service])
        make_entry(incident, text="zebra in the timeline")
        make_factor(incident)


@pytest.mark.parametrize(
    "query",
    ["", "q=zebra", "q=zebra+-giraffe", "q=-giraffe", "q=zebra&service=s&category=monitoring",
     "page=2", "q=zebra&page=2"],
)  # fmt: skip
def test_list_query_count_is_fixed(client_logged_in, django_assert_max_num_queries, query):
    """/incidents/ (with or without search) needs at most 12 queries, whatever the data size."""
    team = make_team()
    service = make_service(slug="s")
    make_tag()
    build(3, team, service)
    with django_assert_max_num_queries(12) as few:
        assert client_logged_in.get(f"/incidents/?{query}").status_code == 200
    build(30, team, service)
    with django_assert_max_num_queries(12) as many:
        assert client_logged_in.get(f"/incidents/?{query}").status_code == 200
    assert len(few.captured_queries) == len(many.captured_queries)


def test_outsider_count_matches_what_they_see(client):
    """The count is of readable incidents only."""
    outsider = make_user()
    make_incident(title="Public")
    make_incident(title="Private", visibility=Incident.Visibility.TEAMS)
    client.force_login(outsider)
    response = client.get("/incidents/")
    assert response.context["page"].paginator.count == 1


def test_every_page_lists_the_same_rows_as_plain_offsets(client_logged_in):
    """Pages past the middle are read from the end: the rows and their order must be exactly
    those of plain OFFSET paging, last (partial) page included, ties on start time included."""
    from incidents.viewutils import PAGE_SIZE

    same_start = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
    for n in range(PAGE_SIZE * 3 + 7):
        started = same_start if n % 5 == 0 else same_start - dt.timedelta(hours=n)
        make_incident(title=f"Paging {n:03d}", started_at=started)
    expected = list(Incident.objects.order_by("-started_at", "-id").values_list("title", flat=True))
    seen = []
    for number in range(1, 5):
        response = client_logged_in.get(f"/incidents/?page={number}")
        seen += [incident.title for incident in response.context["page"].object_list]
    assert seen == expected
    assert len(response.context["page"].object_list) == 7


def test_rows_link_their_services_and_teams_by_name(
    client_logged_in, django_assert_max_num_queries
):
    """Each row names its services and teams, sorted by name, each linking to its page; the
    same incident shown twice on one page gets its links in both places."""
    from incidents.models import attach_links

    payments = make_team(name="Payments", slug="payments")
    checkout = make_service(name="checkout", slug="checkout")
    api = make_service(name="api", slug="api")
    both = make_incident(title="Both", services=[checkout, api], teams=[payments])
    bare = make_incident(title="Bare")
    first, second, other = Incident.objects.get(pk=both.pk), Incident.objects.get(pk=both.pk), bare
    with django_assert_max_num_queries(2):
        rows = attach_links([first, second, other])
    assert [row.title for row in rows] == ["Both", "Both", "Bare"]
    for row in (first, second):
        assert [(link.name, link.url) for link in row.service_links] == [
            ("api", "/services/api/"), ("checkout", "/services/checkout/"),
        ]  # fmt: skip
        assert [(link.name, link.url) for link in row.team_links] == [
            ("Payments", "/teams/payments/")
        ]
    assert other.service_links == [] and other.team_links == []
    assert attach_links([]) == []

    body = client_logged_in.get("/incidents/").content.decode()
    assert 'href="/services/checkout/">checkout</a>' in body
    assert 'href="/teams/payments/">Payments</a>' in body


def test_filter_choices_come_in_one_query_by_name(django_assert_num_queries):
    payments = make_team(name="Payments", slug="payments")
    make_team(name="Atlas", slug="atlas")
    make_service(name="search", slug="search")
    make_service(name="checkout", slug="checkout", team=payments)
    make_tag(name="deploy", slug="deploy")
    with django_assert_num_queries(1):
        teams, services, tags = filter_choices()
    assert [(t.name, t.slug) for t in teams] == [("Atlas", "atlas"), ("Payments", "payments")]
    assert [s.slug for s in services] == ["checkout", "search"]
    checkout, search = services
    assert checkout.team.name == "Payments" and checkout.team.get_absolute_url().endswith(
        "/payments/"
    )
    assert search.team is None
    assert [(t.name, t.slug) for t in tags] == [("deploy", "deploy")]
