from django.apps import AppConfig


class RemindersConfig(AppConfig):
    name = "reminders"

    def ready(self):
        # Handlers for the hooks that accounts and journal call (backend/hooks.py): they cannot
        # import reminders, which depends on them.
        from backend import hooks
        from reminders.selectors.exports import own_reminder_sections
        from reminders.services import alert_notifications_hooks, planning_hooks, prompts_hooks

        hooks.prompt_answered.register(prompts_hooks.on_prompt_answered)
        hooks.patient_reminder_settings_changed.register(planning_hooks.on_patient_reminder_settings_changed)
        hooks.therapy_session_changed.register(planning_hooks.on_therapy_session_changed)
        hooks.alert_opened.register(alert_notifications_hooks.on_alert_opened)
        hooks.urgent_alert_refired.register(alert_notifications_hooks.on_urgent_alert_refired)
        hooks.patient_export_sections.register(own_reminder_sections)
