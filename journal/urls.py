from journal.api import alerts, assessments, entries, exports, sessions, trends

urlpatterns = [
    *entries.urlpatterns,
    *assessments.urlpatterns,
    *sessions.urlpatterns,
    *exports.urlpatterns,
    *trends.urlpatterns,
    *alerts.urlpatterns,
]
