"""Plain factory functions: each makes one valid object, overridable by keyword."""

import datetime as dt
import itertools

from django.contrib.auth import get_user_model
from django.utils import timezone

from incidents.models import (
    ActionItem,
    ContributingFactor,
    Incident,
    Service,
    Tag,
    Team,
    TimelineEntry,
)

_counter = itertools.count(1)


def make_user(**overrides):
    n = next(_counter)
    fields = {"username": f"user{n}", "email": f"user{n}@example.com", "first_name": f"User{n}"}
    password = overrides.pop("password", "pw-for-tests-123")
    teams = overrides.pop("teams", ())
    fields.update(overrides)
    user = get_user_model().objects.create_user(password=password, **fields)
    for team in teams:
        team.members.add(user)
    return user


def make_team(**overrides):
    n = next(_counter)
    fields = {"name": f"Team {n}", "slug": f"team-{n}"}
    fields.update(overrides)
    return Team.objects.create(**fields)


def make_service(**overrides):
    n = next(_counter)
    fields = {"name": f"service-{n}", "slug": f"service-{n}"}
    fields.update(overrides)
    return Service.objects.create(**fields)


def make_tag(**overrides):
    n = next(_counter)
    fields = {"name": f"tag-{n}", "slug": f"tag-{n}"}
    fields.update(overrides)
    return Tag.objects.create(**fields)


def make_incident(**overrides):
    n = next(_counter)
    started = overrides.pop("started_at", timezone.now() - dt.timedelta(days=3))
    authors = overrides.pop("authors", ())
    reviewers = overrides.pop("reviewers", ())
    teams = overrides.pop("teams", ())
    services = overrides.pop("services", ())
    tags = overrides.pop("tags", ())
    fields = {
        "title": f"Checkout outage {n}",
        "severity": "SEV2",
        "status": Incident.Status.PUBLISHED,
        "summary": "Checkout failed for some customers.",
        "impact": "About **30%** of checkouts failed.",
        "started_at": started,
        "detected_at": started + dt.timedelta(minutes=6),
        "mitigated_at": started + dt.timedelta(minutes=40),
        "resolved_at": started + dt.timedelta(minutes=47),
    }
    fields.update(overrides)
    incident = Incident.objects.create(**fields)
    incident.authors.add(*authors)
    incident.reviewers.add(*reviewers)
    incident.teams.add(*teams)
    incident.services.add(*services)
    incident.tags.add(*tags)
    return incident


def make_entry(incident, **overrides):
    fields = {
        "at": incident.started_at + dt.timedelta(minutes=next(_counter) % 50),
        "kind": TimelineEntry.Kind.ACTION,
        "text": "Rolled back the release.",
    }
    fields.update(overrides)
    return TimelineEntry.objects.create(incident=incident, **fields)


def make_factor(incident, **overrides):
    evidence = overrides.pop("evidence", ())
    fields = {"category": "monitoring", "description": "The alert needed a long baseline."}
    fields.update(overrides)
    factor = ContributingFactor.objects.create(incident=incident, **fields)
    factor.evidence.add(*evidence)
    return factor


def make_action_item(incident=None, **overrides):
    incident = incident or make_incident()
    team = overrides.pop("team", None) or make_team()
    fields = {
        "title": "Alert on canary error rate",
        "kind": ActionItem.Kind.DETECT,
        "due": timezone.localdate() + dt.timedelta(days=14),
        "priority": ActionItem.Priority.HIGH,
    }
    fields.update(overrides)
    return ActionItem.objects.create(incident=incident, team=team, **fields)
