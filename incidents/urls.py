"""All incident URLs. Each feature keeps its routes in its own module; write routes come first
so `incidents/new/` is not taken for a slug."""

from django.urls import path

from . import (
    urls_actions,
    urls_browse,
    urls_exchange,
    urls_review,
    urls_write,
    views,
)

urlpatterns = [
    *urls_write.urlpatterns,
    *urls_browse.urlpatterns,
    *urls_actions.urlpatterns,
    *urls_review.urlpatterns,
    *urls_exchange.urlpatterns,
    path("incidents/<slug:slug>/", views.incident_detail, name="incident_detail"),
    path("teams/<slug:slug>/", views.team_detail, name="team_detail"),
    path("services/<slug:slug>/", views.service_detail, name="service_detail"),
    path("tags/<slug:slug>/", views.tag_detail, name="tag_detail"),
    path("healthz", views.healthz, name="healthz"),
]
