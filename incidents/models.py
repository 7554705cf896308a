"""Incidents and everything a write-up is made of.

A write-up describes conditions of the system and the organisation. People appear as
authors, owners and reviewers — never as a contributing factor.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections import defaultdict
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import connection, models
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.text import slugify

from .markdown import render_markdown

_SLUG_MARK = "slug-placeholder-0"


@functools.cache
def _slug_url_pattern(name: str) -> str:
    return reverse(name, args=[_SLUG_MARK])


def slug_url(name: str, slug: str) -> str:
    """`reverse(name, args=[slug])`, reversed once per URL name: list pages link every row,
    chip and filter option, and a hundred reverses cost a few milliseconds a page."""
    return _slug_url_pattern(name).replace(_SLUG_MARK, slug, 1)


_ID_MARK = "987654321987654321"


@functools.cache
def _id_url_pattern(name: str) -> str:
    return reverse(name, args=[int(_ID_MARK)])


def id_url(name: str, pk: int) -> str:
    """`reverse(name, args=[pk])` for URLs that take one integer, reversed once per name."""
    return _id_url_pattern(name).replace(_ID_MARK, str(int(pk)), 1)


class Link(NamedTuple):
    name: str
    url: str
    slug: str = ""


_LINK_KINDS = {
    # attribute set on each incident: (through table, its foreign key, the page's URL name)
    "service_links": ("services", "service", "service_detail"),
    "team_links": ("teams", "team", "team_detail"),
    "tag_links": ("tags", "tag", "tag_detail"),
}


def sql_ids(ids) -> str:
    """Integer ids read from the database, as a comma-separated list to write into SQL as it
    is: passing hundreds of them as parameters cost ≈2 ms of Python per query for the ORM to
    prepare. `int()` keeps anything but a number out of the SQL."""
    return ",".join(str(int(pk)) for pk in ids)


def sql_texts(values) -> str:
    """Choice values of the code (such as "draft"), never user input, as quoted SQL literals.
    Written into SQL rather than passed as parameters so that PostgreSQL plans a prepared
    statement once: with `status IN ($1, $2, $3)` its generic plan cannot know how few rows
    the drafts are, so it planned the hidden-incident queries anew on every run (≈0.3 to 0.5 ms
    each). Anything but lower-case words is refused."""
    values = [str(value) for value in values]
    if not all(re.fullmatch(r"[a-z_]+", value) for value in values):
        raise ValueError(f"not a choice value: {values!r}")
    return ", ".join(f"'{value}'" for value in values)


@functools.cache
def _links_sql(kinds: tuple[str, ...]) -> str:
    """The union of the link tables for `kinds`, with `{ids}` where the incident ids go: written
    once per process, because the ORM compiling the same union cost ≈0.7 ms a page."""
    selects = []
    for kind in kinds:
        m2m, target, _ = _LINK_KINDS[kind]
        through = getattr(Incident, m2m).through
        link, incident = through._meta.get_field(target), through._meta.get_field("incident")
        selects.append(
            f'SELECT \'{kind}\', l."{incident.column}", t."name", t."slug"'
            f' FROM "{through._meta.db_table}" l JOIN "{link.related_model._meta.db_table}" t'
            f' ON t."id" = l."{link.column}" WHERE l."{incident.column}" IN ({{ids}})'
        )
    return " UNION ALL ".join(selects)


def attach_links(incidents, *, tags: bool = False) -> list:
    """Give each incident row `service_links` and `team_links` (and `tag_links` with `tags`):
    name, URL and slug, by name, in one flat query. prefetch_related built a model instance
    per link and its through row: 6.4 ms for the 36 rows of the home page, against 0.8 ms (and
    one round trip, not two); on the incident page three prefetches cost ≈4 ms. The query is
    SQL written once per process (`_links_sql`): as an ORM union it took 1.5 ms a list page,
    as SQL 0.45 ms."""
    incidents = list(incidents)
    kinds = [kind for kind in _LINK_KINDS if tags or kind != "tag_links"]
    rows_by_id = defaultdict(list)
    for incident in incidents:
        for kind in kinds:
            setattr(incident, kind, [])
        rows_by_id[incident.pk].append(incident)
    if not rows_by_id:
        return incidents
    with connection.cursor() as cursor:
        cursor.execute(_links_sql(tuple(kinds)).replace("{ids}", sql_ids(rows_by_id)))
        rows = cursor.fetchall()
    for kind, incident_id, name, slug in sorted(rows, key=lambda row: row[2]):
        link = Link(name, slug_url(_LINK_KINDS[kind][2], slug), slug)
        for incident in rows_by_id[incident_id]:
            getattr(incident, kind).append(link)
    return incidents


class MarkdownFieldsMixin:
    """Renders each Markdown source field into its stored `<name>_html` twin on save."""

    markdown_fields: tuple[str, ...] = ()

    def render_markdown_fields(self) -> None:
        for name in self.markdown_fields:
            setattr(self, f"{name}_html", render_markdown(getattr(self, name)))


def unique_slug(model, base: str, *, max_length: int = 80, exclude_pk=None) -> str:
    base = (base[:max_length].strip("-")) or "incident"
    slug, n = base, 2
    queryset = model.objects.all()
    if exclude_pk is not None:
        queryset = queryset.exclude(pk=exclude_pk)
    while queryset.filter(slug=slug).exists():
        suffix = f"-{n}"
        slug = base[: max_length - len(suffix)].strip("-") + suffix
        n += 1
    return slug


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="led_teams",
        help_text="Receives the weekly digest of escalated action items.",
    )  # fmt: skip
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return slug_url("team_detail", self.slug)

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slugify(self.name)[:100]
        super().save(*args, **kwargs)


class Service(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="services"
    )
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return slug_url("service_detail", self.slug)

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slugify(self.name)[:100]
        super().save(*args, **kwargs)


class Tag(models.Model):
    name = models.CharField(max_length=60, unique=True)
    slug = models.SlugField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return slug_url("tag_detail", self.slug)

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slugify(self.name)[:60]
        super().save(*args, **kwargs)


class Profile(models.Model):
    """Per-person preferences; created on demand by `Profile.for_user`."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    timezone = models.CharField(
        max_length=64, default="UTC", help_text="Times are entered and shown in this zone."
    )
    email_reminders = models.BooleanField(
        default=True, help_text="E-mail me about my action items that are due or overdue."
    )

    def __str__(self):
        return f"Preferences of {self.user}"

    @classmethod
    def for_user(cls, user) -> Profile:
        profile, _ = cls.objects.get_or_create(user=user)
        return profile


class Severity(models.TextChoices):
    SEV1 = "SEV1", "SEV1 — critical"
    SEV2 = "SEV2", "SEV2 — major"
    SEV3 = "SEV3", "SEV3 — minor"
    SEV4 = "SEV4", "SEV4 — low"


SEVERITY_MEANINGS = {
    Severity.SEV1: "Critical: the product is down or data is lost for many customers.",
    Severity.SEV2: "Major: a core feature is broken or badly degraded for many customers.",
    Severity.SEV3: "Minor: a feature is degraded for some customers; a workaround exists.",
    Severity.SEV4: "Low: little or no customer impact; a near miss worth learning from.",
}


class IncidentQuerySet(models.QuerySet):
    def published(self):
        return self.filter(status=Incident.Status.PUBLISHED)

    def visible_to(self, user):
        """What a person may open: published incidents whose visibility admits them, and the
        ones they write or review. Staff also open every write-up visible to everyone, drafts
        included; a private one (listed teams or named people) only when it lists them, like
        anyone else. Only superusers see everything.

        EXISTS subqueries rather than joins, so no DISTINCT is needed and pagination stays cheap.
        """
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        return self.filter(self.readable_q(user))

    @staticmethod
    def readable_q(user) -> Q:
        """The condition of `visible_to` for a signed-in person who is not a superuser, usable
        inside other filters and negated ("the ones this person may not read")."""
        named = Exists(
            Incident.authors.through.objects.filter(incident_id=OuterRef("pk"), user_id=user.pk)
        ) | Exists(
            Incident.reviewers.through.objects.filter(incident_id=OuterRef("pk"), user_id=user.pk)
        )
        chosen_person = Exists(
            Incident.visible_users.through.objects.filter(
                incident_id=OuterRef("pk"), user_id=user.pk
            )
        )
        chosen_team = Exists(
            Incident.visible_teams.through.objects.filter(
                incident_id=OuterRef("pk"), team__members=user.pk
            )
        )
        # Cheap column tests first: both databases stop at the first true term, so the common
        # published-to-everyone row never runs the EXISTS lookups (5 ms → 2 ms for a count over
        # 10,000 incidents on SQLite).
        public = Q(status=Incident.Status.PUBLISHED, visibility=Incident.Visibility.EVERYONE)
        if user.is_staff:
            public = Q(visibility=Incident.Visibility.EVERYONE)
        shared = (
            Q(status=Incident.Status.PUBLISHED)
            & ~Q(visibility=Incident.Visibility.EVERYONE)
            & (chosen_person | (Q(visibility=Incident.Visibility.TEAMS) & chosen_team))
        )
        return public | named | shared

    def for_list(self):
        """The columns a list row shows; give the rows their links with `attach_links`."""
        return self.only(
            "id", "slug", "title", "severity", "status", "started_at", "resolved_at",
            "detected_at", "mitigated_at", "summary_html", "created_at",
        )  # fmt: skip


class Incident(MarkdownFieldsMixin, models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        PUBLISHED = "published", "Published"

    class Visibility(models.TextChoices):
        EVERYONE = "everyone", "Everyone"
        TEAMS = "teams", "Only chosen teams"
        PEOPLE = "people", "Only chosen people"

    MILESTONES = ("started_at", "detected_at", "acknowledged_at", "mitigated_at", "resolved_at")
    markdown_fields = ("summary", "impact", "narrative", "went_well", "lucky", "lessons")

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    severity = models.CharField(max_length=4, choices=Severity.choices, default=Severity.SEV3)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)

    summary = models.TextField(blank=True, help_text="Two or three sentences: what happened.")
    summary_html = models.TextField(blank=True, editable=False)
    impact = models.TextField(
        blank=True, help_text="Who and what was affected, for how long, and how badly."
    )
    impact_html = models.TextField(blank=True, editable=False)
    customer_visible = models.BooleanField(null=True, blank=True)
    data_lost = models.BooleanField(null=True, blank=True)
    narrative = models.TextField(blank=True, help_text="The story, as it looked from the inside.")
    narrative_html = models.TextField(blank=True, editable=False)
    went_well = models.TextField("what went well", blank=True)
    went_well_html = models.TextField(blank=True, editable=False)
    lucky = models.TextField("where we got lucky", blank=True)
    lucky_html = models.TextField(blank=True, editable=False)
    lessons = models.TextField(blank=True)
    lessons_html = models.TextField(blank=True, editable=False)

    started_at = models.DateTimeField("started", null=True, blank=True)
    detected_at = models.DateTimeField("detected", null=True, blank=True)
    acknowledged_at = models.DateTimeField("acknowledged", null=True, blank=True)
    mitigated_at = models.DateTimeField("mitigated", null=True, blank=True)
    resolved_at = models.DateTimeField("resolved", null=True, blank=True)

    services = models.ManyToManyField(Service, blank=True, related_name="incidents")
    teams = models.ManyToManyField(Team, blank=True, related_name="incidents")
    tags = models.ManyToManyField(Tag, blank=True, related_name="incidents")
    authors = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="authored_incidents"
    )
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="reviewing_incidents"
    )

    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.EVERYONE
    )
    visible_teams = models.ManyToManyField(Team, blank=True, related_name="+")
    visible_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # Optimistic concurrency: every save of the write-up says which version it was based on.
    version = models.PositiveIntegerField(default=1, editable=False)

    objects = IncidentQuerySet.as_manager()

    # Set on some rows by search (`search_title`, `snippets`) and "on this day" (`years_ago`).
    # Defaults keep the list template's lookups cheap: a failed attribute lookup makes Django's
    # template engine call dir() on the instance, ≈0.15 ms each, 75 times on a list page.
    search_title = None
    snippets = ()
    years_ago = None
    # Set on list rows by `attach_links`.
    service_links = ()
    team_links = ()

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-started_at"], name="incident_status_started"),
            models.Index(fields=["severity", "-started_at"], name="incident_severity_started"),
            # Status and visibility ride along so a deep page tests visibility from the index
            # without reading each skipped row (page 200 of 10,000: 9.5 ms → 0.7 ms on SQLite).
            models.Index(
                fields=["-started_at", "-id", "status", "visibility"], name="incident_started"
            ),
            models.Index(fields=["-created_at"], name="incident_created"),
            # visible_to() reads visibility and status for every row a non-staff person scans.
            models.Index(fields=["visibility", "status"], name="incident_visibility_status"),
            # Who may not read what (`actions.hidden_incident_ids`) from the index alone.
            models.Index(fields=["status", "visibility", "id"], name="incident_status_visibility"),
            # "Recently published" on the home page reads ten rows in order instead of sorting.
            models.Index(fields=["status", "-published_at"], name="incident_status_published"),
            # Home's "my drafts" walks the unpublished write-ups latest change first and stops
            # at ten of mine, instead of reading them all to sort (PostgreSQL at 10,000
            # incidents: 1.2 → 0.3 ms). The condition is the query's own IN list, so both
            # databases see that the index covers it.
            models.Index(
                fields=["-updated_at"],
                name="incident_unpublished_updated",
                condition=models.Q(status__in=["draft", "in_review", "changes_requested"]),
            ),
            # /metrics/ reads the durations of a year of published incidents from the index
            # alone instead of ≈900 wide rows (SQLite at 10,000 incidents: 3.1 → 2.0 ms).
            models.Index(
                fields=[
                    "status",
                    "started_at",
                    "id",
                    "severity",
                    "detected_at",
                    "acknowledged_at",
                    "mitigated_at",
                    "resolved_at",
                ],
                name="incident_durations",
            ),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return slug_url("incident_detail", self.slug)

    @property
    def severity_meaning(self) -> str:
        return SEVERITY_MEANINGS.get(self.severity, "")

    def build_slug(self) -> str:
        day = (self.started_at or self.created_at or timezone.now()).date()
        return unique_slug(
            Incident, f"{slugify(self.title)[:80]}-{day:%Y-%m-%d}", max_length=100,
            exclude_pk=self.pk,
        )  # fmt: skip

    def clean(self):
        errors = {}
        previous_name = None
        previous_value = None
        for name in self.MILESTONES:
            value = getattr(self, name)
            if value is None:
                continue
            if previous_value is not None and value < previous_value:
                label = self._meta.get_field(name).verbose_name
                previous_label = self._meta.get_field(previous_name).verbose_name
                errors[name] = ValidationError(
                    f"{label.capitalize()} time must not be before {previous_label} time.",
                    code="milestone_order",
                )
            else:
                previous_name, previous_value = name, value
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        self.render_markdown_fields()
        if not self.slug:
            self.slug = self.build_slug()
        super().save(*args, **kwargs)

    def save_if_version(self, expected_version: int, fields: list[str]) -> bool:
        """Write `fields` only if nobody saved since `expected_version`; bumps the version.

        A conditional UPDATE, not read-then-write, so two concurrent saves can never both win.
        """
        self.render_markdown_fields()
        values = {name: getattr(self, name) for name in fields}
        for name in fields:
            if name in self.markdown_fields:
                values[f"{name}_html"] = getattr(self, f"{name}_html")
        values["updated_at"] = timezone.now()
        updated = Incident.objects.filter(pk=self.pk, version=expected_version).update(
            version=F("version") + 1, **values
        )
        if updated:
            self.version = expected_version + 1
            self.updated_at = values["updated_at"]
        return bool(updated)

    def _between(self, start: str, end: str) -> dt.timedelta | None:
        a, b = getattr(self, start), getattr(self, end)
        return b - a if a and b else None

    @property
    def time_to_detect(self):
        return self._between("started_at", "detected_at")

    @property
    def time_to_acknowledge(self):
        return self._between("detected_at", "acknowledged_at")

    @property
    def time_to_mitigate(self):
        return self._between("started_at", "mitigated_at")

    @property
    def time_to_resolve(self):
        return self._between("started_at", "resolved_at")

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    @cached_property
    def people(self) -> dict[str, list]:
        """Authors and reviewers in one query (pages show both and check both)."""
        User = get_user_model()
        authors = Incident.authors.through._meta.db_table
        reviewers = Incident.reviewers.through._meta.db_table
        # IN over each link table's (incident, user) index: an OR of two joins made SQLite
        # scan every user against both tables (≈130 ms with 10,000 incidents). Written as SQL:
        # the same test with the ORM's Exists and subqueries took ≈1 ms more to build.
        linked = RawSQL(
            f'SELECT "user_id" FROM "{authors}" WHERE "incident_id" = %s '
            f'UNION SELECT "user_id" FROM "{reviewers}" WHERE "incident_id" = %s',
            (self.pk, self.pk),
        )
        role = 'EXISTS (SELECT 1 FROM "{}" WHERE "incident_id" = %s AND "user_id" = "{}"."id")'
        rows = (
            User.objects.filter(pk__in=linked)
            .annotate(
                is_author=RawSQL(
                    role.format(authors, User._meta.db_table), (self.pk,), models.BooleanField()
                ),
                is_reviewer=RawSQL(
                    role.format(reviewers, User._meta.db_table), (self.pk,), models.BooleanField()
                ),
            )
            .order_by("username")
        )
        people = {"authors": [], "reviewers": []}
        for person in rows:
            if person.is_author:
                people["authors"].append(person)
            if person.is_reviewer:
                people["reviewers"].append(person)
        return people

    def detail_parts(self) -> dict:
        """What the incident page shows besides this row: its service, team and tag links, the
        timeline, the factors with their evidence, the action items and the guided answers.
        Plain queries, not prefetch_related: its machinery cost ≈1.3 ms per relation here, and
        the evidence needs only its link rows, matched to the timeline already read."""
        attach_links([self], tags=True)
        timeline = list(self.timeline_entries.all())
        factors = list(self.factors.all())
        evidence = defaultdict(set)  # factor id → ids of its timeline entries
        if factors:
            for factor_id, entry_id in ContributingFactor.evidence.through.objects.filter(
                contributingfactor_id__in=[factor.pk for factor in factors]
            ).values_list("contributingfactor_id", "timelineentry_id"):
                evidence[factor_id].add(entry_id)
        for factor in factors:  # in timeline order, as the evidence is listed
            factor.evidence_entries = [e for e in timeline if e.pk in evidence[factor.pk]]
        return {
            "timeline": timeline,
            "factors": factors,
            "action_items": list(self.action_items.select_related("team", "owner")),
            "answers": list(self.answers.select_related("question")),
        }

    def forget_people(self) -> None:
        """Call after changing authors or reviewers on this instance."""
        self.__dict__.pop("people", None)

    def is_author(self, user) -> bool:
        return user.is_authenticated and any(a.pk == user.pk for a in self.people["authors"])

    def is_reviewer(self, user) -> bool:
        return user.is_authenticated and any(r.pk == user.pk for r in self.people["reviewers"])

    def can_edit(self, user) -> bool:
        """Authors, reviewers and superusers; staff too, unless the write-up is private."""
        if not user.is_authenticated:
            return False
        if user.is_superuser or self.is_author(user) or self.is_reviewer(user):
            return True
        return user.is_staff and self.visibility == self.Visibility.EVERYONE

    def can_view(self, user) -> bool:
        """Same rule as `IncidentQuerySet.visible_to`, answered from prefetched authors and
        reviewers where possible so the detail page needs no extra query."""
        if not user.is_authenticated:
            return False
        if user.is_superuser or self.is_author(user) or self.is_reviewer(user):
            return True
        if user.is_staff and self.visibility == self.Visibility.EVERYONE:
            return True
        if not self.is_published:
            return False
        if self.visibility == self.Visibility.EVERYONE:
            return True
        return Incident.objects.visible_to(user).filter(pk=self.pk).exists()


class TimelineEntry(MarkdownFieldsMixin, models.Model):
    class Kind(models.TextChoices):
        DETECTION = "detection", "Detection"
        ALERT = "alert", "Alert"
        ACTION = "action", "Action"
        DECISION = "decision", "Decision"
        STATUS_UPDATE = "status_update", "Status update"
        ESCALATION = "escalation", "Escalation"
        COMMUNICATION = "communication", "Communication"
        MITIGATION = "mitigation", "Mitigation"
        RESOLUTION = "resolution", "Resolution"
        OTHER = "other", "Other"

    markdown_fields = ("text",)

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="timeline_entries"
    )
    at = models.DateTimeField()
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ACTION)
    text = models.TextField()
    text_html = models.TextField(blank=True, editable=False)
    # Breaks ties between entries at the same minute; the author can reorder them.
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at", "position", "id"]
        verbose_name_plural = "timeline entries"
        indexes = [models.Index(fields=["incident", "at", "position"], name="timeline_incident_at")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_kind_display()}"

    def save(self, *args, **kwargs):
        self.render_markdown_fields()
        super().save(*args, **kwargs)


class FactorCategory(models.TextChoices):
    CHANGE = "change", "Change / deploy"
    CONFIGURATION = "configuration", "Configuration"
    CAPACITY = "capacity", "Capacity"
    DEPENDENCY = "dependency", "Dependency"
    MONITORING = "monitoring", "Monitoring & alerting gap"
    TOOLING = "tooling", "Tooling"
    DOCUMENTATION = "documentation", "Documentation / runbook"
    PROCESS = "process", "Process"
    COMMUNICATION = "communication", "Communication"
    WORKLOAD = "workload", "Workload & fatigue"
    DESIGN = "design", "Design"
    TESTING = "testing", "Testing gap"
    UNKNOWN = "unknown", "Unknown"


class ContributingFactor(MarkdownFieldsMixin, models.Model):
    """A condition of the system or the organisation that made the incident possible or worse."""

    markdown_fields = ("description",)

    # Indexed by factor_incident_category, which starts with it.
    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="factors", db_index=False
    )
    category = models.CharField(max_length=20, choices=FactorCategory.choices)
    description = models.TextField()
    description_html = models.TextField(blank=True, editable=False)
    evidence = models.ManyToManyField(TimelineEntry, blank=True, related_name="factors")
    accepted_risk = models.BooleanField(
        default=False, help_text="We choose not to act on this factor, and say why."
    )
    accepted_risk_reason = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        indexes = [
            models.Index(fields=["category"], name="factor_category"),
            # /metrics/ reads the categories of a year's incidents from the index alone.
            models.Index(fields=["incident", "category"], name="factor_incident_category"),
        ]

    def __str__(self):
        return f"{self.get_category_display()}: {self.description[:60]}"

    def save(self, *args, **kwargs):
        self.render_markdown_fields()
        super().save(*args, **kwargs)


class ActionItemQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status__in=ActionItem.OPEN_STATUSES)

    def overdue(self, today: dt.date | None = None):
        today = today or timezone.localdate()
        return self.open().filter(due__lt=today)

    def due_within(self, days: int, today: dt.date | None = None):
        today = today or timezone.localdate()
        return self.open().filter(due__gte=today, due__lte=today + dt.timedelta(days=days))

    def with_related(self):
        return self.select_related("incident", "team", "owner")


class ActionItem(MarkdownFieldsMixin, models.Model):
    class Kind(models.TextChoices):
        PREVENT = "prevent", "Prevent"
        DETECT = "detect", "Detect"
        MITIGATE = "mitigate", "Mitigate"
        PROCESS = "process", "Process"
        LEARN = "learn", "Learn"

    class Priority(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        WONT_DO = "wont_do", "Won't do"

    OPEN_STATUSES = (Status.OPEN, Status.IN_PROGRESS)
    markdown_fields = ("description", "evidence")

    # Indexed by action_follow_through, which starts with it.
    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="action_items", db_index=False
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    description_html = models.TextField(blank=True, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PREVENT)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="action_items")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="action_items",
    )  # fmt: skip
    due = models.DateField("due date", null=True, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.MEDIUM)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    completed_at = models.DateTimeField(null=True, blank=True)
    addresses = models.ManyToManyField(
        ContributingFactor, blank=True, related_name="action_items",
        help_text="The contributing factors this item addresses.",
    )  # fmt: skip
    tracker_url = models.URLField("tracker link", max_length=500, blank=True)
    evidence = models.TextField(
        blank=True, help_text="What changed (a link) and, for prevent/detect, how it was verified."
    )
    evidence_html = models.TextField(blank=True, editable=False)
    wont_do_reason = models.TextField(blank=True)
    verified_effective_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1, editable=False)

    objects = ActionItemQuerySet.as_manager()

    class Meta:
        ordering = ["due", "id"]
        indexes = [
            # The item's incident rides along so the dashboard leaves out the items of write-ups
            # someone may not read from the index alone (PostgreSQL: 5 ms → 1 ms a query).
            models.Index(fields=["status", "due", "id", "incident"], name="action_status_due_id"),
            # Home's "my items first" (`actions.my_open_item_ids`) reads these alone, never
            # the item rows; the team pages and the owner filter use their first columns.
            models.Index(
                fields=["team", "status", "due", "id", "incident", "owner"],
                name="action_team_open_items",
            ),
            models.Index(
                fields=["owner", "status", "due", "id", "incident"], name="action_owner_open_items"
            ),
            models.Index(fields=["priority", "status"], name="action_priority_status"),
            # What became of the items of a year's incidents (/metrics/), from the index alone.
            models.Index(
                fields=[
                    "incident",
                    "status",
                    "due",
                    "team",
                    "verified_effective_at",
                    "created_at",
                    "completed_at",
                ],
                name="action_follow_through",
            ),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return id_url("action_detail", self.pk)

    # The dashboard row links each of these for 25 rows: reversed once per name, not per row.
    @property
    def edit_url(self):
        return id_url("action_edit", self.pk)

    @property
    def verify_url(self):
        return id_url("action_verify", self.pk)

    @property
    def row_url(self):
        return id_url("action_row", self.pk)

    def clean(self):
        if self.tracker_url:
            URLValidator(schemes=["http", "https"])(self.tracker_url)

    def save(self, *args, **kwargs):
        self.render_markdown_fields()
        if self.status == self.Status.DONE and self.completed_at is None:
            self.completed_at = timezone.now()
        super().save(*args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    def is_overdue(self, today: dt.date | None = None) -> bool:
        today = today or timezone.localdate()
        return self.is_open and self.due is not None and self.due < today

    def days_overdue(self, today: dt.date | None = None) -> int:
        today = today or timezone.localdate()
        return (today - self.due).days if self.is_overdue(today) else 0


class GuidedQuestion(models.Model):
    """A prompt of the "what happened, from the inside" step; editable in the admin."""

    prompt = models.CharField(max_length=300)
    help_text = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.prompt


class Answer(MarkdownFieldsMixin, models.Model):
    markdown_fields = ("text",)

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(GuidedQuestion, on_delete=models.PROTECT, related_name="answers")
    text = models.TextField(blank=True)
    text_html = models.TextField(blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["question__position", "question_id"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "question"], name="one_answer_per_question")
        ]

    def __str__(self):
        return f"{self.incident}: {self.question}"

    def save(self, *args, **kwargs):
        self.render_markdown_fields()
        super().save(*args, **kwargs)


class BlameDismissal(models.Model):
    """An author said a blame finding does not apply; it stays hidden for that exact phrase."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="dismissals")
    field = models.CharField(max_length=60)
    rule = models.CharField(max_length=60)
    phrase = models.CharField(max_length=200)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "field", "rule", "phrase"], name="one_dismissal_per_phrase"
            )
        ]

    def __str__(self):
        return f"{self.rule} dismissed for “{self.phrase}”"


class Reminder(models.Model):
    """One reminder about one action item to one person. The unique constraint is what makes
    `send_reminders` safe to re-run: a reminder is recorded before its e-mail goes out."""

    class Kind(models.TextChoices):
        DUE_SOON = "due_soon", "Due soon"
        OVERDUE = "overdue", "Overdue"
        ESCALATION = "escalation", "Escalation"

    action_item = models.ForeignKey(ActionItem, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    due = models.DateField(help_text="The item's due date when the reminder was made.")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reminders"
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["action_item", "kind", "due", "recipient"], name="one_reminder_per_kind"
            )
        ]
        indexes = [models.Index(fields=["sent_at"], name="reminder_unsent")]

    def __str__(self):
        return f"{self.get_kind_display()} reminder to {self.recipient} about {self.action_item}"


# Feature models live in their own modules; importing them here registers them with the app.
from .action_models import *  # noqa: E402, F403
from .review_models import *  # noqa: E402, F403
from .search_models import *  # noqa: E402, F403
