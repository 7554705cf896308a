"""URLs of the review: the review page, its moves and panels, history, delete, undo, trash."""

from django.urls import path

from . import review_views as views

urlpatterns = [
    path("incidents/<slug:slug>/review/", views.review_page, name="review_page"),
    path(
        "incidents/<slug:slug>/review/<str:move>/",
        views.review_move,
        name="review_move",
    ),
    path("incidents/<slug:slug>/comments/", views.review_comments, name="review_comments"),
    path(
        "incidents/<slug:slug>/comments/<int:pk>/<str:action>/",
        views.review_comment_action,
        name="review_comment_action",
    ),
    path("incidents/<slug:slug>/people/", views.review_people, name="review_people"),
    path(
        "incidents/<slug:slug>/people/<str:role>/<int:user_id>/remove/",
        views.review_person_remove,
        name="review_person_remove",
    ),
    path("incidents/<slug:slug>/readers/", views.review_readers, name="review_readers"),
    path("incidents/<slug:slug>/meeting/", views.review_meeting, name="review_meeting"),
    path("incidents/<slug:slug>/meeting.ics", views.review_meeting_ics, name="review_meeting_ics"),
    path(
        "incidents/<slug:slug>/meeting/cancel/",
        views.review_meeting_cancel,
        name="review_meeting_cancel",
    ),
    path("incidents/<slug:slug>/history/", views.incident_history, name="incident_history"),
    path("incidents/<slug:slug>/delete/", views.incident_delete, name="incident_delete"),
    # str, not uuid: a malformed token still reaches the view (and sign-in) and gets a 404.
    path("undo/<str:token>/", views.undo_delete, name="undo"),
    path("trash/", views.trash, name="trash"),
]
