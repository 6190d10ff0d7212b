"""'Forgot your password?': Django's reset mail when the portal can send mail."""

from __future__ import annotations

import re
import secrets

import pytest
from django.core import mail
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from portal.env import email_settings
from tests import factories

pytestmark = pytest.mark.django_db

FORGOT = reverse("accounts:password-forgot")
NEW = "a-Mailed-passw0rd-1"


@pytest.fixture(autouse=True)
def _fresh_mail_counts():
    """The hourly reset-mail counts live in the shared cache and outlive a run."""
    caches["default"].clear()


@pytest.fixture
def mail_on(settings):
    settings.EMAIL_URL = "console://"  # pytest-django keeps the mails in mail.outbox


def test_the_login_page_links_to_forgot_password(client):
    assert FORGOT.encode() in client.get(reverse("accounts:login")).content


def test_without_email_the_page_points_to_an_admin_and_sends_nothing(client, settings, admin):
    settings.EMAIL_URL = ""
    response = client.post(FORGOT, {"email": admin.email})
    assert response.status_code == 200
    assert "Ask an admin of your team for a password reset link" in response.content.decode()
    assert mail.outbox == []


def test_a_mailed_link_sets_a_new_password_once(client, mail_on, admin, team):
    response = client.post(FORGOT, {"email": "ADMIN@acme.test"})
    assert response.status_code == 302 and response["Location"] == reverse("accounts:password-forgot-sent")
    (message,) = mail.outbox
    assert message.to == [admin.email] and message.subject == "Reset your vendor portal password"
    link = re.search(r"http://testserver(/password/reset/\S+/)", message.body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and b"Set a new password" in form_page.content
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW})
    assert done.status_code == 302 and done["Location"] == reverse("accounts:login")
    admin.refresh_from_db()
    assert admin.check_password(NEW)
    assert AuditEvent.objects.filter(team=team, action="user.password_reset", actor=admin.email).count() == 1
    again = Client().get(link, follow=True)
    assert b"does not work" in again.content


def test_an_unknown_address_looks_the_same_and_sends_nothing(client, mail_on, admin):
    response = client.post(FORGOT, {"email": "nobody@acme.test"})
    assert response["Location"] == reverse("accounts:password-forgot-sent")
    assert mail.outbox == []


def test_a_weak_password_on_the_mailed_link_is_a_field_error(client, mail_on, admin):
    client.post(FORGOT, {"email": admin.email})
    link = re.search(r"http://testserver(/password/reset/\S+/)", mail.outbox[0].body).group(1)
    url = client.get(link, follow=True).redirect_chain[-1][0]
    response = client.post(url, {"new_password1": "1234567", "new_password2": "1234567"})
    assert any("too short" in e for e in response.context["form"].errors["new_password2"])
    admin.refresh_from_db()
    assert admin.check_password(factories.PASSWORD)


def test_email_url_forms():
    assert email_settings("smtp+tls://me%40x.test:p%3Ass@mail.x.test:587") == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "mail.x.test",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "me@x.test",
        "EMAIL_HOST_PASSWORD": "p:ss",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
    }
    assert email_settings("smtps://mail.x.test")["EMAIL_PORT"] == 465
    assert email_settings("console://")["EMAIL_BACKEND"].endswith("console.EmailBackend")
    assert email_settings("")["EMAIL_BACKEND"].endswith("dummy.EmailBackend")
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL: use smtp://"):
        email_settings("http://mail.x.test")


def test_an_address_gets_at_most_three_reset_mails_an_hour_and_the_page_never_says_so(client, mail_on, team):
    member = factories.add_member(team, "developer", factories.make_user(f"m{secrets.token_hex(6)}@acme.test"))
    for _ in range(5):
        response = client.post(FORGOT, {"email": member.email})
        assert response.status_code == 302 and response["Location"] == reverse("accounts:password-forgot-sent")
    assert len(mail.outbox) == 3
