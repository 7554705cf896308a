"""Deterministic, realistic demo data, built with bulk inserts so 10,000 incidents take seconds.

The same seed on the same day gives the same data. Dates are relative to today so that some
action items are always overdue, some due this week, and the home page has recent incidents.
"""

from __future__ import annotations

import datetime as dt
import random
from functools import lru_cache

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from . import demo_stories as stories
from .markdown import render_markdown
from .models import (
    ActionItem,
    ContributingFactor,
    Incident,
    Profile,
    Service,
    Tag,
    Team,
    TimelineEntry,
)

BATCH = 1000


@lru_cache(maxsize=4096)
def _html(text: str) -> str:
    # Stories repeat, so caching the rendering keeps a 10,000-incident seed fast.
    return render_markdown(text)


def _ensure_reference_data():
    User = get_user_model()
    teams = {}
    for name, slug, description in stories.TEAMS:
        teams[slug], _ = Team.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description}
        )
    services = {}
    for name, team_slug in stories.SERVICES.items():
        services[name], _ = Service.objects.get_or_create(
            slug=name, defaults={"name": name, "team": teams[team_slug]}
        )
    people = {}
    unusable = make_password(None)
    for index, (username, first, last) in enumerate(stories.PEOPLE):
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": f"{username}@example.com",
                      "password": unusable},
        )  # fmt: skip
        people[username] = user
        if created:
            team = teams[stories.TEAMS[index % len(stories.TEAMS)][1]]
            team.members.add(user)
            Profile.objects.get_or_create(user=user)
    demo, created = User.objects.get_or_create(
        username="demo",
        defaults={"first_name": "Demo", "last_name": "Engineer", "email": "demo@example.com",
                  "password": unusable, "is_staff": True},
    )  # fmt: skip
    if created:
        teams["payments"].members.add(demo)
        teams["platform"].members.add(demo)
        Profile.objects.get_or_create(user=demo)
    for team in teams.values():
        if team.lead_id is None:
            team.lead = team.members.order_by("username").first()
            team.save(update_fields=["lead"])
    tag_names = sorted({tag for story in stories.STORIES for tag in story["tags"]})
    tags = {}
    for name in tag_names:
        tags[name], _ = Tag.objects.get_or_create(slug=slugify(name), defaults={"name": name})
    return teams, services, people, demo, tags


def _team_members(teams):
    members = {}
    for slug, team in teams.items():
        members[slug] = list(team.members.order_by("username"))
    return members


@transaction.atomic
def seed_demo(*, incidents: int = 60, seed: int = 1, today: dt.date | None = None) -> dict:
    rng = random.Random(seed)
    today = today or timezone.now().date()
    now = timezone.now()
    teams, services, people, demo, tags = _ensure_reference_data()
    members = _team_members(teams)
    existing_slugs = set(Incident.objects.values_list("slug", flat=True))

    # Spread incidents over time: a few per week for small sets, ten years for 10,000.
    span_days = max(120, min(3650, incidents * 4))
    incident_rows, plans = [], []
    for number in range(incidents):
        story = stories.STORIES[rng.randrange(len(stories.STORIES))]
        days_ago = rng.randrange(1, span_days) if number else 2
        started = timezone.make_aware(
            dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(0))
        ) + dt.timedelta(minutes=rng.randrange(0, 24 * 60))
        title = rng.choice(story["titles"])
        base_slug = f"{slugify(title)[:80]}-{started:%Y-%m-%d}"
        slug, n = base_slug, 2
        while slug in existing_slugs:
            slug, n = f"{base_slug}-{n}", n + 1
        existing_slugs.add(slug)
        roll = rng.random()
        if days_ago < 20 and roll < 0.35:
            status = Incident.Status.DRAFT
        elif days_ago < 30 and roll < 0.55:
            status = Incident.Status.IN_REVIEW
        elif roll < 0.03:
            status = Incident.Status.CHANGES_REQUESTED
        elif roll < 0.06:
            status = Incident.Status.DRAFT
        else:
            status = Incident.Status.PUBLISHED
        timeline = list(story["timeline"])
        end_minutes = timeline[-1][0]
        target_len = rng.randint(max(5, len(timeline)), 25)
        while len(timeline) < target_len:
            kind, text = rng.choice(stories.FILLER_UPDATES)
            timeline.append((rng.randrange(1, max(2, end_minutes)), kind, text))
        timeline.sort(key=lambda row: row[0])

        def at(kind_name, default=None, timeline=timeline, started=started):
            for minutes, kind, _ in timeline:
                if kind == kind_name:
                    return started + dt.timedelta(minutes=minutes)
            return default

        detected = at("detection", started + dt.timedelta(minutes=5))
        mitigated = at("mitigation")
        resolved = at("resolution", started + dt.timedelta(minutes=end_minutes))
        mitigated = mitigated if mitigated and detected <= mitigated <= resolved else None
        fields = {name: story[name] for name in ("summary", "impact", "narrative", "went_well",
                                                 "lucky", "lessons")}  # fmt: skip
        incident = Incident(
            slug=slug, title=title, severity=story["severity"], status=status,
            started_at=started, detected_at=detected,
            acknowledged_at=detected + dt.timedelta(minutes=rng.randint(1, 6)) if detected else None,
            mitigated_at=mitigated, resolved_at=resolved,
            customer_visible=story["severity"] in ("SEV1", "SEV2") or rng.random() < 0.5,
            data_lost="data-loss" in story["tags"],
            created_at=started + dt.timedelta(days=1),
            published_at=(started + dt.timedelta(days=rng.randint(3, 12))
                          if status == Incident.Status.PUBLISHED else None),
            **fields,
            **{f"{name}_html": _html(value) for name, value in fields.items()},
        )  # fmt: skip
        if incident.acknowledged_at and mitigated and incident.acknowledged_at > mitigated:
            incident.acknowledged_at = None
        incident.created_by = None
        incident_rows.append(incident)
        plans.append((story, timeline, days_ago))

    Incident.objects.bulk_create(incident_rows, batch_size=BATCH)
    if incident_rows and incident_rows[0].pk is None:
        by_slug = dict(
            Incident.objects.filter(slug__in=[i.slug for i in incident_rows]).values_list(
                "slug", "pk"
            )
        )
        for incident in incident_rows:
            incident.pk = incident.id = by_slug[incident.slug]

    m2m = {"services": [], "teams": [], "tags": [], "authors": [], "reviewers": []}
    entries, entry_owner = [], []
    for incident, (story, timeline, days_ago) in zip(incident_rows, plans, strict=True):
        for name in story["services"]:
            m2m["services"].append(
                Incident.services.through(incident_id=incident.pk, service_id=services[name].pk)
            )
        for slug in story["teams"]:
            m2m["teams"].append(
                Incident.teams.through(incident_id=incident.pk, team_id=teams[slug].pk)
            )
        for name in story["tags"]:
            m2m["tags"].append(Incident.tags.through(incident_id=incident.pk, tag_id=tags[name].pk))
        team_people = members[story["teams"][0]] or [demo]
        author = rng.choice(team_people)
        # The demo account writes and reviews a share of recent write-ups, so its home page has content.
        if days_ago < 60 and rng.random() < 0.4:
            author = demo
        authors = {author.pk}
        if rng.random() < 0.3:
            authors.add(rng.choice(list(people.values())).pk)
        for user_pk in authors:
            m2m["authors"].append(
                Incident.authors.through(incident_id=incident.pk, user_id=user_pk)
            )
        reviewer = demo if (incident.status == Incident.Status.IN_REVIEW and author != demo
                            and rng.random() < 0.6) else rng.choice(list(people.values()))  # fmt: skip
        if reviewer.pk not in authors:
            m2m["reviewers"].append(
                Incident.reviewers.through(incident_id=incident.pk, user_id=reviewer.pk)
            )
        for position, (minutes, kind, text) in enumerate(timeline):
            entries.append(TimelineEntry(
                incident_id=incident.pk, at=incident.started_at + dt.timedelta(minutes=minutes),
                kind=kind, text=text, text_html=_html(text), position=position,
            ))  # fmt: skip
            entry_owner.append(incident.pk)
    for name, rows in m2m.items():
        getattr(Incident, name).through.objects.bulk_create(rows, batch_size=BATCH)
    TimelineEntry.objects.bulk_create(entries, batch_size=BATCH)
    if entries and entries[0].pk is None:
        raise RuntimeError("The database did not return ids from bulk insert.")

    # Contributing factors and their evidence.
    entries_by_incident: dict[int, list[TimelineEntry]] = {}
    for entry in entries:
        entries_by_incident.setdefault(entry.incident_id, []).append(entry)
    factors, factor_evidence_plan = [], []
    for incident, (story, _timeline, _days_ago) in zip(incident_rows, plans, strict=True):
        chosen = story["factors"][: rng.randint(1, len(story["factors"]))]
        story_texts = [text for _, _, text in story["timeline"]]
        incident_entries = entries_by_incident[incident.pk]
        for position, (category, description, evidence_indexes) in enumerate(chosen):
            factors.append(ContributingFactor(
                incident_id=incident.pk, category=category, description=description,
                description_html=_html(description), position=position,
            ))  # fmt: skip
            wanted = {story_texts[i] for i in evidence_indexes if i < len(story_texts)}
            factor_evidence_plan.append([e.pk for e in incident_entries if e.text in wanted][:3])
    ContributingFactor.objects.bulk_create(factors, batch_size=BATCH)
    evidence_rows = [
        ContributingFactor.evidence.through(contributingfactor_id=factor.pk, timelineentry_id=pk)
        for factor, pks in zip(factors, factor_evidence_plan, strict=True)
        for pk in pks
    ]
    ContributingFactor.evidence.through.objects.bulk_create(evidence_rows, batch_size=BATCH)

    # Action items: old ones mostly done, recent ones open, some overdue, some due this week.
    factors_by_incident: dict[int, list[ContributingFactor]] = {}
    for factor in factors:
        factors_by_incident.setdefault(factor.incident_id, []).append(factor)
    items, item_factors = [], []
    for incident, (story, _timeline, days_ago) in zip(incident_rows, plans, strict=True):
        story_actions = story["actions"]
        count = rng.randint(1, min(6, max(1, len(story_actions))))
        for title, kind, priority in story_actions[:count]:
            team = teams[rng.choice(story["teams"])]
            owner = (
                rng.choice(members[team.slug])
                if members[team.slug] and rng.random() < 0.8
                else None
            )
            due = incident.started_at.date() + dt.timedelta(
                days=rng.choice([7, 14, 21, 30, 45, 60])
            )
            if days_ago < 40 and rng.random() < 0.3:
                due = today + dt.timedelta(days=rng.randint(0, 6))  # due this week
            age = (today - due).days
            if incident.status != Incident.Status.PUBLISHED:
                status = ActionItem.Status.OPEN
            elif age > 30 and rng.random() < 0.85:
                status = ActionItem.Status.DONE if rng.random() < 0.9 else ActionItem.Status.WONT_DO
            elif rng.random() < 0.25:
                status = ActionItem.Status.IN_PROGRESS
            else:
                status = ActionItem.Status.OPEN
            done = status == ActionItem.Status.DONE
            evidence = (f"Shipped in the change linked from the tracker; verified in the game day "
                        f"of {due:%d %b %Y}.") if done else ""  # fmt: skip
            completed = (timezone.make_aware(dt.datetime.combine(due, dt.time(15)))
                         - dt.timedelta(days=rng.randint(0, 5))) if done else None  # fmt: skip
            items.append(ActionItem(
                incident_id=incident.pk, title=title, kind=kind, priority=priority, team=team,
                owner=owner, due=due, status=status, completed_at=completed,
                evidence=evidence, evidence_html=_html(evidence),
                wont_do_reason="Superseded by the platform migration." if status == "wont_do" else "",
                verified_effective_at=(completed + dt.timedelta(days=14)
                                       if done and rng.random() < 0.4 and completed
                                       and completed + dt.timedelta(days=14) < now else None),
                tracker_url=f"https://tracker.example.com/browse/OPS-{rng.randint(100, 99999)}",
                created_at=incident.created_at,
            ))  # fmt: skip
            item_factors.append(factors_by_incident.get(incident.pk, [])[:1])
    ActionItem.objects.bulk_create(items, batch_size=BATCH)
    ActionItem.addresses.through.objects.bulk_create(
        [
            ActionItem.addresses.through(actionitem_id=item.pk, contributingfactor_id=factor.pk)
            for item, addressed in zip(items, item_factors, strict=True)
            for factor in addressed
        ],
        batch_size=BATCH,
    )
    _seed_lessons(rng, people, tags, incident_rows)
    return {
        "incidents": len(incident_rows),
        "timeline_entries": len(entries),
        "factors": len(factors),
        "action_items": len(items),
    }


def _seed_lessons(rng, people, tags, incident_rows):
    from lessons.models import Lesson  # lessons may import incidents; not the reverse at load

    if Lesson.objects.exists() or not incident_rows:
        return
    for title, kind, body, differently, categories in stories.LESSONS:
        lesson = Lesson(
            title=title, kind=kind, body=body, do_differently=differently, categories=categories,
            author=rng.choice(list(people.values())), useful_count=0,
        )  # fmt: skip
        lesson.save()
        if kind != "story":
            lesson.incidents.add(rng.choice(incident_rows))
