from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("incidents/", views.incident_list, name="incident_list"),
    path("incidents/new/", views.incident_create, name="incident_create"),
    path("incidents/<slug:slug>/", views.incident_detail, name="incident_detail"),
    path("incidents/<slug:slug>/edit/", views.incident_edit, name="incident_edit"),
    path("teams/<slug:slug>/", views.team_detail, name="team_detail"),
    path("actions/", views.action_list, name="action_list"),
    path("metrics/", views.metrics, name="metrics"),
    path("healthz", views.healthz, name="healthz"),
]
