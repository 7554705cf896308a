from django.urls import path

from . import views

# Fixed paths before `lessons/<slug>/` (lesson slugs never take "new" or "from").
urlpatterns = [
    path("lessons/", views.lesson_list, name="lesson_list"),
    path("lessons/new/", views.lesson_create, name="lesson_create"),
    path("lessons/from/<slug:slug>/", views.lessons_for_incident, name="lessons_for_incident"),
    path(
        "lessons/from/<slug:slug>/publish/",
        views.lesson_publish_from_incident,
        name="lesson_publish_from_incident",
    ),
    path("lessons/<slug:slug>/", views.lesson_detail, name="lesson_detail"),
    path("lessons/<slug:slug>/edit/", views.lesson_edit, name="lesson_edit"),
    path("lessons/<slug:slug>/useful/", views.lesson_useful, name="lesson_useful"),
]
