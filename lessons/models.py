"""The lessons library: what people learned, from incidents and from near misses."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from incidents.models import FactorCategory, Incident, MarkdownFieldsMixin, Tag, unique_slug

# Paths under /lessons/ that a lesson's slug must not take.
RESERVED_SLUGS = frozenset({"new", "from"})


class LessonQuerySet(models.QuerySet):
    def published(self):
        return self.filter(is_published=True)

    def visible_to(self, user):
        """Published lessons, and the drafts this person wrote; staff see everything.

        A lesson drawn from a private incident starts as a draft (see services), and its page
        links only the incidents the reader may open.
        """
        if not user.is_authenticated:
            return self.none()
        if user.is_staff or user.is_superuser:
            return self
        return self.filter(models.Q(is_published=True) | models.Q(author=user))

    def with_category(self, category: str):
        # `categories` is a JSON list; matching its text for the quoted value works the same on
        # SQLite and PostgreSQL (JSON containment does not exist on SQLite).
        return self.filter(categories__icontains=f'"{category}"')


class Lesson(MarkdownFieldsMixin, models.Model):
    class Kind(models.TextChoices):
        FROM_INCIDENT = "from_incident", "From an incident"
        NEAR_MISS = "near_miss", "Near miss"
        STORY = "story", "War story"

    markdown_fields = ("body", "do_differently")

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.FROM_INCIDENT)
    body = models.TextField(help_text="What happened and what it taught us, told blamelessly.")
    body_html = models.TextField(blank=True, editable=False)
    do_differently = models.TextField("what I'd do differently", blank=True)
    do_differently_html = models.TextField(blank=True, editable=False)
    incidents = models.ManyToManyField(Incident, blank=True, related_name="lesson_entries")
    tags = models.ManyToManyField(Tag, blank=True, related_name="lessons")
    categories = models.JSONField(
        default=list, blank=True, help_text=f"Factor categories: {', '.join(FactorCategory.values)}"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="lessons",
    )  # fmt: skip
    is_published = models.BooleanField(default=True)
    useful_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LessonQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at"], name="lesson_created"),
            models.Index(fields=["-useful_count", "-created_at"], name="lesson_useful"),
            models.Index(fields=["kind", "-created_at"], name="lesson_kind_created"),
            models.Index(fields=["is_published", "-created_at"], name="lesson_published_created"),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("lesson_detail", args=[self.slug])

    @property
    def category_labels(self) -> list[str]:
        labels = dict(FactorCategory.choices)
        return [labels[c] for c in self.categories if c in labels]

    def can_edit(self, user) -> bool:
        return user.is_authenticated and (user.is_staff or self.author_id == user.pk)

    def save(self, *args, **kwargs):
        self.render_markdown_fields()
        if not self.slug:
            base = slugify(self.title)[:90] or "lesson"
            if base in RESERVED_SLUGS:
                base = f"{base}-lesson"
            self.slug = unique_slug(Lesson, base, max_length=100)
        super().save(*args, **kwargs)


class UsefulMark(models.Model):
    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="useful_marks")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["lesson", "user"], name="useful_once_per_user")
        ]

    def __str__(self):
        return f"{self.user} found “{self.lesson}” useful"
