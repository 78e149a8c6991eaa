from journal.api import assessments, entries, exports, sessions, trends

urlpatterns = [
    *entries.urlpatterns,
    *assessments.urlpatterns,
    *sessions.urlpatterns,
    *exports.urlpatterns,
    *trends.urlpatterns,
]
