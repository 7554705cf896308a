"""Styled error pages. The 500 page renders without the database or the request context,
because those may be what failed."""

from django.http import HttpResponseServerError
from django.shortcuts import render
from django.template import loader


def not_found(request, exception=None):
    return render(request, "404.html", status=404)


def forbidden(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def server_error(request):
    return HttpResponseServerError(loader.get_template("500.html").render())
