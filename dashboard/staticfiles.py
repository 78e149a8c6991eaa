"""plotly.js from the plotly package that pip installed (requirements.txt): the dashboard's charts
need no CDN and no file copied by hand. Only plotly.min.js is exposed as `plotly/plotly.min.js`;
the package's other 5 MB (datasets, the Jupyter widget bundle) stay out of collectstatic."""

import importlib.util
from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PREFIX = "plotly"
SCRIPT = "plotly.min.js"


def _package_data() -> Path:
    spec = importlib.util.find_spec("plotly")  # located, not imported: importing plotly is slow
    return Path(spec.submodule_search_locations[0]) / "package_data"


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=_package_data())
        self.storage.prefix = PREFIX

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        if path != f"{PREFIX}/{SCRIPT}":
            return [] if find_all else None
        match = str(_package_data() / SCRIPT)
        return [match] if find_all else match

    def list(self, ignore_patterns):
        yield SCRIPT, self.storage
