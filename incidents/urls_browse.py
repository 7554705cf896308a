from django.urls import path

from . import browse_views

urlpatterns = [
    path("", browse_views.home, name="home"),
    path("incidents/", browse_views.incident_list, name="incident_list"),
    path("metrics/", browse_views.metrics, name="metrics"),
]
