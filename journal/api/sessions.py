"""sessions API routes."""

urlpatterns: list = []
