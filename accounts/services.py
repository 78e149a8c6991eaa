"""Writes for accounts: sign-in and tokens, enrollment, profiles, care teams, the access log."""

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache

import django_otp
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework import exceptions

from accounts.models import (
    AccessLog,
    CareTeamMembership,
    Clinic,
    ConsentAcceptance,
    ConsentVersion,
    EnrollmentCode,
    LoginAttempt,
    Patient,
    RefreshToken,
    Role,
    SignIn,
    User,
)
from accounts.selectors import PATIENT_ROW, care_team_patient_sql, patients_visible_to
from accounts.tokens import InvalidToken, TokenPair, pair_for, read_refresh
from backend import hooks
from backend.api.client import client_ip, user_agent
from backend.api.exceptions import InvalidCode

DEFAULT_CONSENT_TEXT = (
    "Interlude keeps the journal you write between sessions so your care team can see how you are doing. "
    "Your entries are part of your substance use treatment record and are protected by 42 CFR Part 2. "
    "Your care team reads the journal during office hours; it is not watched around the clock. "
    "In an emergency call 988 or your local emergency number."
)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _bad_credentials() -> exceptions.AuthenticationFailed:
    return exceptions.AuthenticationFailed("Invalid email or password.", code="not_authenticated")


# --- Sign-in, refresh, sign-out -------------------------------------------------------------------


def _login_key(email: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), normalize_email(email).encode(), hashlib.sha256).hexdigest()


def _login_attempt_claim(email: str, now: datetime) -> tuple[int, datetime]:
    """Counts this attempt in one atomic upsert and returns (attempts in window, window start).

    Every attempt is counted *before* its password is checked, so a burst of parallel requests
    cannot all slip past the limit: the row lock serialises the increments and at most
    LOGIN_MAX_FAILURES of them ever reach the password check.
    """
    table = LoginAttempt._meta.db_table
    window_open_after = now - timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
    # The table name comes from the model; every value is a bound parameter.
    sql = f"""
        INSERT INTO {table} (key, attempts, window_started_at) VALUES (%s, 1, %s)
        ON CONFLICT (key) DO UPDATE SET
            attempts = CASE WHEN {table}.window_started_at < %s THEN 1 ELSE {table}.attempts + 1 END,
            window_started_at = CASE WHEN {table}.window_started_at < %s THEN %s
                                     ELSE {table}.window_started_at END
        RETURNING attempts, window_started_at
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [_login_key(email), now, window_open_after, window_open_after, now])
        attempts, window_started_at = cursor.fetchone()
    if isinstance(window_started_at, str):  # SQLite hands back text
        window_started_at = datetime.fromisoformat(window_started_at)
    if timezone.is_naive(window_started_at):
        window_started_at = window_started_at.replace(tzinfo=UTC)
    return attempts, window_started_at


def login_attempts_reset(email: str) -> None:
    LoginAttempt.objects.filter(key=_login_key(email)).delete()


def login_attempt_guard(email: str) -> None:
    """Counts one sign-in attempt (a password or a two-factor code) against the account's lockout."""
    now = timezone.now()
    attempts, window_started_at = _login_attempt_claim(email, now)
    if attempts > settings.LOGIN_MAX_FAILURES:
        retry_after = (window_started_at + timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS) - now).total_seconds()
        raise exceptions.Throttled(
            wait=max(1, retry_after), detail="Too many failed sign-in attempts for this account; retry later."
        )


def credentials_check(*, email: str, password: str) -> User:
    """The first factor, for the API and the dashboard alike: counts the attempt, then checks the password.

    The count is only reset once the whole sign-in succeeds (login_attempts_reset), so a wrong
    two-factor code uses up the same allowance as a wrong password.
    """
    if "\x00" in email:  # no address holds one, and PostgreSQL text cannot: a wrong address, not a 500
        make_password(password)
        raise _bad_credentials()
    login_attempt_guard(email)
    user = User.objects.filter(email=normalize_email(email)).select_related("clinic").first()
    if user is None:
        make_password(password)  # spend the same time as a real check: no hint that the address exists
        raise _bad_credentials()
    if not user.check_password(password) or not user.is_active:
        raise _bad_credentials()
    return user


class _SecondFactorFailed(exceptions.APIException):
    # Not an AuthenticationFailed: the error shape would flatten its code to not_authenticated, and
    # a client needs the code to know it should ask for (another) TOTP code.
    status_code = 401


class OtpRequired(_SecondFactorFailed):
    default_code = "otp_required"
    default_detail = "Two-factor sign-in is on for this account: send the code from your authenticator app as otp."


class OtpInvalid(_SecondFactorFailed):
    default_code = "otp_invalid"
    default_detail = "This two-factor code is not valid, or was already used. Wait for the next code and try again."


class TwoFactorSetupRequired(_SecondFactorFailed):
    default_code = "two_factor_setup_required"
    default_detail = "Set up two-factor sign-in on the web dashboard first; then sign in here with its codes."


def totp_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).order_by("pk").first()


def two_factor_needed(user: User, device: TOTPDevice | None) -> bool:
    """Clinicians only (patients never use TOTP): always when DASHBOARD_REQUIRE_2FA is on, and
    otherwise whenever they have set it up."""
    return user.is_clinician and (device is not None or settings.DASHBOARD_REQUIRE_2FA)


def second_factor_check(*, user: User, device: TOTPDevice, otp: str) -> None:
    """Checks a TOTP code with django-otp, under its row lock: a wrong code doubles the device's
    wait before the next try (1, 2, 4 ... s), and a code of a time step at or before the last
    accepted one is refused (last_t), so a code seen over a shoulder cannot be replayed.

    The caller has counted the attempt against the lockout (credentials_check or
    login_attempt_guard). Works for a device still being set up, too.
    """
    otp = "".join((otp or "").split())
    if not otp:
        raise OtpRequired()
    allowed, details = device.verify_is_allowed()
    if not allowed:
        locked_until = (details or {}).get("locked_until")
        wait = (locked_until - timezone.now()).total_seconds() if locked_until else 1
        raise exceptions.Throttled(wait=max(1, wait), detail="Too many wrong two-factor codes; retry later.")
    # The device is reloaded FOR UPDATE inside; raising only after that transaction has committed
    # keeps the throttle's failure count.
    if django_otp.verify_token(user, device.persistent_id, otp) is None:
        raise OtpInvalid()


def _sign_in_create(*, user: User, request) -> TokenPair:
    now = timezone.now()
    sign_in = SignIn.objects.create(user=user, ip=client_ip(request), user_agent=user_agent(request))
    row = RefreshToken.objects.create(
        sign_in=sign_in, issued_at=now, expires_at=now + settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    )
    User.objects.filter(pk=user.pk).update(last_login=now)
    return pair_for(row, user.pk)


def login(*, email: str, password: str, otp: str = "", request) -> tuple[User, TokenPair]:
    user = credentials_check(email=email, password=password)
    device = totp_device(user) if user.is_clinician else None
    if two_factor_needed(user, device):
        if device is None:
            raise TwoFactorSetupRequired()
        second_factor_check(user=user, device=device, otp=otp)
    login_attempts_reset(email)
    with transaction.atomic():
        pair = _sign_in_create(user=user, request=request)
    return user, pair


class _ReuseDetected(Exception):
    pass


def token_refresh(*, raw_refresh: str) -> TokenPair:
    """Rotates a refresh token (SPEC §3).

    A rotated-away token presented again within the grace period gets the pair it was rotated
    into (two parallel requests from one phone); later, it is treated as stolen and the whole
    sign-in is revoked, the pair it was rotated into included.
    """
    try:
        claims = read_refresh(raw_refresh)
    except InvalidToken:
        raise exceptions.AuthenticationFailed("Token is invalid or expired.", code="not_authenticated") from None
    now = timezone.now()
    try:
        with transaction.atomic():
            row = (
                RefreshToken.objects.select_for_update(of=("self",))
                .select_related("sign_in__user", "replaced_by")
                .filter(jti=claims["jti"], sign_in_id=claims["sid"])
                .first()
            )
            if row is None or row.sign_in.revoked_at is not None or not row.sign_in.user.is_active:
                raise exceptions.AuthenticationFailed("This sign-in has ended.", code="not_authenticated")
            if row.replaced_at is None:
                child = RefreshToken.objects.create(
                    sign_in=row.sign_in, issued_at=now, expires_at=now + settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
                )
                row.replaced_by, row.replaced_at = child, now
                row.save(update_fields=["replaced_by", "replaced_at"])
                return pair_for(child, row.sign_in.user_id)
            if (now - row.replaced_at).total_seconds() <= settings.REFRESH_REUSE_GRACE_SECONDS and row.replaced_by:
                return pair_for(row.replaced_by, row.sign_in.user_id)
            raise _ReuseDetected
    except _ReuseDetected:
        SignIn.objects.filter(pk=claims["sid"], revoked_at__isnull=True).update(
            revoked_at=now, revoked_reason="refresh_reuse"
        )
        raise exceptions.AuthenticationFailed("This sign-in has ended.", code="not_authenticated") from None


def sign_out(*, user: User, raw_refresh: str) -> None:
    try:
        claims = read_refresh(raw_refresh)
    except InvalidToken:
        raise exceptions.ValidationError({"refresh": ["This refresh token is not valid."]}, code="invalid") from None
    if str(claims.get("user_id")) != str(user.pk):
        raise exceptions.ValidationError({"refresh": ["This refresh token is not yours."]}, code="invalid")
    SignIn.objects.filter(pk=claims["sid"], user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason="logout"
    )


def sign_ins_revoke_all(*, user: User, reason: str) -> int:
    return SignIn.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason
    )


def password_set(*, user: User, password: str, reason: str) -> None:
    """Gives the user a new password, already validated (see password_saved)."""
    user.set_password(password)
    password_saved(user=user, reason=reason)


@transaction.atomic
def password_saved(*, user: User, reason: str) -> None:
    """Saves the password just set on `user` and ends every sign-in they have (SPEC §4): the usual
    reason for a new password is a lost or stolen phone or laptop, whose refresh token would
    otherwise keep working for 30 days. Every way a password is set ends here (the admin's forms
    set it themselves, an unusable one included)."""
    user.save(update_fields=["password"])
    sign_ins_revoke_all(user=user, reason=reason)


def _validated_password(password: str, user: User | None, field: str = "password") -> str:
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError({field: list(exc.messages)}, code="weak_password") from None
    return password


def password_change(*, user: User, current_password: str, new_password: str, request) -> TokenPair:
    # A guess at the current password is a sign-in attempt: it counts against the same lockout (and
    # outside the transaction below, so a wrong guess stays counted), or a stolen access token
    # could try passwords without limit and then take the account over.
    login_attempt_guard(user.email)
    if not user.check_password(current_password):
        raise exceptions.ValidationError({"current_password": ["This is not your current password."]}, code="invalid")
    login_attempts_reset(user.email)
    return _password_replace(user=user, new_password=new_password, request=request)


@transaction.atomic
def _password_replace(*, user: User, new_password: str, request) -> TokenPair:
    password_set(user=user, password=_validated_password(new_password, user, "new_password"), reason="password_change")
    return _sign_in_create(user=user, request=request)


def password_reset_token(user: User) -> str:
    return f"{user.pk.hex}.{default_token_generator.make_token(user)}"


def password_reset_request(*, email: str) -> None:
    """Queues the reset email when the address belongs to an active account; says nothing either way."""
    from accounts.tasks import send_password_reset_email
    from backend.queueing import publish_on_commit

    user = User.objects.filter(email=normalize_email(email), is_active=True).first()
    if user is not None:
        publish_on_commit(send_password_reset_email, str(user.pk))


@transaction.atomic
def password_reset_confirm(*, token: str, password: str) -> None:
    user_hex, _, django_token = token.partition(".")
    try:
        user_id = uuid.UUID(hex=user_hex)
    except ValueError:
        raise InvalidCode("This reset link is not valid or has expired.") from None
    user = User.objects.select_for_update().filter(pk=user_id, is_active=True).first()
    if user is None or not default_token_generator.check_token(user, django_token):
        raise InvalidCode("This reset link is not valid or has expired.")
    password_set(user=user, password=_validated_password(password, user), reason="password_reset")
    login_attempts_reset(user.email)


# --- Clinics, clinicians ------------------------------------------------------------------------


@transaction.atomic
def clinic_get_or_create(*, name: str) -> Clinic:
    clinic, created = Clinic.objects.get_or_create(name=name)
    if created:
        ConsentVersion.objects.create(
            clinic=clinic, version="1", text=DEFAULT_CONSENT_TEXT, published_at=timezone.now()
        )
    return clinic


@transaction.atomic
def clinician_create(
    *, email: str, password: str, clinic_name: str, is_clinic_admin: bool = False, display_name: str = ""
) -> User:
    clinic = clinic_get_or_create(name=clinic_name)
    _validated_password(password, None)
    if User.objects.filter(email=normalize_email(email)).exists():
        raise exceptions.ValidationError({"email": ["An account with this email already exists."]}, code="email_taken")
    return User.objects.create_user(
        email=email,
        password=password,
        role=Role.CLINICIAN,
        clinic=clinic,
        is_clinic_admin=is_clinic_admin,
        is_staff=is_clinic_admin,
        display_name=display_name or email.split("@")[0],
    )


# --- Patients and enrollment --------------------------------------------------------------------

# No 0/O, 1/I/L: codes are read aloud and typed from paper.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CODE_LENGTH = 12


def _normalize_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _code_hash(code: str) -> str:
    return hmac.new(
        settings.SECRET_KEY.encode(), b"enroll:" + _normalize_code(code).encode(), hashlib.sha256
    ).hexdigest()


@transaction.atomic
def enrollment_code_issue(*, patient: Patient, issued_by: User | None) -> tuple[str, datetime]:
    """A fresh single-use code; the patient's previous live code stops working.

    For an enrolled patient (a lost phone) the code lets them set a new password, and redeeming
    it revokes every existing sign-in.
    """
    now = timezone.now()
    EnrollmentCode.objects.filter(patient=patient, used_at__isnull=True, revoked_at__isnull=True).update(revoked_at=now)
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    expires_at = now + settings.ENROLLMENT_CODE_TTL
    EnrollmentCode.objects.create(
        patient=patient, code_hash=_code_hash(raw), created_by=issued_by, expires_at=expires_at
    )
    return "-".join(raw[i : i + 4] for i in range(0, _CODE_LENGTH, 4)), expires_at


def enrollment_code_live(code: str, *, for_update: bool = False) -> EnrollmentCode:
    queryset = EnrollmentCode.objects.select_related("patient__clinic", "patient__user")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    found = queryset.filter(
        code_hash=_code_hash(code), used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).first()
    if found is None or found.patient.status == "discharged":
        raise InvalidCode()
    return found


@transaction.atomic
def patient_create(
    *, clinician: User, display_name: str, timezone_name: str, substances: list[str]
) -> tuple[Patient, str, datetime]:
    patient = Patient.objects.create(
        clinic_id=clinician.clinic_id,
        display_name=display_name,
        timezone=timezone_name,
        substances=substances,
        created_by=clinician,
    )
    CareTeamMembership.objects.create(patient=patient, clinician=clinician, added_by=clinician)
    code, expires_at = enrollment_code_issue(patient=patient, issued_by=clinician)
    return patient, code, expires_at


def patient_enroll(*, code: str, email: str, password: str, consent_version: str, request) -> tuple[User, TokenPair]:
    email = normalize_email(email)
    try:
        with transaction.atomic():
            enrollment = enrollment_code_live(code, for_update=True)
            patient = enrollment.patient
            consent = patient.clinic.current_consent()
            if consent is None or consent.version != consent_version:
                raise exceptions.ValidationError(
                    {"consent_version": ["Please read and accept the clinic's current consent text."]},
                    code="consent_version_mismatch",
                )
            user = patient.user
            if User.objects.filter(email=email).exclude(pk=getattr(user, "pk", None)).exists():
                raise exceptions.ValidationError(
                    {"email": ["An account with this email already exists."]}, code="email_taken"
                )
            if user is None:
                _validated_password(password, None)
                user = User.objects.create_user(
                    email=email, password=password, role=Role.PATIENT, clinic=patient.clinic
                )
                patient.user = user
                patient.save(update_fields=["user", "updated_at"])
            else:
                # A lost phone: the code proves who they are; every old sign-in ends here.
                user.email = email
                user.set_password(_validated_password(password, user))
                user.is_active = True
                user.save(update_fields=["email", "password", "is_active"])
                sign_ins_revoke_all(user=user, reason="re_enrolled")
            ConsentAcceptance.objects.create(
                patient=patient, consent_version=consent, ip=client_ip(request), user_agent=user_agent(request)
            )
            enrollment.used_at = timezone.now()
            enrollment.save(update_fields=["used_at"])
            login_attempts_reset(email)
            pair = _sign_in_create(user=user, request=request)
            # Schedules the care team set up before enrollment (or while the phone was lost) start now.
            hooks.patient_reminder_settings_changed.call(patient=patient)
    except IntegrityError:
        # Two phones racing with one code, or with one new email: the loser gets a clear 400.
        raise InvalidCode() from None
    return user, pair


@transaction.atomic
def patient_update(*, patient: Patient, **changes) -> Patient:
    """The patient's phone and the care team change different fields of one row, sometimes at once
    (a time-zone change while a clinician pauses them). The changes go onto the row as it is now,
    locked until commit, and only the fields they name are written: a copy a request loaded
    earlier never writes back over what another request committed since. `patient` is brought up
    to date with the row as written."""
    locked = Patient.objects.select_for_update(of=("self",)).get(pk=patient.pk)
    written = ["updated_at"]
    for field in ("display_name", "timezone", "substances", "status"):
        if field in changes:
            setattr(locked, field, changes[field])
            written.append(field)
    if "quiet_hours" in changes:
        quiet = changes["quiet_hours"]
        locked.quiet_hours_start = quiet["start"] if quiet else None
        locked.quiet_hours_end = quiet["end"] if quiet else None
        written += ["quiet_hours_start", "quiet_hours_end"]
    locked.save(update_fields=written)
    for field in Patient._meta.concrete_fields:
        setattr(patient, field.attname, getattr(locked, field.attname))
    if changes.keys() & {"timezone", "quiet_hours", "status"}:
        hooks.patient_reminder_settings_changed.call(patient=patient)
    return patient


@transaction.atomic
def profile_update(*, user: User, **changes) -> User:
    if user.is_patient:
        patient_update(patient=user.patient, **changes)
    elif "display_name" in changes:
        user.display_name = changes["display_name"]
        user.save(update_fields=["display_name"])
    return user


@transaction.atomic
def account_deactivate(*, user: User) -> None:
    """The patient leaves the app: sign-ins end, reminders stop; the record stays per retention."""
    user.is_active = False
    user.save(update_fields=["is_active"])
    sign_ins_revoke_all(user=user, reason="deactivated")
    if user.is_patient:
        hooks.patient_reminder_settings_changed.call(patient=user.patient)


def care_team_add(*, patient: Patient, clinician: User, added_by: User) -> CareTeamMembership:
    if clinician.clinic_id != patient.clinic_id or clinician.role != Role.CLINICIAN:
        raise exceptions.ValidationError({"clinician": ["No such clinician in this clinic."]}, code="does_not_exist")
    membership, _ = CareTeamMembership.objects.get_or_create(
        patient=patient, clinician=clinician, defaults={"added_by": added_by}
    )
    return membership


def care_team_remove(*, patient: Patient, clinician_id) -> None:
    CareTeamMembership.objects.filter(patient=patient, clinician_id=clinician_id).delete()


# --- Access log ---------------------------------------------------------------------------------


_ACCESS_LOG_COLUMNS = ("at", "actor", "patient", "action", "path", "ip", "user_agent")


@cache
def _access_log_insert_sql(touched: str) -> str:
    """One access-log row per `patient_id` that the FROM item `touched` yields (PostgreSQL); the
    parameters are _access_log_values' then touched's own. One statement, no model instances: a
    triage list of 1,000 patients writes 1,000 rows."""
    quote = connection.ops.quote_name
    log = AccessLog._meta
    columns = ", ".join(quote(log.get_field(name).column) for name in _ACCESS_LOG_COLUMNS)
    return (
        f"INSERT INTO {quote(log.db_table)} ({columns}) "  # noqa: S608 - names from the models
        f"SELECT %s, %s, touched.patient_id, %s, %s, %s, %s FROM {touched}"
    )


@cache
def _care_team_patient_logged_sql() -> str:
    logged = _access_log_insert_sql("(SELECT id AS patient_id FROM p) AS touched")
    return f"WITH p AS ({care_team_patient_sql()}), logged AS ({logged}) SELECT * FROM p"  # noqa: S608


def _access_log_values(request, action: str) -> list:
    """Everything of a row but the patient, in _ACCESS_LOG_COLUMNS order."""
    path = request.get_full_path()[:500]
    return [timezone.now(), request.user.pk, action, path, client_ip(request), user_agent(request)]


def care_team_patient_logged(request, *, patient_id, action: str) -> Patient | None:
    """The patient if the signed-in clinician is on their care team, with this request's access-log
    row written (SPEC §11); None, and no row, otherwise.

    Every care-team read pays this before its own work, so on PostgreSQL the check and the row are
    one statement (a data-modifying WITH runs whether or not the outer SELECT reads it): as a
    queryset and a bulk insert they cost more than the 365-day trend they guard (bench/insight.py
    measures that floor)."""
    user = request.user
    if not getattr(user, "is_clinician", False):
        return None
    if connection.vendor != "postgresql":  # SQLite (the embedded demo) has no INSERT inside WITH
        patient = patients_visible_to(user).filter(pk=patient_id).first()
        if patient is not None:
            access_log_record(request, patients=[patient], action=action)
        return patient
    with connection.cursor() as cursor:
        params = [patient_id, user.clinic_id, user.pk, *_access_log_values(request, action)]
        cursor.execute(_care_team_patient_logged_sql(), params)
        row = cursor.fetchone()
    return None if row is None else PATIENT_ROW.load(row)


def access_log_record(request, *, patients, action: str) -> None:
    """One row per patient touched, in one insert (SPEC §11)."""
    patient_ids = [getattr(patient, "pk", patient) for patient in patients]
    if not patient_ids:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            touched = "unnest(%s::uuid[]) AS touched(patient_id)"
            cursor.execute(_access_log_insert_sql(touched), [*_access_log_values(request, action), patient_ids])
        return
    at, actor, action, path, ip, agent = _access_log_values(request, action)
    AccessLog.objects.bulk_create(
        AccessLog(at=at, actor_id=actor, patient_id=patient_id, action=action, path=path, ip=ip, user_agent=agent)
        for patient_id in patient_ids
    )
