"""/metrics/: figures checked against values computed by hand on a small fixture."""

import datetime as dt

import pytest
from django.utils import timezone

from incidents import metrics
from incidents.metrics import (
    base_incidents,
    build_report,
    categories_by_service,
    date_range,
    distributions,
    factor_categories,
    follow_through,
    gather,
    incidents_by_service,
    monthly_counts,
    overdue_by_team,
    percentile,
)
from incidents.models import ActionItem, Incident
from tests.factories import (
    make_action_item,
    make_factor,
    make_incident,
    make_service,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 15)
NOW = timezone.make_aware(dt.datetime(2026, 6, 15, 12, 0))
MIN = dt.timedelta(minutes=1)


def at(day, hour=10):
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def incident_with(detect_minutes, *, day=dt.date(2026, 5, 4), **overrides):
    started = at(day)
    fields = {
        "started_at": started,
        "detected_at": started + detect_minutes * MIN,
        "acknowledged_at": None,
        "mitigated_at": None,
        "resolved_at": started + (detect_minutes + 60) * MIN,
    }
    fields.update(overrides)
    return make_incident(**fields)


def facts_for(user):
    return gather(base_incidents(user, {}, TODAY), today=TODAY, now=NOW)


def report_for(user, **data):
    return build_report(user, data, today=TODAY, now=NOW)


def test_percentile_is_linear_between_ranks():
    """numpy's default and PostgreSQL's percentile_cont."""
    values = [2, 4, 6, 8, 100]
    assert percentile(values, 50) == 6
    assert percentile(values, 25) == 4
    assert percentile(values, 10) == pytest.approx(2.8)
    assert percentile(values, 90) == pytest.approx(63.2)


def test_distributions_match_hand_computed_values(user):
    """Detect times 2, 4, 6, 8 and 100 minutes: median 6 min, p90 63.2 min — where the mean
    (24 min) would describe none of them."""
    for minutes in (8, 2, 100, 6, 4):
        incident_with(minutes)
    incident_with(1, status=Incident.Status.DRAFT)  # not published: not counted
    detect, acknowledge, mitigate, resolve = distributions(facts_for(user))
    assert detect.n == 5
    assert detect.median == pytest.approx(6 * 60)
    assert detect.p90 == pytest.approx(63.2 * 60)
    assert detect.percentiles[10] == pytest.approx(2.8 * 60)
    assert detect.percentiles[25] == pytest.approx(4 * 60)
    assert detect.percentiles[75] == pytest.approx(8 * 60)
    assert (detect.minimum, detect.maximum) == (120, 6000)
    assert acknowledge.n == 0 and acknowledge.median is None
    assert mitigate.n == 0
    assert resolve.n == 5 and resolve.median == pytest.approx(66 * 60)


def test_single_incident_distribution(user):
    incident_with(7)
    detect = distributions(facts_for(user))[0]
    assert detect.n == 1 and detect.median == detect.p90 == 420


def test_months_by_severity_fill_the_range(user):
    """Every month of the range appears, empty ones with zeros."""
    incident_with(5, day=dt.date(2026, 5, 4), severity="SEV1")
    incident_with(5, day=dt.date(2026, 5, 20), severity="SEV3")
    incident_with(5, day=dt.date(2026, 3, 1), severity="SEV3")
    incident_with(5, day=dt.date(2025, 1, 1), severity="SEV1")  # outside the default range
    since, until = date_range({}, TODAY)
    assert (since, until) == (dt.date(2025, 7, 1), TODAY)
    months = monthly_counts(facts_for(user), since, until)
    assert len(months) == 12
    by_key = {m["key"]: m for m in months}
    assert by_key["2026-05"]["by_severity"] == {"SEV1": 1, "SEV2": 0, "SEV3": 1, "SEV4": 0}
    assert by_key["2026-03"]["total"] == 1
    assert by_key["2026-04"]["total"] == 0
    assert sum(m["total"] for m in months) == 3


def test_follow_through_outcomes_and_closing_windows(user):
    """Each action item lands in exactly one outcome; closing windows count only items old
    enough to have had the chance."""
    incident = incident_with(5)
    team = make_team()

    def item(status, *, due, created_days_ago, done_days_after=None, verified=False):
        created = NOW - dt.timedelta(days=created_days_ago)
        completed = (
            created + dt.timedelta(days=done_days_after) if done_days_after is not None else None
        )
        obj = make_action_item(incident, team=team, status=status, due=due)
        ActionItem.objects.filter(pk=obj.pk).update(
            created_at=created, completed_at=completed,
            verified_effective_at=completed if verified else None,
        )  # fmt: skip

    # done on time (10 days, due after), verified
    item(
        "done",
        due=TODAY - dt.timedelta(days=80),
        created_days_ago=100,
        done_days_after=10,
        verified=True,
    )
    # done late (50 days; due 20 days after creation)
    item("done", due=TODAY - dt.timedelta(days=80), created_days_ago=100, done_days_after=50)
    # open, overdue
    item("open", due=TODAY - dt.timedelta(days=3), created_days_ago=40)
    # in progress, due later
    item("in_progress", due=TODAY + dt.timedelta(days=3), created_days_ago=10)
    # won't do
    item("wont_do", due=None, created_days_ago=70)
    f = follow_through(facts_for(user))
    assert f.total == 5
    assert [n for _, _, n in f.outcomes] == [1, 1, 1, 1, 1]
    assert f.verified == 1 and f.share_verified == 0.5
    # 30 days: items at least 30 days old are 4 (100, 100, 40, 70); done within 30: 1
    assert f.closed_within[30] == (1, 4)
    # 60 days: items 100, 100, 70 days old; done within 60: 2
    assert f.closed_within[60] == (2, 3)
    # 90 days: items 100, 100 days old; both done within 90
    assert f.closed_within[90] == (2, 2)
    assert f.share_closed(60) == pytest.approx(2 / 3)


def test_done_on_the_due_day_is_on_time(user):
    incident = incident_with(5)
    item = make_action_item(incident, status="done", due=dt.date(2026, 5, 10))
    ActionItem.objects.filter(pk=item.pk).update(completed_at=at(dt.date(2026, 5, 10), 23))
    f = follow_through(facts_for(user))
    assert (f.done_on_time, f.done_late) == (1, 0)


def test_factor_categories_count_incidents_not_factors(user):
    checkout = make_service(name="checkout", slug="checkout")
    search = make_service(name="search", slug="search")
    a = incident_with(5, services=[checkout])
    make_factor(a, category="monitoring")
    make_factor(a, category="monitoring", description="Twice in one incident.")
    b = incident_with(5, services=[checkout, search])
    make_factor(b, category="monitoring")
    make_factor(b, category="capacity")
    incidents = facts_for(user)
    assert [(c["key"], c["n"]) for c in factor_categories(incidents)] == [
        ("monitoring", 2),
        ("capacity", 1),
    ]
    heat = categories_by_service(incidents)
    assert heat["services"] == ["checkout", "search"]
    assert [row["label"] for row in heat["rows"]] == ["Monitoring & alerting gap", "Capacity"]
    assert [c["n"] for c in heat["rows"][0]["cells"]] == [2, 1]
    assert [(r["service__name"], r["n"]) for r in incidents_by_service(incidents)] == [
        ("checkout", 2),
        ("search", 1),
    ]


def test_negative_and_missing_durations_are_left_out(user):
    """A detection time entered before the start is a typo, not a -5 minute detection."""
    incident_with(10)
    incident_with(20)
    incident_with(-5)
    detect, acknowledge, _mitigate, resolve = distributions(facts_for(user))
    assert detect.n == 2 and (detect.minimum, detect.maximum) == (600, 1200)
    assert detect.median == 900
    assert acknowledge.n == 0 and acknowledge.percentiles == {}
    assert resolve.n == 3


def test_overdue_by_team_counts_open_items_past_due(user):
    incident = incident_with(5)
    ops, web, idle = make_team(name="Ops"), make_team(name="Web"), make_team(name="Idle")
    for team, due, status in [
        (web, TODAY - dt.timedelta(days=9), "open"),
        (ops, TODAY - dt.timedelta(days=2), "open"),
        (ops, TODAY - dt.timedelta(days=30), "in_progress"),
        (ops, TODAY - dt.timedelta(days=90), "done"),  # done: not overdue
        (web, TODAY, "open"),  # due today: not yet overdue
        (idle, None, "open"),
    ]:
        make_action_item(incident, team=team, due=due, status=status)
    rows = overdue_by_team(facts_for(user))
    assert [(r["team__name"], r["n"], r["oldest"]) for r in rows] == [
        ("Ops", 2, TODAY - dt.timedelta(days=30)),
        ("Web", 1, TODAY - dt.timedelta(days=9)),
    ]
    assert rows[0]["team__slug"] == ops.slug


def test_a_long_range_reads_related_rows_by_subquery(user, monkeypatch):
    """Past ID_LIST_LIMIT incidents the related rows are chosen by a subquery: same figures."""
    service = make_service(name="checkout", slug="checkout")
    for minutes in (3, 6):
        incident = incident_with(minutes, services=[service], teams=[make_team()])
        make_factor(incident, category="capacity")
        make_action_item(incident, status="open", due=TODAY - dt.timedelta(days=1))
    make_action_item(make_incident(status=Incident.Status.DRAFT), status="open")  # not counted
    by_list = facts_for(user)
    monkeypatch.setattr(metrics, "ID_LIST_LIMIT", 1)
    by_subquery = facts_for(user)
    assert sum(group[-2] for group in by_list.item_groups) == 2
    assert sorted(by_list.tallies) == [
        ("both", "capacity", service.pk, 2),
        ("category", "capacity", None, 2),
        ("service", None, service.pk, 2),
    ]
    for name in ("incidents", "item_groups", "tallies"):
        assert sorted(getattr(by_subquery, name)) == sorted(getattr(by_list, name)), name


def test_filters_by_team_service_and_dates(user):
    team = make_team(slug="payments")
    service = make_service(slug="checkout")
    incident_with(5, teams=[team], day=dt.date(2026, 5, 1))
    incident_with(5, services=[service], day=dt.date(2026, 5, 2))
    incident_with(5, day=dt.date(2026, 1, 2))
    assert report_for(user, team="payments")["total"] == 1
    assert report_for(user, service="checkout")["total"] == 1
    assert report_for(user, since=dt.date(2026, 5, 1), until=dt.date(2026, 5, 1))["total"] == 1
    assert report_for(user)["total"] == 3


def test_only_what_the_reader_may_see(user):
    incident_with(5, visibility=Incident.Visibility.PEOPLE)
    incident_with(5)
    assert report_for(make_user())["total"] == 1


def test_takeaways_read_the_figures(user):
    for minutes in (2, 4, 6, 8, 100):
        make_factor(incident_with(minutes, severity="SEV1"), category="monitoring")
    lines = report_for(user)["takeaways"]
    assert lines[0] == "5 incidents in this range, 5 of them SEV1 or SEV2."
    assert lines[1] == "Half were detected within 6 min; one in ten took longer than 1 h 3 min."
    assert "monitoring & alerting gap, in 5 incidents" in lines[-1]


def test_page_full_and_partial(client_logged_in):
    """Charts come with a title, a text alternative and their data table; htmx gets #report."""
    for minutes in (2, 4, 6):
        make_factor(incident_with(minutes, day=timezone.localdate() - dt.timedelta(days=3)))
    body = client_logged_in.get("/metrics/").content.decode()
    assert body.count("<svg") >= 4
    assert body.count("<desc") == body.count("<svg")
    assert "median 4 min" in body
    assert "Data: durations" in body and "Data: incidents per month" in body
    partial = client_logged_in.get("/metrics/?team=nope", headers={"HX-Request": "true"})
    assert partial.content.decode().lstrip().startswith('<div id="report"')
    assert "HX-Request" in partial["Vary"]


@pytest.mark.parametrize("query", ["since=nope&until=2026-01-01", "since=2026-05-01&until=2026-01-01",
                                   "since=0001-01-01&until=9999-12-31",
                                   "team=%00", "service=" + "x" * 500])  # fmt: skip
def test_bad_filters_never_500(client_logged_in, query):
    assert client_logged_in.get(f"/metrics/?{query}").status_code == 200


def test_range_is_at_most_ten_years():
    since, until = date_range({"since": dt.date(1, 1, 1)}, TODAY)
    assert until == TODAY and (until - since).days <= 3653


def test_empty_page(client_logged_in):
    body = client_logged_in.get("/metrics/").content.decode()
    assert "No published incidents in this range." in body


def test_query_count_is_fixed(client_logged_in, django_assert_max_num_queries):
    team = make_team()
    service = make_service()

    def build(n):
        for i in range(n):
            incident = incident_with(i + 1, day=timezone.localdate() - dt.timedelta(days=i + 1),
                                     teams=[team], services=[service])  # fmt: skip
            make_factor(incident, category="monitoring")
            make_action_item(incident, team=team, due=timezone.localdate() - dt.timedelta(days=1))

    build(2)
    with django_assert_max_num_queries(12) as few:
        assert client_logged_in.get("/metrics/").status_code == 200
    build(20)
    with django_assert_max_num_queries(12) as many:
        assert client_logged_in.get("/metrics/").status_code == 200
    assert len(few.captured_queries) == len(many.captured_queries)
