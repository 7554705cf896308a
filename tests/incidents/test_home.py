"""The home page's look back: "On this day" and one older write-up a week to re-read."""

import datetime as dt

import pytest
from django.utils import timezone

from incidents.metrics import on_this_day, weekly_reread
from incidents.models import Incident
from tests.factories import make_incident, make_user

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 15)


def started(day):
    return timezone.make_aware(dt.datetime.combine(day, dt.time(12)))


def test_on_this_day_shows_this_week_in_earlier_years(user):
    """A year ago (± 3 days) and further back; not last month, not a fortnight off."""
    make_incident(title="A year ago", started_at=started(dt.date(2025, 6, 17)))
    make_incident(title="Three years ago", started_at=started(dt.date(2023, 6, 13)))
    make_incident(title="Last month", started_at=started(dt.date(2026, 5, 15)))
    make_incident(title="A fortnight off", started_at=started(dt.date(2025, 6, 1)))
    make_incident(
        title="Private", started_at=started(dt.date(2025, 6, 15)),
        visibility=Incident.Visibility.PEOPLE,
    )  # fmt: skip
    found = on_this_day(user, TODAY)
    assert [(i.title, i.years_ago) for i in found] == [("A year ago", 1), ("Three years ago", 3)]


def test_on_this_day_on_29_february():
    assert on_this_day(make_user(), dt.date(2028, 2, 29)) == []


def test_reread_is_stable_within_a_week_and_changes_between_weeks(user):
    """Deterministic per week: the same pick all week, not the same pick every week."""
    for n in range(12):
        make_incident(title=f"Old {n}", started_at=started(dt.date(2024, 1, 1) + dt.timedelta(days=n)),
                      lessons="Worth keeping.")  # fmt: skip
    monday = dt.date(2026, 6, 15)
    week = {weekly_reread(user, monday + dt.timedelta(days=d)).pk for d in range(7)}
    assert len(week) == 1
    picks = {weekly_reread(user, monday + dt.timedelta(weeks=w)).pk for w in range(8)}
    assert len(picks) > 1


def test_reread_skips_recent_and_unreadable_write_ups(user):
    make_incident(title="Recent", started_at=started(TODAY - dt.timedelta(days=30)))
    make_incident(
        title="Private", started_at=started(dt.date(2024, 1, 1)),
        visibility=Incident.Visibility.PEOPLE,
    )  # fmt: skip
    make_incident(title="Draft", started_at=started(dt.date(2024, 1, 1)), status="draft")
    make_incident(title="Old", started_at=started(dt.date(2024, 2, 1)))
    assert {weekly_reread(user, TODAY + dt.timedelta(weeks=w)).title for w in range(5)} == {"Old"}


def test_reread_none_when_nothing_is_old_enough(user):
    make_incident(started_at=started(TODAY - dt.timedelta(days=10)))
    assert weekly_reread(user, TODAY) is None


def test_home_shows_the_look_back(client_logged_in):
    now = timezone.now()
    make_incident(title="Anniversary outage", started_at=now - dt.timedelta(days=365))
    make_incident(title="Old and wise", started_at=now - dt.timedelta(days=400), lessons="L")
    body = client_logged_in.get("/").content.decode()
    assert "On this day" in body and "Anniversary outage" in body and "1 year ago" in body
    assert "Re-read this week" in body and "Old and wise" in body


def test_home_empty_look_back(client_logged_in):
    body = client_logged_in.get("/").content.decode()
    assert "Nothing happened this week in earlier years" in body
    assert "one comes back here each week" in body


def test_home_query_count_is_fixed(client_logged_in, user, django_assert_max_num_queries):
    now = timezone.now()

    def build(n):
        for i in range(n):
            make_incident(authors=[user], status=Incident.Status.DRAFT)
            make_incident(reviewers=[user], status=Incident.Status.IN_REVIEW)
            make_incident(started_at=now - dt.timedelta(days=365 + i % 3), lessons="L")

    build(2)
    with django_assert_max_num_queries(12) as few:
        assert client_logged_in.get("/").status_code == 200
    build(12)
    with django_assert_max_num_queries(12) as many:
        assert client_logged_in.get("/").status_code == 200
    assert len(few.captured_queries) == len(many.captured_queries)


def test_team_action_items_of_private_write_ups_stay_hidden(client_logged_in, user):
    """My team's action item on a write-up I may not read is not listed (nor its title)."""
    from tests.factories import make_action_item, make_team

    team = make_team()
    team.members.add(user)
    private = make_incident(visibility=Incident.Visibility.PEOPLE)
    make_action_item(private, team=team, title="Rotate the leaked key")
    make_action_item(make_incident(), team=team, title="Add the canary alert")
    body = client_logged_in.get("/").content.decode()
    assert "Add the canary alert" in body
    assert "Rotate the leaked key" not in body


def test_drafts_index_covers_the_home_query():
    """The partial index is only used while its condition is the query's own status list."""
    from django.db.models import Q

    from incidents import actions

    index = next(i for i in Incident._meta.indexes if i.name == "incident_unpublished_updated")
    assert index.condition == Q(status__in=actions.UNPUBLISHED)


def test_my_write_ups_splits_drafts_and_reviews_newest_change_first(user):
    """Unpublished ones I author, and the ones in review I review: only mine, at most ten each,
    the latest change first; one I both write and review is in both lists."""
    from incidents.browse_views import HOME_WRITE_UPS, _my_write_ups

    other = make_user()
    now = timezone.now()
    for status in ["draft", "in_review", "changes_requested", "published"]:
        make_incident(title=f"Mine {status}", status=status, authors=[user])
    make_incident(title="Someone else's draft", status="draft", authors=[other])
    both = make_incident(title="Both", status="in_review", authors=[user], reviewers=[user])
    make_incident(title="Reviewing", status="in_review", reviewers=[user])
    make_incident(title="Reviewed draft", status="draft", reviewers=[user])
    for n in range(HOME_WRITE_UPS + 2):
        make_incident(title=f"Old draft {n}", status="draft", authors=[user])
    # Order by last change, not by creation: the first one made is changed last.
    Incident.objects.filter(title__startswith="Old draft").update(
        updated_at=now - dt.timedelta(days=3)
    )
    Incident.objects.filter(title="Mine draft").update(updated_at=now + dt.timedelta(minutes=1))

    drafts, reviews = _my_write_ups(user)
    titles = [i.title for i in drafts]
    assert len(drafts) == HOME_WRITE_UPS
    assert titles[0] == "Mine draft"
    assert {"Mine in_review", "Mine changes_requested", "Both"} <= set(titles)
    assert "Mine published" not in titles and "Someone else's draft" not in titles
    assert [i.updated_at for i in drafts] == sorted((i.updated_at for i in drafts), reverse=True)
    assert {i.title for i in reviews} == {"Both", "Reviewing"}
    assert both.pk in {i.pk for i in drafts} & {i.pk for i in reviews}
