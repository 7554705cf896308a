from django.urls import path

from . import action_views

urlpatterns = [
    path("actions/", action_views.action_list, name="action_list"),
    path("actions/facets/", action_views.action_facets, name="action_facets"),
    path("actions/export.csv", action_views.action_export, name="action_export"),
    path("actions/bulk/", action_views.action_bulk_update, name="action_bulk_update"),
    path("actions/<int:pk>/", action_views.action_detail, name="action_detail"),
    path("actions/<int:pk>/row/", action_views.action_row, name="action_row"),
    path("actions/<int:pk>/edit/", action_views.action_edit, name="action_edit"),
    path("actions/<int:pk>/verify/", action_views.action_verify, name="action_verify"),
    path("preferences/", action_views.preferences, name="preferences"),
]
