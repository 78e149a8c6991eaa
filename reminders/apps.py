from django.apps import AppConfig


class RemindersConfig(AppConfig):
    name = "reminders"

    def ready(self):
        # Handlers for the hooks lower apps call (backend/hooks.py).
        from backend import hooks  # noqa: F401
