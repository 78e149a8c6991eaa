from journal.api import assessments, entries, exports, sessions

urlpatterns = [*entries.urlpatterns, *assessments.urlpatterns, *sessions.urlpatterns, *exports.urlpatterns]
