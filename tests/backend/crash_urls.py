"""A URLconf for tests only: the real routes plus views that crash, to see the 500 path."""

from django.http import HttpResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.urls import urlpatterns as real_urlpatterns


class CrashingApiView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def post(self, request):
        raise RuntimeError(f"boom with {request.data!r}")

    def get(self, request):
        return Response({"ok": True})


def crashing_plain_view(request):
    raise RuntimeError("plain boom")


def html_error_view(request):
    return HttpResponse("<h1>Bad Gateway</h1>", status=502, content_type="text/html")


urlpatterns = [
    path("api/v1/test-crash/", CrashingApiView.as_view()),
    path("api/v1/test-plain-crash/", crashing_plain_view),
    path("api/v1/test-html-error/", html_error_view),
    *real_urlpatterns,
]
handler500 = "backend.api.errors.handler500"
handler404 = "backend.api.errors.handler404"
