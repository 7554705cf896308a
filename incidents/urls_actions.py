from django.urls import path

from . import action_views

urlpatterns = [
    path("actions/", action_views.action_list, name="action_list"),
]
