from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import domain_views, views

app_name = "accounts"

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("invite/<str:secret>/", views.invite_accept, name="invite-accept"),
    path("account/password/", views.password_change, name="password-change"),
    path("password/forgot/", views.PasswordForgotView.as_view(), name="password-forgot"),
    path(
        "password/forgot/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_forgot_sent.html"),
        name="password-forgot-sent",
    ),
    path("password/reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password-reset-confirm"),
    path("password-reset/<str:secret>/", views.password_reset, name="password-reset"),
    path("team/", views.team_detail, name="team"),
    path("team/audit/", views.audit_list, name="audit"),
    path("team/members/<int:pk>/role/", views.member_role, name="member-role"),
    path("team/members/<int:pk>/password-reset/", views.member_password_reset, name="member-password-reset"),
    path("team/members/<int:pk>/remove/", views.member_remove, name="member-remove"),
    path("team/invites/<int:pk>/revoke/", views.invite_revoke, name="invite-revoke"),
    path("team/domains/", domain_views.domain_list, name="domains"),
    path("team/domains/<int:pk>/verify/", domain_views.domain_verify, name="domain-verify"),
    path("team/domains/<int:pk>/default/", domain_views.domain_default, name="domain-default"),
    path("team/domains/<int:pk>/remove/", domain_views.domain_remove, name="domain-remove"),
    path("teams/new/", views.team_create, name="team-create"),
    path("teams/switch/", views.team_switch, name="team-switch"),
    path("tokens/", views.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
]
