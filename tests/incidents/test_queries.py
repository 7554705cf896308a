"""Query counts are pinned so they do not grow with the data (N+1 guards)."""

import pytest

from tests.factories import make_action_item, make_entry, make_factor, make_incident, make_team

pytestmark = pytest.mark.django_db


def build(n):
    team = make_team()
    for _ in range(n):
        incident = make_incident(teams=[team])
        entries = [make_entry(incident) for _ in range(3)]
        make_factor(incident, evidence=entries[:2])
        make_action_item(incident, team=team)
    return incident


def count_queries(client, url, django_assert_max_num_queries, limit):
    with django_assert_max_num_queries(limit) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("url", ["/incidents/", "/", "/actions/", "/actions/?overdue=1"])
def test_list_pages_have_a_fixed_number_of_queries(
    client_logged_in, django_assert_max_num_queries, url
):
    build(2)
    few = count_queries(client_logged_in, url, django_assert_max_num_queries, 12)
    build(8)
    many = count_queries(client_logged_in, url, django_assert_max_num_queries, 12)
    assert few == many


def test_detail_page_has_a_fixed_number_of_queries(client_logged_in, django_assert_max_num_queries):
    small = build(1)
    few = count_queries(
        client_logged_in, small.get_absolute_url(), django_assert_max_num_queries, 10
    )
    big = make_incident()
    entries = [make_entry(big) for _ in range(25)]
    for i in range(5):
        make_factor(big, evidence=entries[i : i + 3])
    for _ in range(6):
        make_action_item(big)
    many = count_queries(
        client_logged_in, big.get_absolute_url(), django_assert_max_num_queries, 10
    )
    assert few == many
