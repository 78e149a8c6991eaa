"""prompts API routes."""

urlpatterns: list = []
