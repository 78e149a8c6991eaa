"""Tags the default crisis resources of existing clinics with the support severities SPEC §5 gives
them (988 → urgent, SAMHSA → high). Resources a clinic added itself stay untagged: shown for both."""

from django.db import migrations

_DEFAULT_SEVERITIES = {"988": ["urgent"], "1-800-662-4357": ["high"]}


def tag_defaults(apps, schema_editor):
    Clinic = apps.get_model("accounts", "Clinic")
    for clinic in Clinic.objects.all():
        resources = [
            {**resource, "severities": _DEFAULT_SEVERITIES[resource.get("phone")]}
            if resource.get("phone") in _DEFAULT_SEVERITIES and "severities" not in resource
            else resource
            for resource in clinic.crisis_resources
        ]
        if resources != clinic.crisis_resources:
            clinic.crisis_resources = resources
            clinic.save(update_fields=["crisis_resources"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_clinic_alert_thresholds")]

    operations = [migrations.RunPython(tag_defaults, migrations.RunPython.noop)]
