from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import AccessLog, CareTeamMembership, Clinic, ConsentVersion, Patient, User


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(ConsentVersion)
class ConsentVersionAdmin(admin.ModelAdmin):
    list_display = ("clinic", "version", "published_at")


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "role", "clinic", "is_clinic_admin", "is_active")
    list_filter = ("role", "is_clinic_admin", "is_active", "clinic")
    search_fields = ("email", "display_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("display_name", "role", "clinic", "is_clinic_admin")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser")}),
    )
    add_fieldsets = ((None, {"fields": ("email", "role", "clinic", "password1", "password2")}),)


class CareTeamInline(admin.TabularInline):
    model = CareTeamMembership
    extra = 0
    fk_name = "patient"
    fields = ("clinician", "added_at")
    readonly_fields = ("added_at",)


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    """Staff management only: names and care teams, no clinical data."""

    list_display = ("display_name", "clinic", "status", "created_at")
    list_filter = ("status", "clinic")
    search_fields = ("display_name",)
    fields = ("display_name", "clinic", "status", "timezone")
    inlines = [CareTeamInline]


@admin.register(AccessLog)
class AccessLogAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "patient", "action", "path", "ip")
    list_filter = ("action",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
