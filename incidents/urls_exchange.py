"""Routes of export, import and the chat-log timeline import (issue 8)."""

from django.urls import path

from . import exchange_views

urlpatterns = [
    path(
        "incidents/<slug:slug>/export.md",
        exchange_views.incident_export_markdown,
        name="incident_export_md",
    ),
    path(
        "incidents/<slug:slug>/export.json",
        exchange_views.incident_export_json,
        name="incident_export_json",
    ),
    path(
        "incidents/<slug:slug>/timeline/import/",
        exchange_views.timeline_import,
        name="timeline_import",
    ),
    path("import/", exchange_views.import_page, name="import_incidents"),
]
