"""Per-account lockout after repeated failed password logins, from any address.

After LOGIN_FAILURE_LIMIT failures within a LOGIN_FAILURE_WINDOW, an account's password logins
are refused for LOGIN_COOLDOWN seconds, even with the right password; API tokens and license
IDs are not passwords and keep working. Counts live in Django's cache (Redis when REDIS_URL is
set, files otherwise), so every process sees the same ones. Unknown emails are counted and
locked exactly like real ones: the answer never tells whether an account exists.

Counting hangs on Django's `user_login_failed` signal, so every `authenticate()` call counts;
`LockoutGuard` (first in AUTHENTICATION_BACKENDS) refuses a locked account at every such door,
and the login page and the token service check first to answer 429 with the wait.
Like the token limiter, this fails open when the cache is down.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver

from portal import ratelimit

logger = logging.getLogger(__name__)


class AccountLocked(Exception):
    def __init__(self, seconds: int):
        self.seconds = seconds
        minutes = max(1, math.ceil(seconds / 60))
        super().__init__(
            f"Too many failed attempts for this account; try again in {minutes} minute{'s' if minutes > 1 else ''}."
        )


def normalize(email: str) -> str:
    return (email or "").strip().lower()


def _key(kind: str, email: str) -> str:
    # Hashed: no email addresses (or passwords typed into the email field) in cache keys.
    return f"login-{kind}:" + hashlib.sha256(normalize(email).encode()).hexdigest()[:40]


def check(email: str) -> None:
    """Raise AccountLocked while `email`'s password logins are locked."""
    try:
        until = caches["default"].get(_key("locked", email))
    except Exception as e:
        logger.warning("login lockout unavailable (%s); allowing the attempt", type(e).__name__)
        return
    left = math.ceil(until - time.time()) if until else 0
    if left > 0:
        raise AccountLocked(left)


def forget(email: str) -> None:
    """Unlock `email` and forget its failures: its owner just set a new password through a
    reset link, which proves more than a guesser has."""
    try:
        caches["default"].delete_many(
            [_key("locked", email), ratelimit.slot(_key("failures", email), settings.LOGIN_FAILURE_WINDOW)]
        )
    except Exception as e:
        logger.warning("login lockout unavailable (%s); it ends on its own", type(e).__name__)


def record_failure(email: str, *, address: str = "") -> None:
    """Count a failed password login for `email`; at the limit, lock it (and audit that once)."""
    cooldown = settings.LOGIN_COOLDOWN
    cache = caches["default"]
    try:
        failures = ratelimit.hit(cache, _key("failures", email), window=settings.LOGIN_FAILURE_WINDOW)
        if failures < settings.LOGIN_FAILURE_LIMIT:
            return
        # `add`: only the first process to lock it records the lockout; later failures find it locked.
        if not cache.add(_key("locked", email), time.time() + cooldown, timeout=cooldown):
            return
    except Exception as e:
        logger.warning("login lockout unavailable (%s); failure not counted", type(e).__name__)
        return
    _audit_lockout(normalize(email), failures=failures, seconds=cooldown, address=address)


def _audit_lockout(email: str, *, failures: int, seconds: int, address: str) -> None:
    from accounts import services
    from accounts.access import Actor

    user = get_user_model().objects.filter(email=email).first()
    if user is None:  # nobody's account: nothing to audit, and no guessed string in the log
        logger.warning("an unknown account is locked out for %ss after %s failed logins", seconds, failures)
        return
    logger.warning("account %s is locked out for %ss after %s failed logins", email, seconds, failures)
    for membership in services.memberships_of(user):
        # The actor is whoever kept guessing: unknown.
        services.audit(
            actor=Actor(team=membership.team, role=""),
            action="account.locked",
            target=email,
            failures=failures,
            seconds=seconds,
            last_address=address,
        )


@receiver(user_login_failed, dispatch_uid="accounts.lockout")
def _count_failed_login(sender, credentials: dict, request=None, **kwargs) -> None:
    email = credentials.get("username") or credentials.get(get_user_model().USERNAME_FIELD)
    if email:
        record_failure(email, address=request.META.get("REMOTE_ADDR", "") if request is not None else "")


class LockoutGuard:
    """First authentication backend: a locked account's password is refused at every door
    that calls `authenticate()`, including ones added later. (No `get_user`: sessions keep
    naming the backend that really authenticated.)"""

    def authenticate(self, request, username: str | None = None, password: str | None = None, **kwargs):
        email = username or kwargs.get(get_user_model().USERNAME_FIELD)
        if email and password is not None:
            try:
                check(email)
            except AccountLocked:
                raise PermissionDenied from None
        return None


PASSWORD_FORGOT_MAILS_PER_HOUR = 3


def forgot_mail_over_limit(email: str) -> bool:
    """Count one reset mail asked for this address; True past the hourly limit. Without the
    shared cache nothing is counted (the mail goes out)."""
    try:
        count = ratelimit.hit(caches["default"], _key("forgot-mail", email), window=3600)
    except Exception:
        logger.warning("shared cache unavailable; reset mails are not counted")
        return False
    if count > PASSWORD_FORGOT_MAILS_PER_HOUR:
        logger.warning("reset mails for one address over the hourly limit; not sent")
        return True
    return False
