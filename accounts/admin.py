"""Django admin for staff. Superusers see everything; a clinic admin sees and manages only their
own clinic: its clinicians, care teams, consent texts, crisis resources and access log. No
clinical data is shown here, no one manages a patient's own account here, and every page that
shows or changes a patient writes its access-log rows (SPEC §11), as the JSON API does."""

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm

from accounts import selectors, services
from accounts.forms import StaffPasswordSetForm
from accounts.models import AccessAction, AccessLog, CareTeamMembership, Clinic, ConsentVersion, Patient, Role, User


def _is_clinic_admin(request) -> bool:
    user = request.user
    return user.is_active and user.is_staff and getattr(user, "is_clinic_admin", False)


class ClinicScopedAdmin(admin.ModelAdmin):
    """Grants a clinic admin the rights named in `clinic_admin_can`, over rows of their clinic."""

    clinic_field = "clinic"
    clinic_admin_can: tuple[str, ...] = ("view",)

    def _allowed(self, request, action: str) -> bool:
        return request.user.is_superuser or (_is_clinic_admin(request) and action in self.clinic_admin_can)

    def has_module_permission(self, request):
        return self._allowed(request, "view")

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, "view")

    def has_add_permission(self, request):
        return self._allowed(request, "add")

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, "change")

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, "delete")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{self.clinic_field: request.user.clinic_id})


@admin.register(Clinic)
class ClinicAdmin(ClinicScopedAdmin):
    clinic_field = "pk"
    clinic_admin_can = ("view", "change")
    list_display = ("name", "created_at")
    search_fields = ("name",)
    fields = ("name", "contact_phone", "emergency_phone", "crisis_resources", "monitoring_statement")


@admin.register(ConsentVersion)
class ConsentVersionAdmin(ClinicScopedAdmin):
    clinic_admin_can = ("view", "add")
    list_display = ("clinic", "version", "published_at")

    def get_exclude(self, request, obj=None):
        return () if request.user.is_superuser else ("clinic",)

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            obj.clinic_id = request.user.clinic_id
        super().save_model(request, obj, form, change)


class ClinicianCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("email", "display_name", "is_clinic_admin")


@admin.register(User)
class UserAdmin(ClinicScopedAdmin, BaseUserAdmin):
    clinic_admin_can = ("view", "add", "change")
    add_form = ClinicianCreationForm
    change_password_form = StaffPasswordSetForm
    ordering = ("email",)
    list_display = ("email", "display_name", "role", "clinic", "is_clinic_admin", "is_active")
    list_filter = ("role", "is_clinic_admin", "is_active")
    search_fields = ("email", "display_name")
    add_fieldsets = ((None, {"fields": ("email", "display_name", "is_clinic_admin", "password1", "password2")}),)

    def get_queryset(self, request):
        # A patient's account is theirs alone, for superusers too: they set its password at
        # enrollment, and a lost one is replaced by a new enrollment code (SPEC §4). Setting it
        # here would let staff sign in as the patient and read the journal, unlogged. Every page
        # of a user (change, password, history) looks it up through this queryset.
        queryset = super().get_queryset(request).exclude(role=Role.PATIENT)
        if not request.user.is_superuser:
            # A superuser may have a clinic, but is not the clinic's to manage: a clinic admin who
            # could set their password, email or Active box could sign in as them, or lock them out.
            queryset = queryset.exclude(is_superuser=True)
        return queryset

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.add_fieldsets
        access = ("is_active", "is_clinic_admin") + (("is_staff", "is_superuser") if request.user.is_superuser else ())
        profile = ("display_name", "role", "clinic") if request.user.is_superuser else ("display_name",)
        return (
            (None, {"fields": ("email", "password")}),
            ("Profile", {"fields": profile}),
            ("Access", {"fields": access}),
        )

    def save_model(self, request, obj, form, change):
        if not change:
            # Staff added here are clinicians of the adding admin's clinic; patients enroll by code.
            obj.role = Role.CLINICIAN
            obj.email = obj.email.lower()
            if not request.user.is_superuser or obj.clinic_id is None:
                obj.clinic_id = request.user.clinic_id
        obj.is_staff = obj.is_clinic_admin or obj.is_superuser
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data:
            # The API only hides an inactive user's sign-ins; revoked here, re-activating the
            # account does not bring them back. Revoking on re-activation too covers an account
            # deactivated some other way (a shell), whose sign-ins would otherwise return now.
            services.sign_ins_revoke_all(user=obj, reason="reactivated" if obj.is_active else "deactivated")


class CareTeamInline(admin.TabularInline):
    model = CareTeamMembership
    extra = 1
    fk_name = "patient"
    fields = ("clinician", "added_by", "added_at")
    readonly_fields = ("added_by", "added_at")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        if obj is not None:  # the choices care_team_add accepts: active clinicians of the patient's clinic
            formset.form.base_fields["clinician"].queryset = selectors.clinicians_of_clinic(obj.clinic_id)
        return formset

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or _is_clinic_admin(request)

    has_add_permission = has_delete_permission = has_view_permission

    def has_change_permission(self, request, obj=None):
        # A membership is granted or revoked, never repointed: it records who granted whom.
        return False


@admin.register(Patient)
class PatientAdmin(ClinicScopedAdmin):
    """Names and care teams only: clinical data lives behind the care-team rule, not here.

    The name and status are shown, not edited: pausing a patient silences their prompts and
    alerts, a care-team decision (SPEC §1) made through the API, which logs it. What an admin
    does here, managing the care team, goes through the same services as the care-team API and is
    logged the same way: a list row per patient listed, a view row per patient opened, an update
    row per change."""

    clinic_admin_can = ("view", "change")
    list_display = ("display_name", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("display_name",)
    fields = ("display_name", "status")
    readonly_fields = fields
    inlines = [CareTeamInline]

    def has_add_permission(self, request):
        return False  # patients are created by a clinician, who joins the care team and gets the code

    def has_delete_permission(self, request, obj=None):
        return False  # the record stays per the clinic's retention; discharge is a status

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is not None:  # the page's patients, fetched once: the template reuses them
            services.access_log_record(request, patients=changelist.result_list, action=AccessAction.LIST)
        return response

    def get_object(self, request, object_id, from_field=None):
        # The one lookup behind the change form, its save and the history page.
        patient = super().get_object(request, object_id, from_field)
        if patient is not None:
            action = AccessAction.VIEW if request.method in ("GET", "HEAD") else AccessAction.UPDATE
            services.access_log_record(request, patients=[patient], action=action)
        return patient

    def save_model(self, request, obj, form, change):
        pass  # nothing of the patient is editable here; save_formset changes the care team

    def save_formset(self, request, form, formset, change):
        patient = form.instance
        formset.save(commit=False)  # sorts the rows into new and deleted objects; writes nothing
        for membership in formset.deleted_objects:
            services.care_team_remove(patient=patient, clinician_id=membership.clinician_id)
        formset.new_objects = [
            services.care_team_add(patient=patient, clinician=membership.clinician, added_by=request.user)
            for membership in formset.new_objects
        ]


class _ReadOnlyForm(forms.ModelForm):
    class Meta:
        model = AccessLog
        fields: tuple = ()


@admin.register(AccessLog)
class AccessLogAdmin(ClinicScopedAdmin):
    clinic_field = "patient__clinic"
    list_display = ("at", "actor", "patient", "action", "path", "ip")
    list_filter = ("action",)
    list_select_related = ("actor", "patient")
    form = _ReadOnlyForm

    # Append-only for superusers too (SPEC §11): the model and a database trigger refuse anyway, so
    # offering Change or Delete (or the bulk "Delete selected" action, which follows this) only
    # led to a 500.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
