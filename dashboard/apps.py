from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"

    def ready(self):
        from django.contrib import admin
        from django.contrib.auth.signals import user_logged_in

        from dashboard.auth import TwoFactorAdminSite
        from dashboard.middleware import idle_clock_start

        user_logged_in.connect(idle_clock_start, dispatch_uid="dashboard_idle_clock_start")

        # The admin's registrations stay on the one site object; only its behaviour changes (the
        # documented alternative, AdminConfig.default_site, would need a second AppConfig here).
        admin.site.__class__ = TwoFactorAdminSite
