from django.urls import path

from . import write_views

urlpatterns = [
    path("incidents/new/", write_views.incident_create, name="incident_create"),
    path("incidents/<slug:slug>/edit/", write_views.incident_edit, name="incident_edit"),
]
