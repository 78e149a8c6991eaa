"""schedules API routes."""

urlpatterns: list = []
