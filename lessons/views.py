"""The lessons library: list and search, read, write, mark useful, and the incident page's
lessons panel with its one-click "publish these lessons"."""

import re

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from incidents.models import Incident, Tag
from incidents.search import HIT_CLOSE, HIT_OPEN, highlight, parse_query
from incidents.viewutils import get_visible_incident, query_string_without_page, wants_partial

from . import services
from .forms import LessonFilterForm, LessonForm
from .models import Lesson, UsefulMark

PAGE_SIZE = 20
SEARCHED_FIELDS = ("title", "body", "do_differently")


def search_lessons(queryset, text: str):
    """The same query syntax as incident search (words, "phrases", -exclusions, prefix*), over
    title, story and "what I'd do differently". The library holds hundreds of lessons, not
    tens of thousands, so substring matching is quick enough and needs no index."""
    query = parse_query(text)
    for negative, terms in ((False, query.include), (True, query.exclude)):
        for term in terms:
            words = " ".join(term.tokens)
            condition = Q.create([(f"{name}__icontains", words) for name in SEARCHED_FIELDS],
                                 connector=Q.OR)  # fmt: skip
            queryset = queryset.exclude(condition) if negative else queryset.filter(condition)
    return queryset, query


def excerpt(text: str, words: list[str], width: int = 90):
    """The part of `text` around the first searched word, words marked, escaped."""
    if not words or not text:
        return None
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)),
                         re.IGNORECASE)  # fmt: skip
    first = pattern.search(text)
    if first is None:
        return None
    start = max(0, first.start() - width // 2)
    end = min(len(text), first.end() + width)
    piece = pattern.sub(lambda m: f"{HIT_OPEN}{m.group(0)}{HIT_CLOSE}", text[start:end])
    return highlight(("…" if start else "") + piece + ("…" if end < len(text) else ""))


@require_GET
@vary_on_headers("HX-Request")
def lesson_list(request):
    form = LessonFilterForm(request.GET)
    form.is_valid()
    data = form.cleaned_data
    lessons = Lesson.objects.visible_to(request.user).select_related("author")
    lessons, query = search_lessons(lessons, data.get("q", ""))
    if data.get("kind"):
        lessons = lessons.filter(kind=data["kind"])
    if data.get("tag"):
        lessons = lessons.filter(tags__slug=data["tag"])
    if data.get("category"):
        lessons = lessons.with_category(data["category"])
    incident = None
    if data.get("incident"):
        incident = (
            Incident.objects.visible_to(request.user)
            .only("id", "slug", "title")
            .filter(slug=data["incident"])
            .first()
        )
        lessons = lessons.filter(incidents=incident) if incident else lessons.none()
    if data.get("sort") == "useful":
        lessons = lessons.order_by("-useful_count", "-created_at", "-id")
    else:
        lessons = lessons.order_by("-created_at", "-id")
    page = Paginator(lessons.prefetch_related("tags"), PAGE_SIZE).get_page(request.GET.get("page"))
    marked = set(
        UsefulMark.objects.filter(user=request.user, lesson__in=list(page.object_list)).values_list(
            "lesson_id", flat=True
        )
    )
    for lesson in page.object_list:
        lesson.marked_useful = lesson.pk in marked
        lesson.excerpt = excerpt(f"{lesson.body}\n{lesson.do_differently}", query.words)
    context = {
        "form": form,
        "page": page,
        "query_string": query_string_without_page(request),
        "tags": Tag.objects.only("name", "slug"),
        "incident": incident,
        "kinds": Lesson.Kind.choices,
    }
    template = "lessons/list.html" + ("#lesson-results" if wants_partial(request) else "")
    return render(request, template, context)


def _visible_lesson(request, slug, queryset=None):
    queryset = queryset if queryset is not None else Lesson.objects.all()
    lesson = get_object_or_404(queryset, slug=slug)
    if not Lesson.objects.visible_to(request.user).filter(pk=lesson.pk).exists():
        raise Http404("No lesson matches the given query.")
    return lesson


@require_GET
def lesson_detail(request, slug):
    lesson = _visible_lesson(
        request, slug, Lesson.objects.select_related("author").prefetch_related("tags")
    )
    # A lesson may be drawn from a private incident: link only what this reader may open.
    visible = Incident.objects.visible_to(request.user).filter(lesson_entries=lesson)
    return render(
        request,
        "lessons/detail.html",
        {
            "lesson": lesson,
            "incidents": visible.only("slug", "title", "severity", "started_at"),
            "marked_useful": UsefulMark.objects.filter(lesson=lesson, user=request.user).exists(),
            "can_edit": lesson.can_edit(request.user),
        },
    )


@require_POST
@vary_on_headers("HX-Request")
def lesson_useful(request, slug):
    """Mark (or, with `undo`, unmark) a lesson as useful: once per person."""
    lesson = _visible_lesson(request, slug)
    if request.POST.get("undo"):
        services.unmark_useful(lesson=lesson, user=request.user)
    else:
        services.mark_useful(lesson=lesson, user=request.user)
    if not wants_partial(request):
        return redirect(lesson)
    lesson.refresh_from_db(fields=["useful_count"])
    marked = UsefulMark.objects.filter(lesson=lesson, user=request.user).exists()
    return render(
        request, "lessons/detail.html#useful", {"lesson": lesson, "marked_useful": marked}
    )


def _edit(request, lesson):
    form = LessonForm(request.POST or None, instance=lesson, user=request.user)
    if request.method == "POST" and form.is_valid():
        incidents = form.cleaned_data["incident_slugs"]
        if lesson.pk:
            # Keep links to incidents this editor may not read; they are not theirs to drop.
            readable = Incident.objects.visible_to(request.user).values("pk")
            incidents += list(lesson.incidents.exclude(pk__in=readable))
        saved = services.save_lesson(
            lesson=form.save(commit=False), tags=form.cleaned_data["tags"], incidents=incidents,
            author=request.user,
        )  # fmt: skip
        messages.success(request, "Lesson saved." if saved.is_published else "Draft saved.")
        if wants_partial(request):
            return HttpResponseClientRedirect(saved.get_absolute_url())
        return redirect(saved)
    return render(request, "lessons/form.html", {"form": form, "lesson": lesson})


@require_http_methods(["GET", "POST"])
def lesson_create(request):
    kind = request.GET.get("kind")
    kind = kind if kind in Lesson.Kind.values else Lesson.Kind.STORY
    return _edit(request, Lesson(author=request.user, kind=kind))


@require_http_methods(["GET", "POST"])
def lesson_edit(request, slug):
    lesson = get_object_or_404(Lesson, slug=slug)
    if not lesson.can_edit(request.user):
        raise PermissionDenied("Only the lesson's author may edit it.")
    return _edit(request, lesson)


@require_GET
@vary_on_headers("HX-Request")
def lessons_for_incident(request, slug):
    """The incident page's lessons panel (htmx); a plain visit goes to the filtered library."""
    incident = get_visible_incident(request, slug)
    if not wants_partial(request):
        return redirect(f"{reverse('lesson_list')}?incident={incident.slug}")
    lessons = (
        Lesson.objects.visible_to(request.user)
        .filter(incidents=incident)
        .select_related("author")
        .order_by("-useful_count", "-created_at")[:10]
    )
    lessons = list(lessons)
    can_publish = (
        incident.can_edit(request.user)
        and incident.is_published
        and bool(incident.lessons.strip())
        and not any(lesson.kind == Lesson.Kind.FROM_INCIDENT for lesson in lessons)
    )
    return render(
        request,
        "lessons/list.html#incident-lessons",
        {"incident": incident, "lessons": lessons, "can_publish": can_publish},
    )


@require_POST
def lesson_publish_from_incident(request, slug):
    """The one click: an incident's lessons section becomes a lesson in the library."""
    incident = get_visible_incident(request, slug)
    if not incident.can_edit(request.user):
        raise PermissionDenied("Only the write-up's authors and reviewers may publish its lessons.")
    if not incident.is_published or not incident.lessons.strip():
        messages.error(request, "Only a published write-up with lessons written can be published.")
        return redirect(incident)
    lesson, created = services.publish_from_incident(incident=incident, by=request.user)
    if not created:
        messages.info(request, "These lessons are already in the library.")
    elif lesson.is_published:
        messages.success(
            request, "Published to the lessons library. Add what you'd do differently."
        )
    else:
        messages.warning(
            request,
            "Saved as a draft: this write-up is not visible to everyone. Check that the lesson "
            "tells nothing private, then publish it.",
        )
    if wants_partial(request):
        return HttpResponseClientRedirect(lesson.get_absolute_url())
    return redirect(lesson)
