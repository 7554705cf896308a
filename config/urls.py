from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("lessons.urls")),
    path("", include("incidents.urls")),
]

handler404 = "incidents.errors.not_found"
handler500 = "incidents.errors.server_error"
handler403 = "incidents.errors.forbidden"
