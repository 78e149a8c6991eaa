from reminders.api import devices, prompts, schedules

urlpatterns = [*schedules.urlpatterns, *devices.urlpatterns, *prompts.urlpatterns]
