"""Writes of the lessons library: each a plain function, keyword-only, in one transaction."""

from django.db import IntegrityError, transaction
from django.db.models import F

from incidents.models import ContributingFactor, Incident

from .models import Lesson, UsefulMark


@transaction.atomic
def save_lesson(*, lesson: Lesson, tags=(), incidents=(), author=None) -> Lesson:
    """Create or update a lesson with its tags and incidents."""
    if lesson.pk is None and author is not None:
        lesson.author = author
    lesson.full_clean(exclude=["slug"] if not lesson.slug else None)
    lesson.save()
    lesson.tags.set(tags)
    lesson.incidents.set(incidents)
    return lesson


@transaction.atomic
def publish_from_incident(*, incident: Incident, by) -> tuple[Lesson, bool]:
    """One click from an incident's lessons section: its lessons become a library entry with the
    incident's tags and factor categories. Returns (lesson, created); a second click finds the
    lesson the first one made.

    The library is read by everyone, so the lessons of a write-up that not everyone may read
    are saved as a draft for the author to check before publishing.
    """
    existing = (
        Lesson.objects.filter(incidents=incident, kind=Lesson.Kind.FROM_INCIDENT)
        .order_by("created_at", "id")
        .first()
    )
    if existing is not None:
        return existing, False
    categories = sorted(
        set(ContributingFactor.objects.filter(incident=incident).values_list("category", flat=True))
    )
    lesson = Lesson(
        title=f"Lessons from “{incident.title}”"[:200],
        kind=Lesson.Kind.FROM_INCIDENT,
        body=incident.lessons,
        categories=categories,
        author=by,
        is_published=incident.visibility == Incident.Visibility.EVERYONE,
    )
    lesson.full_clean(exclude=["slug"])
    lesson.save()
    lesson.incidents.add(incident)
    lesson.tags.set(incident.tags.all())
    return lesson, True


def mark_useful(*, lesson: Lesson, user) -> bool:
    """Record that `user` found the lesson useful; once per person. True when newly marked."""
    try:
        with transaction.atomic():
            UsefulMark.objects.create(lesson=lesson, user=user)
            Lesson.objects.filter(pk=lesson.pk).update(useful_count=F("useful_count") + 1)
    except IntegrityError:
        return False  # already marked (perhaps by a double click racing the first)
    return True


@transaction.atomic
def unmark_useful(*, lesson: Lesson, user) -> bool:
    deleted, _ = UsefulMark.objects.filter(lesson=lesson, user=user).delete()
    if deleted:
        Lesson.objects.filter(pk=lesson.pk, useful_count__gt=0).update(
            useful_count=F("useful_count") - 1
        )
    return bool(deleted)
