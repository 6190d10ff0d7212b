"""portal/dns.py against a real dnsmasq, and PORTAL_DNS_NAMESERVERS's parsing."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal import dns
from portal.env import nameserver_address


def test_a_record_s_values_are_returned(dns_server):
    dns_server.serve({"_portal-challenge.proxy.vendor.test": ["abc", "def"]})
    assert sorted(dns.txt_values("_portal-challenge.proxy.vendor.test")) == ["abc", "def"]


def test_a_missing_name_is_no_values(dns_server):
    dns_server.serve({"_portal-challenge.other.vendor.test": "abc"})
    assert dns.txt_values("_portal-challenge.proxy.vendor.test") == []


def test_a_name_with_no_txt_record_is_no_values(dns_server):
    # The name the CNAME goes on, not the challenge name: no TXT record there.
    dns_server.serve({"_portal-challenge.proxy.vendor.test": "abc"})
    assert dns.txt_values("proxy.vendor.test") == []


def test_a_refusing_name_server_is_an_error_naming_it(dns_server):
    with pytest.raises(dns.DnsError) as error:
        dns.txt_values("_portal-challenge.proxy.vendor.example")  # outside the zone dnsmasq serves
    assert str(error.value) == (
        f"the name server {dns_server.address} answered REFUSED for _portal-challenge.proxy.vendor.example"
    )


def test_a_name_server_that_does_not_answer_is_an_error_naming_it(dns_server):
    dns_server.stop()
    started = time.monotonic()
    with pytest.raises(dns.DnsError) as error:
        dns.txt_values("_portal-challenge.proxy.vendor.test")
    assert str(error.value) == f"the name server {dns_server.address} did not answer within 3 s"
    assert time.monotonic() - started < dns.LOOKUP_SECONDS + 1.5


def test_several_name_servers_are_named_together(dns_server, settings):
    dns_server.stop()
    settings.PORTAL_DNS_NAMESERVERS = [dns_server.address, "[::1]:9"]
    with pytest.raises(dns.DnsError, match=rf"^the name servers {dns_server.address}, \[::1\]:9 did not answer"):
        dns.txt_values("_portal-challenge.proxy.vendor.test")


def test_the_second_name_server_answers_when_the_first_is_down(dns_server, settings):
    dns_server.serve({"_portal-challenge.proxy.vendor.test": "abc"})
    settings.PORTAL_DNS_NAMESERVERS = ["127.0.0.1:9", dns_server.address]
    assert dns.txt_values("_portal-challenge.proxy.vendor.test") == ["abc"]


def test_a_bad_entry_in_the_setting_is_named_at_lookup(settings):
    settings.PORTAL_DNS_NAMESERVERS = ["dns.example.com"]
    with pytest.raises(ImproperlyConfigured, match=r"PORTAL_DNS_NAMESERVERS: 'dns.example.com' is not ip\[:port\]"):
        dns.txt_values("_portal-challenge.proxy.vendor.test")


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]", ("::1", 53)),
        ("[2001:db8::1]:5353", ("2001:db8::1", 5353)),
        (" 10.0.0.2 ", ("10.0.0.2", 53)),
    ],
)
def test_name_server_entries(entry, parsed):
    assert nameserver_address(entry) == parsed


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("dns.example.com", "'dns.example.com' is not an IP address"),
        ("127.0.0.1:0", "'0' is not a port from 1 to 65535"),
        ("127.0.0.1:99999", "'99999' is not a port from 1 to 65535"),
        ("127.0.0.1:dns", "'dns' is not a port"),
        ("[::1]5353", "an IPv6 address with a port is written [addr]:port"),
        ("[::1", "an IPv6 address with a port is written [addr]:port"),
        ("[::1]:", "a port is missing after the colon"),
        ("2001:db8::1:5353:x", "is not an IP address"),
    ],
)
def test_bad_name_server_entries_say_why(entry, reason):
    with pytest.raises(ValueError) as error:
        nameserver_address(entry)
    assert reason in str(error.value)


def test_a_bad_setting_stops_start_up_with_its_name():
    """Settings load in a fresh interpreter, as at start-up."""
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "PORTAL_DNS_NAMESERVERS": "127.0.0.1:5353, resolver.local",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert (
        "ImproperlyConfigured: PORTAL_DNS_NAMESERVERS: 'resolver.local' is not ip[:port] "
        "('resolver.local' is not an IP address); IPv6 with a port: [addr]:port"
    ) in result.stderr
