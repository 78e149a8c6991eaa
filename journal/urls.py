from journal.api import assessments, entries, sessions

urlpatterns = [*entries.urlpatterns, *assessments.urlpatterns, *sessions.urlpatterns]
