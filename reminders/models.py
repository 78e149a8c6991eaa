# Models arrive with the reminders issue (schedules, prompts, devices).
