import datetime as dt

import pytest
from django.core.management import call_command

from incidents.demo import seed_demo
from incidents.models import ActionItem, Incident, TimelineEntry

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 27)


def snapshot():
    return (
        list(
            Incident.objects.order_by("slug").values_list(
                "slug", "severity", "status", "started_at"
            )
        ),
        list(
            TimelineEntry.objects.order_by("incident__slug", "position").values_list("kind", "text")
        ),
        list(
            ActionItem.objects.order_by("incident__slug", "id").values_list(
                "title", "due", "status"
            )
        ),
    )


def test_seed_is_deterministic_for_a_seed(django_db_blocker):
    """The same seed and day give the same data (after wiping the first run)."""
    seed_demo(incidents=25, seed=3, today=TODAY)
    first = snapshot()
    Incident.objects.all().delete()
    seed_demo(incidents=25, seed=3, today=TODAY)
    assert snapshot() == first


def test_different_seeds_differ():
    seed_demo(incidents=25, seed=1, today=TODAY)
    first = snapshot()
    Incident.objects.all().delete()
    seed_demo(incidents=25, seed=2, today=TODAY)
    assert snapshot() != first


def test_seed_is_realistic():
    seed_demo(incidents=80, seed=1)
    assert Incident.objects.count() == 80
    assert set(Incident.objects.values_list("severity", flat=True)) == {
        "SEV1",
        "SEV2",
        "SEV3",
        "SEV4",
    }
    assert Incident.objects.filter(status="draft").exists()
    factor_counts, item_counts = set(), set()
    for incident in Incident.objects.prefetch_related(
        "timeline_entries", "factors__evidence", "action_items"
    ):
        entries = incident.timeline_entries.all()
        assert 5 <= len(entries) <= 25
        factor_counts.add(len(incident.factors.all()))
        item_counts.add(len(incident.action_items.all()))
        for factor in incident.factors.all():
            # Evidence is always a timeline entry of the same incident.
            assert {e.incident_id for e in factor.evidence.all()} <= {incident.pk}
        incident.clean()  # milestones in order
    # 1 to 5 factors and 1 to 6 action items per incident, and not the same number everywhere.
    assert min(factor_counts) >= 1 and max(factor_counts) <= 5 and len(factor_counts) > 1
    assert min(item_counts) >= 1 and max(item_counts) <= 6 and len(item_counts) > 1
    assert TimelineEntry.objects.filter(kind="status_update").exists()
    assert ActionItem.objects.overdue().exists()
    assert ActionItem.objects.due_within(7).exists()
    assert ActionItem.objects.filter(status="done").exists()


def test_seed_adds_to_existing_data_with_unique_slugs():
    seed_demo(incidents=30, seed=1, today=TODAY)
    seed_demo(incidents=30, seed=1, today=TODAY)
    assert Incident.objects.count() == 60
    assert Incident.objects.values("slug").distinct().count() == 60


def test_seed_links_factors_to_evidence():
    seed_demo(incidents=20, seed=5, today=TODAY)
    from incidents.models import ContributingFactor

    assert ContributingFactor.objects.filter(evidence__isnull=False).exists()


def test_seed_command_if_empty_does_nothing_on_a_full_database(capsys):
    call_command("seed_demo", "--incidents", "5")
    call_command("seed_demo", "--incidents", "5", "--if-empty")
    assert Incident.objects.count() == 5
    assert "not seeding" in capsys.readouterr().out


def test_demo_login_created_with_debug(settings):
    settings.DEBUG = True
    call_command("demo_login")
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.get(username="demo").check_password("demo")


def test_demo_login_refused_without_debug(settings):
    settings.DEBUG = False
    call_command("demo_login")
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="demo").exists()
