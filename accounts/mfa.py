"""The second factor of an API login, checked by allauth.mfa exactly as its web login does.

A user who turned on two-factor authentication on the account pages must send
a code from the authenticator app (TOTP) or an unused recovery code with the
password; allauth's own form validates it, spends it (a TOTP code once per
period, a recovery code for good) and applies its failed-attempt limit.
"""

from allauth.core import context
from allauth.mfa.base.forms import AuthenticateForm
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from ninja.errors import HttpError

from voiceproj.errors import CodedAuthenticationError

# The authenticators that make allauth's web login ask for a second factor
# (allauth.mfa.stages.AuthenticateStage); recovery codes alone do not.
SECOND_FACTORS = [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]

MFA_REQUIRED = (
    "Two-factor authentication is on for this account: send the 6-digit code "
    "from your authenticator app, or an unused recovery code, as 'code'."
)
MFA_INVALID = "The two-factor code is wrong, expired or already used."
MFA_LOCKED = "Too many wrong two-factor codes. Try again in a few minutes."


def require_second_factor(request: HttpRequest, user: AbstractBaseUser, code: str | None) -> None:
    """Return if ``user`` has no second factor or ``code`` is a valid one; raise otherwise.

    Call only after the password was checked, so codes cannot be guessed without it.
    """
    if not is_mfa_enabled(user, types=SECOND_FACTORS):
        return
    if not code:
        raise CodedAuthenticationError(MFA_REQUIRED, code="mfa_required")
    with context.request_context(request):
        form = AuthenticateForm(data={"code": code}, user=user)
        valid = form.is_valid()
    if form.has_error("code", "too_many_login_attempts"):
        raise HttpError(429, MFA_LOCKED)
    if not valid:
        raise CodedAuthenticationError(MFA_INVALID, code="mfa_invalid")
    # What allauth's web login records after a code (form.save() would also
    # write the browser session's login history, which an API login has none of).
    form.authenticator.record_usage()
