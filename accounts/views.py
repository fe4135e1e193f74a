"""Account pages of our own beside allauth's: "log out everywhere"."""

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from .auth import SignedInRequest
from .tokens import revoke_all_tokens


@require_POST
@login_required
def logout_everywhere(request: SignedInRequest) -> HttpResponse:
    """End every web session and API token of the user, this browser's included."""
    revoke_all_tokens(request.user)
    logout(request)
    messages.success(request, "You are logged out on every device and app.")
    return redirect("account_login")
