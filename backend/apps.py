from django.apps import AppConfig
from django.db.backends.signals import connection_created


class BackendConfig(AppConfig):
    name = "backend"
    verbose_name = "Operations"

    def ready(self):
        from backend.db import use_compiled_timestamptz_loader

        connection_created.connect(use_compiled_timestamptz_loader, dispatch_uid="compiled-timestamptz-loader")
