from django.urls import path

from . import write_views

# The fixed paths come before `<slug:step>/`, which would otherwise take them for a step.
urlpatterns = [
    path("incidents/new/", write_views.incident_create, name="incident_create"),
    path("incidents/new/blame/", write_views.blame_check, name="incident_blame_check_new"),
    path("incidents/<slug:slug>/edit/", write_views.incident_edit, name="incident_edit"),
    path(
        "incidents/<slug:slug>/edit/autosave/",
        write_views.autosave,
        name="incident_autosave",
    ),
    path(
        "incidents/<slug:slug>/edit/blame/",
        write_views.blame_check,
        name="incident_blame_check",
    ),
    path(
        "incidents/<slug:slug>/edit/blame/dismiss/",
        write_views.blame_dismiss,
        name="incident_blame_dismiss",
    ),
    path(
        "incidents/<slug:slug>/edit/timeline/paste/",
        write_views.timeline_paste_view,
        name="incident_timeline_paste",
    ),
    path(
        "incidents/<slug:slug>/edit/timeline/<int:pk>/move/",
        write_views.timeline_move,
        name="incident_timeline_move",
    ),
    path(
        "incidents/<slug:slug>/edit/<slug:kind>/add/",
        write_views.row_add,
        name="incident_row_add",
    ),
    path(
        "incidents/<slug:slug>/edit/<slug:kind>/<int:pk>/",
        write_views.row_edit,
        name="incident_row_edit",
    ),
    path(
        "incidents/<slug:slug>/edit/<slug:kind>/<int:pk>/delete/",
        write_views.row_delete,
        name="incident_row_delete",
    ),
    path(
        "incidents/<slug:slug>/edit/<slug:step>/", write_views.incident_step, name="incident_step"
    ),
]
