"""TXT lookups for custom domains, through the name servers in PORTAL_DNS_NAMESERVERS (the
system resolver when that is empty). A real resolver (dnspython) rather than the socket
module: the OS's getaddrinfo cannot ask for TXT records nor be pointed at another server.

A name with no such record is an answer ([]); a server that does not answer, or answers
with an error, is a DnsError that names the server, so the vendor sees which one failed.
"""

from __future__ import annotations

import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from portal.env import nameserver_address

# The whole lookup, retries included: a page waits for it, and a TXT record on a working
# server answers in milliseconds, so a few seconds only ever separate "down" from "slow".
LOOKUP_SECONDS = 3.0


class DnsError(Exception):
    """The lookup got no usable answer; the message names the name server and what it did."""


def _resolver() -> tuple[dns.resolver.Resolver, str]:
    """A resolver for this lookup, and how to name its name servers in an error."""
    entries = settings.PORTAL_DNS_NAMESERVERS
    if not entries:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise DnsError(
                "this machine has no name servers configured; set PORTAL_DNS_NAMESERVERS to ip[:port]"
            ) from None
        return resolver, ", ".join(resolver.nameservers) + " (the system's)"
    servers = []
    for entry in entries:
        try:
            address, port = nameserver_address(entry)
        except ValueError as e:
            raise ImproperlyConfigured(f"PORTAL_DNS_NAMESERVERS: {entry!r} is not ip[:port] ({e})") from None
        servers.append(dns.nameserver.Do53Nameserver(address, port))
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = servers
    return resolver, ", ".join(entries)


def _servers_word(label: str) -> str:
    return "name servers" if "," in label else "name server"


def txt_values(name: str) -> list[str]:
    """The values of the TXT records at `name` (each record's strings joined, as RFC 7208 reads
    them); [] when the name or its TXT records do not exist. DnsError when no server answered."""
    resolver, label = _resolver()
    try:
        answer = resolver.resolve(name, dns.rdatatype.TXT, lifetime=LOOKUP_SECONDS, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.resolver.LifetimeTimeout:
        raise DnsError(f"the {_servers_word(label)} {label} did not answer within {LOOKUP_SECONDS:g} s") from None
    except dns.resolver.NoNameservers as e:
        # Every server answered with an error (SERVFAIL, REFUSED …): say which, once each.
        said = sorted({str(error[3]) for error in e.kwargs.get("errors", [])}) or ["an error"]
        raise DnsError(f"the {_servers_word(label)} {label} answered {' and '.join(said)} for {name}") from None
    except dns.exception.DNSException as e:
        raise DnsError(f"looking up {name} at the {_servers_word(label)} {label} failed: {e}") from None
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]
