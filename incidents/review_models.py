"""Models of the review workflow: review comments, the review meeting, the trash that makes every
delete undoable, review notices (e-mail), the role permissions, and edit history.

Imported at the end of models.py, so the incident models above already exist when this runs.

Edit history uses django-simple-history (registered at the bottom of this module): one
`Historical<Model>` table per tracked model, a row per save or delete with who, when and why,
and `Historical<Model>_<m2m>` tables for the many-to-many fields that matter (authors,
reviewers, readers, evidence…). `incidents.review.incident_history` turns those rows into the
per-field diff shown at /incidents/<slug>/history/.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history import register as register_history
from simple_history.models import HistoricalRecords

from .models import (
    ActionItem,
    Answer,
    ContributingFactor,
    Incident,
    MarkdownFieldsMixin,
    TimelineEntry,
)

__all__ = [
    "IncidentRoles",
    "ReviewComment",
    "ReviewMeeting",
    "ReviewNotice",
    "TrackedHistory",
    "TrashEntry",
]

TRASH_DAYS = 30


class IncidentRoles(Incident):
    """No table of its own: a proxy that carries the permissions of the review roles.

    The groups "Authors", "Reviewers" and "Staff" (made by migration 0004 and by
    `incidents.review.ensure_roles`) hold these together with the usual model permissions.
    Who is author or reviewer of one write-up is data on the incident (`authors`, `reviewers`);
    the permissions say what a person may do everywhere.
    """

    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = "review role"
        permissions = [
            ("review_incident", "Can be requested as a reviewer of write-ups"),
            ("manage_any_incident", "Can act as author and reviewer on every write-up"),
            ("restore_any_trash", "Can restore anything from the trash"),
        ]


class ReviewCommentQuerySet(models.QuerySet):
    def threads(self):
        """Top-level comments (each one starts a thread)."""
        return self.filter(parent__isnull=True)

    def unresolved(self):
        return self.threads().filter(resolved_at__isnull=True)


class ReviewComment(MarkdownFieldsMixin, models.Model):
    """A reviewer's (or author's) remark on a write-up or on one part of it.

    Threads are one level deep: a reply points at the comment that started the thread, and
    resolving the thread resolves the conversation.
    """

    class Anchor(models.TextChoices):
        INCIDENT = "incident", "The whole write-up"
        SUMMARY = "summary", "Summary"
        IMPACT = "impact", "Impact"
        NARRATIVE = "narrative", "What happened"
        TIMELINE_ENTRY = "timeline_entry", "A timeline entry"
        FACTOR = "factor", "A contributing factor"
        ACTION_ITEM = "action_item", "An action item"
        WENT_WELL = "went_well", "What went well"
        LUCKY = "lucky", "Where we got lucky"
        LESSONS = "lessons", "Lessons"

    # The anchors that point at a row, and the field holding that row.
    TARGETS = {
        Anchor.TIMELINE_ENTRY: "timeline_entry",
        Anchor.FACTOR: "factor",
        Anchor.ACTION_ITEM: "action_item",
    }
    # Where each section anchor lives on the incident page.
    SECTION_IDS = {
        Anchor.INCIDENT: "",
        Anchor.SUMMARY: "summary",
        Anchor.IMPACT: "impact",
        Anchor.NARRATIVE: "narrative",
        Anchor.WENT_WELL: "went-well",
        Anchor.LUCKY: "lucky",
        Anchor.LESSONS: "lessons",
    }
    markdown_fields = ("body",)

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="review_comments")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies"
    )
    anchor = models.CharField(max_length=20, choices=Anchor.choices, default=Anchor.INCIDENT)
    timeline_entry = models.ForeignKey(
        TimelineEntry, null=True, blank=True, on_delete=models.CASCADE,
        related_name="review_comments",
    )  # fmt: skip
    factor = models.ForeignKey(
        ContributingFactor, null=True, blank=True, on_delete=models.CASCADE,
        related_name="review_comments",
    )  # fmt: skip
    action_item = models.ForeignKey(
        ActionItem, null=True, blank=True, on_delete=models.CASCADE,
        related_name="review_comments",
    )  # fmt: skip
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    body = models.TextField(max_length=10_000)
    body_html = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip

    objects = ReviewCommentQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["incident", "parent", "resolved_at"], name="comment_open"),
        ]
        constraints = [
            # Each anchor that names a row has exactly that row, and no other anchor has one.
            models.CheckConstraint(
                condition=(
                    Q(anchor="timeline_entry", timeline_entry__isnull=False)
                    | (~Q(anchor="timeline_entry") & Q(timeline_entry__isnull=True))
                ),
                name="comment_timeline_anchor",
            ),
            models.CheckConstraint(
                condition=(
                    Q(anchor="factor", factor__isnull=False)
                    | (~Q(anchor="factor") & Q(factor__isnull=True))
                ),
                name="comment_factor_anchor",
            ),
            models.CheckConstraint(
                condition=(
                    Q(anchor="action_item", action_item__isnull=False)
                    | (~Q(anchor="action_item") & Q(action_item__isnull=True))
                ),
                name="comment_action_anchor",
            ),
        ]

    def __str__(self):
        return f"Comment on {self.anchor_label}: {self.body[:60]}"

    def save(self, *args, **kwargs):
        self.render_markdown_fields()
        super().save(*args, **kwargs)

    @property
    def is_resolved(self) -> bool:
        return self.resolved_at is not None

    @property
    def target(self):
        field = self.TARGETS.get(self.anchor)
        return getattr(self, field) if field else None

    @property
    def anchor_label(self) -> str:
        target = self.target
        if isinstance(target, TimelineEntry):
            at = timezone.localtime(target.at)
            return f"Timeline {at:%d %b %H:%M} · {target.get_kind_display()}"
        if isinstance(target, ContributingFactor):
            return f"Factor · {target.get_category_display()}"
        if isinstance(target, ActionItem):
            return f"Action item · {target.title}"
        return self.get_anchor_display() if self.anchor != self.Anchor.INCIDENT else "Write-up"

    @property
    def anchor_fragment(self) -> str:
        """The element id on the incident page this comment is about ('' for the page)."""
        if self.anchor == self.Anchor.TIMELINE_ENTRY:
            return f"entry-{self.timeline_entry_id}"
        if self.anchor == self.Anchor.FACTOR:
            return f"factor-{self.factor_id}"
        if self.anchor == self.Anchor.ACTION_ITEM:
            return f"action-{self.action_item_id}"
        return self.SECTION_IDS.get(self.anchor, "")


def new_meeting_uid() -> str:
    return f"{uuid.uuid4()}@debrief"


class ReviewMeeting(MarkdownFieldsMixin, models.Model):
    """The review meeting of one write-up. Its `uid` never changes, so calendar programs update
    the event they already have; `sequence` goes up with every change that is sent out."""

    markdown_fields = ("agenda",)

    incident = models.OneToOneField(
        Incident, on_delete=models.CASCADE, related_name="review_meeting"
    )
    starts_at = models.DateTimeField("starts")
    duration = models.PositiveSmallIntegerField(
        "length (minutes)", default=60,
        validators=[MinValueValidator(15), MaxValueValidator(8 * 60)],
    )  # fmt: skip
    location = models.CharField(
        max_length=300, blank=True, help_text="A room, or the link of the video call."
    )
    facilitator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    attendees = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="review_meetings"
    )
    agenda = models.TextField(blank=True)
    agenda_html = models.TextField(blank=True, editable=False)
    uid = models.CharField(max_length=100, unique=True, default=new_meeting_uid, editable=False)
    sequence = models.PositiveIntegerField(default=0, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at"]

    def __str__(self):
        return f"Review meeting {self.starts_at:%d %b %Y %H:%M}"

    def save(self, *args, **kwargs):
        self.render_markdown_fields()
        super().save(*args, **kwargs)

    @property
    def ends_at(self) -> dt.datetime:
        return self.starts_at + dt.timedelta(minutes=self.duration)

    def restored_from_trash(self, *, by) -> None:
        """Undo of a cancellation: attendees get the invitation again, as a newer version."""
        from .review import meeting_restored

        meeting_restored(meeting=self, by=by)


class ReviewNotice(models.Model):
    """One e-mail about the review to one person. Made in the same transaction as the change it
    announces, sent by a task after the commit. The unique `key` names the event, so a retried
    change or task never makes a second notice; `sent_at` is claimed before the mail goes out,
    so a retried task never sends it twice."""

    class Kind(models.TextChoices):
        REVIEW_REQUESTED = "review_requested", "Review requested"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        PUBLISHED = "published", "Approved and published"
        MEETING = "meeting", "Review meeting"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=200, unique=True)
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    subject = models.CharField(max_length=300)
    body = models.TextField()
    ics = models.TextField(blank=True, help_text="A calendar invitation to attach, if any.")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["sent_at"], name="review_notice_unsent")]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.recipient}: {self.subject}"


class TrashEntryQuerySet(models.QuerySet):
    def restorable(self, now: dt.datetime | None = None):
        now = now or timezone.now()
        return self.filter(
            restored_at__isnull=True, deleted_at__gte=now - dt.timedelta(days=TRASH_DAYS)
        )

    def expired(self, now: dt.datetime | None = None):
        now = now or timezone.now()
        return self.filter(deleted_at__lt=now - dt.timedelta(days=TRASH_DAYS))


class TrashEntry(models.Model):
    """Something deleted from the UI, kept whole for 30 days so it can be put back.

    `payload` holds every row the delete removed (the object, everything that cascaded with
    it, and many-to-many links), serialised with Django's serialisers. See `incidents.undo`.
    The incident is referred to by id, not by a foreign key: the trash outlives it.
    """

    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    model_label = models.CharField(max_length=100)
    object_pk = models.CharField(max_length=64)
    label = models.CharField(max_length=300)
    incident_pk = models.BigIntegerField(null=True, blank=True)
    incident_title = models.CharField(max_length=200, blank=True)
    incident_slug = models.CharField(max_length=100, blank=True)
    private = models.BooleanField(
        default=False,
        help_text="From a private write-up (listed teams or named people): only its restorers "
        "and superusers see it, not all staff.",
    )
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    restorers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="+",
        help_text="Who may restore it besides staff (superusers only, when private): the "
        "authors of its write-up when it was deleted, and the person who deleted it.",
    )
    next_url = models.CharField(max_length=500, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    deleted_at = models.DateTimeField(default=timezone.now)
    restored_at = models.DateTimeField(null=True, blank=True)
    restored_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip

    objects = TrashEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-deleted_at", "-id"]
        verbose_name_plural = "trash entries"
        indexes = [
            models.Index(fields=["deleted_at"], name="trash_deleted_at"),
            models.Index(fields=["incident_pk", "deleted_at"], name="trash_incident"),
        ]

    def __str__(self):
        return f"{self.label} (deleted {self.deleted_at:%Y-%m-%d %H:%M})"

    @property
    def expires_at(self) -> dt.datetime:
        return self.deleted_at + dt.timedelta(days=TRASH_DAYS)

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at


class TrackedHistory(HistoricalRecords):
    """simple-history's records, remembered per model so that a change written with a queryset
    `update()` (a lifecycle move, a versioned save) can still be recorded: see
    `incidents.review.record_history`."""

    by_model: dict[type[models.Model], TrackedHistory] = {}

    def finalize(self, sender, **kwargs):
        super().finalize(sender, **kwargs)
        if sender is self.cls:
            TrackedHistory.by_model[sender] = self


def _track(model, *, html=(), extra_excluded=(), m2m=()):
    register_history(
        model,
        app="incidents",
        records_class=TrackedHistory,
        # The rendered HTML is derived from the Markdown source; storing it twice adds nothing.
        excluded_fields=[*html, *extra_excluded],
        m2m_fields=list(m2m),
        user_related_name="+",
    )


_track(
    Incident,
    html=[f"{name}_html" for name in Incident.markdown_fields],
    extra_excluded=["updated_at", "version"],
    m2m=["authors", "reviewers", "teams", "services", "tags", "visible_teams", "visible_users"],
)
_track(TimelineEntry, html=["text_html"])
_track(ContributingFactor, html=["description_html"], m2m=["evidence"])
_track(
    ActionItem,
    html=["description_html", "evidence_html"],
    extra_excluded=["updated_at", "version"],
    m2m=["addresses"],
)
_track(Answer, html=["text_html"], extra_excluded=["updated_at"])
_track(ReviewComment, html=["body_html"])
_track(ReviewMeeting, html=["agenda_html"], extra_excluded=["updated_at"], m2m=["attendees"])
