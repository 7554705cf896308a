from django.urls import path

from . import browse_views

# `incidents/similar/` first: the incident page's `incidents/<slug>/` would take it for a slug.
urlpatterns = [
    path("incidents/similar/", browse_views.similar_incidents, name="similar_incidents"),
    path("", browse_views.home, name="home"),
    path("incidents/", browse_views.incident_list, name="incident_list"),
    path("metrics/", browse_views.metrics, name="metrics"),
]
