"""entries API routes."""

urlpatterns: list = []
