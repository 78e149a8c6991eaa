"""devices API routes."""

urlpatterns: list = []
