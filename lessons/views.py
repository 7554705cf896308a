from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from incidents.models import Incident

from .models import Lesson


@require_GET
def lesson_list(request):
    lessons = Lesson.objects.published().select_related("author")
    query = request.GET.get("q", "").strip()[:200]
    if query:
        lessons = lessons.filter(Q(title__icontains=query) | Q(body__icontains=query))
    if request.GET.get("sort") == "useful":
        lessons = lessons.order_by("-useful_count", "-created_at")
    page = Paginator(lessons, 20).get_page(request.GET.get("page"))
    return render(request, "lessons/list.html", {"page": page, "query": query})


@require_GET
def lesson_detail(request, slug):
    lesson = get_object_or_404(
        Lesson.objects.published().select_related("author").prefetch_related("tags"),
        slug=slug,
    )
    # A lesson may be drawn from a private incident: link only what this reader may open.
    visible = Incident.objects.visible_to(request.user).filter(lesson_entries=lesson)
    return render(
        request,
        "lessons/detail.html",
        {"lesson": lesson, "incidents": visible.only("slug", "title")},
    )
