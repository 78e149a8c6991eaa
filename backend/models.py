from django.db import models


class Heartbeat(models.Model):
    """When a periodic job last ran, so /readyz can report whether beat and a worker are alive."""

    name = models.CharField(max_length=64, primary_key=True)
    last_run_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_run_at:%Y-%m-%d %H:%M:%S}"
