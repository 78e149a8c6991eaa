from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from backend import health, metrics

handler400 = "backend.api.errors.handler400"
handler403 = "backend.api.errors.handler403"
handler404 = "backend.api.errors.handler404"
handler500 = "backend.api.errors.handler500"

api_v1 = [
    path("", include("dashboard.api")),
    path("", include("accounts.urls")),
    path("", include("journal.urls")),
    path("", include("reminders.urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("dashboard/", include("dashboard.urls")),
    path("admin/", admin.site.urls),
]
