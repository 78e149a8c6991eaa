"""assessments API routes."""

urlpatterns: list = []
