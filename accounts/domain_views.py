"""Team → Custom domains: the list with each domain's records and status, and the admin's
add, verify, make default and remove. Each view calls one service in
accounts/domain_services.py, as the API does."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts import domain_services
from accounts.access import Perm
from accounts.decorators import team_view
from accounts.forms import DomainForm
from accounts.models import CustomDomain, DomainKind, DomainStatus
from portal.forms import apply_errors


def _at(domain: CustomDomain):
    """Back to the list, scrolled to the domain acted on."""
    return redirect(f"{reverse('accounts:domains')}#domain-{domain.pk}")


@team_view(Perm.READ, write=Perm.ADMIN)
def domain_list(request):
    actor = request.actor
    form = DomainForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            domain = domain_services.domain_add(actor=actor, **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, f"Added {domain.domain}. Create its two DNS records, then press Verify.")
            return _at(domain)
    rows = list(CustomDomain.objects.filter(team=actor.team))
    for row in rows:
        row.records = domain_services.domain_records(row)
        row.own_host = domain_services.own_host(row.kind)
    return render(
        request,
        "accounts/domain_list.html",
        {
            "domains": rows,
            "form": form,
            "own_hosts": {kind: domain_services.own_host(kind) for kind in DomainKind.values},
        },
    )


@team_view(Perm.ADMIN, write=Perm.ADMIN)
@require_POST
def domain_verify(request, pk: int):
    domain = get_object_or_404(CustomDomain, pk=pk, team=request.actor.team)
    domain = domain_services.domain_verify(actor=request.actor, domain=domain)
    if domain.status == DomainStatus.VERIFIED and not domain.check_error:
        messages.success(request, f"{domain.domain} is verified: the portal answers on it.")
    elif domain.status == DomainStatus.VERIFIED:
        messages.error(request, f"{domain.domain} stays verified; it could not be checked now: {domain.check_error}.")
    else:
        messages.error(request, f"{domain.domain} is {domain.status}: {domain.check_error}.")
    return _at(domain)


@team_view(Perm.ADMIN, write=Perm.ADMIN)
@require_POST
def domain_default(request, pk: int):
    domain = get_object_or_404(CustomDomain, pk=pk, team=request.actor.team)
    try:
        domain = domain_services.domain_set_default(actor=request.actor, domain=domain)
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    else:
        messages.success(request, f"Customers are now shown {domain.domain} for the {domain.kind}.")
    return _at(domain)


@team_view(Perm.ADMIN, write=Perm.ADMIN)
def domain_remove(request, pk: int):
    domain = get_object_or_404(CustomDomain, pk=pk, team=request.actor.team)
    if request.method == "POST":
        domain_services.domain_remove(actor=request.actor, domain=domain)
        messages.success(request, f"{domain.domain} was removed; the portal no longer answers on it.")
        return redirect("accounts:domains")
    own = domain_services.own_host(domain.kind)
    if domain.is_default and domain.status == DomainStatus.VERIFIED:
        message = (
            f"The portal stops answering on {domain.domain} at once, and customers are shown {own} again: "
            "pull secrets, license files and install kits they already have keep naming the old host."
        )
    else:
        message = f"The portal stops answering on {domain.domain}. Adding it again gives it a new TXT value."
    return render(
        request,
        "confirm.html",
        {
            "title": f"Remove {domain.domain}?",
            "message": message,
            "button": "Remove domain",
            "cancel_url": reverse("accounts:domains"),
        },
    )
