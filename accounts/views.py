"""Sign-up, log-in, team, invites and API token pages."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from accounts import lockout, services
from accounts.access import Perm
from accounts.audit_log import audit_events
from accounts.decorators import team_view
from accounts.forms import (
    InviteForm,
    InviteSignupForm,
    PasswordChangeForm,
    PasswordResetForm,
    RoleForm,
    ServiceAccountForm,
    SignupForm,
    TeamForm,
    TokenForm,
)
from accounts.middleware import SESSION_TEAM_KEY
from accounts.models import ApiToken, Invite, Membership, Role, TokenKind
from portal.forms import apply_errors


class EmailAuthenticationForm(AuthenticationForm):
    locked: lockout.AccountLocked | None = None

    def clean_username(self):
        return self.cleaned_data["username"].strip().lower()

    def clean(self):
        try:
            lockout.check(self.cleaned_data.get("username", ""))
        except lockout.AccountLocked as e:
            self.locked = e
            raise ValidationError(str(e), code="locked") from None
        return super().clean()


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    form_class = EmailAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, "locked"):
            response.status_code = 429
            response["Retry-After"] = str(form.locked.seconds)
        return response


@sensitive_post_parameters("password")
def signup(request):
    if request.user.is_authenticated:
        return redirect("licenses:app-list")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and not form.is_valid():
        # Show every problem at once, not only the ones the form itself can see.
        fields = {k: request.POST.get(k, "") for k in ("email", "password", "team_name", "name")}
        for field, problems in services.signup_errors(**fields).items():
            if field not in form.errors:
                form.add_error(field, problems)
    elif request.method == "POST":
        try:
            user, team = services.user_signup(**form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            request.session[SESSION_TEAM_KEY] = team.pk
            messages.success(request, f"Welcome! Your team “{team.name}” is ready. Start by creating an app.")
            return redirect("licenses:app-list")
    return render(request, "accounts/signup.html", {"form": form})


@sensitive_post_parameters("password")
def invite_accept(request, secret: str):
    invite = services.invite_lookup(secret)
    if invite is None or not invite.is_usable:
        return render(request, "accounts/invite_invalid.html", status=404)
    form = None
    if not request.user.is_authenticated:
        form = InviteSignupForm(request.POST or None, initial={"email": invite.email})
    if request.method == "POST" and (form is None or form.is_valid()):
        try:
            with transaction.atomic():
                user = request.user if form is None else services.user_create(**form.cleaned_data)
                membership = services.invite_accept(secret=secret, user=user)
        except ValidationError as e:
            if form is not None and hasattr(e, "error_dict"):
                apply_errors(form, e)
            else:
                messages.error(request, " ".join(e.messages))
        else:
            if form is not None:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            request.session[SESSION_TEAM_KEY] = membership.team_id
            messages.success(request, f"You joined {membership.team.name} as {membership.get_role_display()}.")
            return redirect("licenses:app-list")
    # An invite addressed to someone else: say so before the click rather than offer a button that fails.
    wrong_account = form is None and bool(invite.email) and invite.email != request.user.email
    return render(
        request, "accounts/invite_accept.html", {"invite": invite, "form": form, "wrong_account": wrong_account}
    )


@login_required
def team_create(request):
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = services.team_create(name=form.cleaned_data["name"], admin=request.user)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            request.session[SESSION_TEAM_KEY] = team.pk
            messages.success(request, f"Team “{team.name}” created; you are its admin.")
            return redirect("licenses:app-list")
    return render(request, "accounts/team_form.html", {"form": form})


@login_required
@require_POST
def team_switch(request):
    membership = Membership.objects.filter(user=request.user, team_id=request.POST.get("team")).first()
    if membership is None:
        messages.error(request, "You are not a member of that team.")
    else:
        request.session[SESSION_TEAM_KEY] = membership.team_id
        messages.success(request, f"Now working in {membership.team.name}.")
    return redirect("licenses:app-list")


@team_view(Perm.READ, write=Perm.ADMIN)
def team_detail(request):
    actor = request.actor
    invite_form = InviteForm(request.POST or None)
    new_invite_url = None
    if request.method == "POST" and invite_form.is_valid():
        try:
            _, secret = services.invite_create(actor=actor, **invite_form.cleaned_data)
        except ValidationError as e:
            apply_errors(invite_form, e)
        else:
            new_invite_url = request.build_absolute_uri(reverse("accounts:invite-accept", args=[secret]))
            invite_form = InviteForm()
    members = list(Membership.objects.filter(team=actor.team).select_related("user"))
    admins = [m.pk for m in members if m.role == Role.ADMIN]
    invites = Invite.objects.filter(team=actor.team, accepted_at__isnull=True, revoked_at__isnull=True)
    return render(
        request,
        "accounts/team_detail.html",
        {
            "members": members,
            # The one admin of a team can be neither demoted nor removed (the services refuse it),
            # so the page offers no control that could only fail.
            "sole_admin_id": admins[0] if len(admins) == 1 else None,
            "invites": invites if actor.can(Perm.ADMIN) else [],
            "invite_form": invite_form,
            "new_invite_url": new_invite_url,
            "role_form": RoleForm(),
        },
    )


@team_view(Perm.ADMIN, write=Perm.ADMIN)
@require_POST
def member_role(request, pk: int):
    membership = get_object_or_404(Membership, pk=pk, team=request.actor.team)
    form = RoleForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError("Choose a valid role.")
        services.membership_set_role(actor=request.actor, membership=membership, role=form.cleaned_data["role"])
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    else:
        messages.success(request, f"{membership.user.email} is now {form.cleaned_data['role']}.")
    return redirect("accounts:team")


@team_view(Perm.ADMIN, write=Perm.ADMIN)
def member_remove(request, pk: int):
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=pk, team=request.actor.team)
    if request.method == "POST":
        try:
            services.membership_remove(actor=request.actor, membership=membership)
        except ValidationError as e:
            messages.error(request, " ".join(e.messages))
        else:
            messages.success(request, f"{membership.user.email} was removed from the team.")
        return redirect("accounts:team")
    return render(
        request,
        "confirm.html",
        {
            "title": f"Remove {membership.user.email}?",
            "message": "They lose access to this team at once, and their API tokens for it stop working.",
            "button": "Remove member",
            "cancel_url": reverse("accounts:team"),
        },
    )


@team_view(Perm.ADMIN, write=Perm.ADMIN)
@require_POST
def invite_revoke(request, pk: int):
    invite = get_object_or_404(Invite, pk=pk, team=request.actor.team)
    services.invite_revoke(actor=request.actor, invite=invite)
    messages.success(request, "The invite link no longer works.")
    return redirect("accounts:team")


@team_view(Perm.READ, write=Perm.READ)
def token_list(request):
    actor = request.actor
    token_form = TokenForm(prefix="token")
    service_form = ServiceAccountForm(prefix="service")
    if request.method == "POST":
        kind = request.POST.get("kind")
        if kind == TokenKind.SERVICE and not actor.can(Perm.ADMIN):
            return render(request, "403.html", status=403)
        # Only the submitted form is bound; the other stays a blank form with all its fields.
        if kind == TokenKind.SERVICE:
            form = service_form = ServiceAccountForm(request.POST, prefix="service")
        else:
            form = token_form = TokenForm(request.POST, prefix="token")
        if form.is_valid():
            try:
                token, secret = services.token_create(actor=actor, kind=kind or TokenKind.USER, **form.token_kwargs())
            except ValidationError as e:
                apply_errors(form, e)
            else:
                return render(request, "accounts/token_created.html", {"token": token, "secret": secret})
    tokens = ApiToken.objects.filter(team=actor.team, kind=TokenKind.USER, user=actor.user)
    service_accounts = ApiToken.objects.filter(team=actor.team, kind=TokenKind.SERVICE)
    return render(
        request,
        "accounts/token_list.html",
        {
            "tokens": tokens,
            "service_accounts": service_accounts,
            "token_form": token_form,
            "service_form": service_form,
        },
    )


@team_view(Perm.READ, write=Perm.READ)
def token_revoke(request, pk: int):
    actor = request.actor
    token = get_object_or_404(ApiToken, pk=pk, team=actor.team, revoked_at__isnull=True)
    mine = token.kind == TokenKind.USER and token.user_id == actor.user.pk
    if not mine and not (token.kind == TokenKind.SERVICE and actor.can(Perm.ADMIN)):
        return render(request, "403.html", status=403)
    if request.method == "POST":
        services.token_revoke(actor=actor, token=token)
        messages.success(request, f"Token “{token.name}” revoked; it is refused from now on.")
        return redirect("accounts:tokens")
    return render(
        request,
        "confirm.html",
        {
            "title": f"Revoke “{token.name}”?",
            "message": f"Anything using the token {token.prefix}… stops working at its next request.",
            "button": "Revoke token",
            "cancel_url": reverse("accounts:tokens"),
        },
    )


AUDIT_PER_PAGE = 50


@team_view(Perm.ADMIN, write=Perm.ADMIN)
def audit_list(request):
    """The team's audit trail for admins, filtered by action (or `prefix.`) and actor."""
    filters = {key: request.GET.get(key, "").strip() for key in ("action", "actor")}
    events = audit_events(request.actor.team, **filters)
    page = Paginator(events, AUDIT_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "accounts/audit_list.html", {"page": page, "filters": filters})


@login_required
@sensitive_post_parameters("current_password", "new_password", "new_password_again")
def password_change(request):
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_password_change(user=request.user, **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            # Keeps this session logged in; every other session's stored hash no longer
            # matches, so Django logs those out at their next request.
            update_session_auth_hash(request, request.user)
            messages.success(request, "Password changed. Your other sessions are logged out.")
            return redirect("accounts:password-change")
    return render(request, "accounts/password_change.html", {"form": form})


@team_view(Perm.ADMIN, write=Perm.ADMIN)
@require_POST
def member_password_reset(request, pk: int):
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=pk, team=request.actor.team)
    try:
        _, secret = services.password_reset_create(actor=request.actor, membership=membership)
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
        return redirect("accounts:team")
    url = request.build_absolute_uri(reverse("accounts:password-reset", args=[secret]))
    return render(request, "accounts/password_reset_created.html", {"member": membership.user, "url": url})


@sensitive_post_parameters("new_password", "new_password_again")
def password_reset(request, secret: str):
    reset = services.password_reset_lookup(secret)
    if reset is None:
        return render(request, "accounts/password_reset_invalid.html", status=404)
    form = PasswordResetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.password_reset_complete(secret=secret, **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, "Password set. Log in with it now.")
            return redirect("accounts:login")
    return render(request, "accounts/password_reset.html", {"reset": reset, "form": form})


class PasswordForgotView(auth_views.PasswordResetView):
    """Django's reset mail, when this portal can send mail; otherwise a pointer to the admin's link.
    The page says the same for known and unknown addresses, so it reveals no accounts."""

    template_name = "accounts/password_forgot.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password-forgot-sent")

    def dispatch(self, request, *args, **kwargs):
        if not settings.EMAIL_URL:
            return render(request, "accounts/password_forgot.html", {"email_off": True})
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        # At most PASSWORD_FORGOT_MAILS_PER_HOUR mails per address, so the page cannot flood an
        # inbox. Past it the page answers as always (it reveals nothing) and sends nothing.
        if lockout.forgot_mail_over_limit(form.cleaned_data["email"]):
            return redirect(self.get_success_url())
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset.html"
    success_url = reverse_lazy("accounts:login")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.password_changed_audit(user=form.user, action="user.password_reset")
        lockout.forget(form.user.email)
        messages.success(self.request, "Password set. Log in with it now.")
        return response
