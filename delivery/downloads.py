"""The license's download log: one row per customer download (an air-gap bundle, an install
kit), refused ones included when the license is known, and what the pages and the API read."""

from __future__ import annotations

from django.db.models import QuerySet

from delivery import customer_auth
from delivery.models import Download
from licenses.models import License, Release

RANGE_MAX = 100  # Download.range's length: a longer header is kept cut
USER_AGENT_MAX = 200
SEQUENCE_MAX = 2**31 - 1  # the column's range; a larger number asked for is no release anyway


def download_record(
    request,
    license: License,
    *,
    kind: str,
    status: int,
    release: Release | None = None,
    sequence: int | None = None,
    bytes_sent: int = 0,
) -> Download:
    """Write the row of one download (`sequence` defaults to the release's)."""
    if release is not None:
        sequence = release.sequence
    elif sequence is not None and not 0 <= sequence <= SEQUENCE_MAX:
        sequence = None
    return Download.objects.create(
        license=license,
        kind=kind,
        release=release,
        sequence=sequence,
        range=request.headers.get("Range", "")[:RANGE_MAX],
        status=status,
        bytes=bytes_sent,
        address=customer_auth.client_address(request) or None,
        user_agent=request.headers.get("User-Agent", "")[:USER_AGENT_MAX],
    )


def download_sent(download_id: int, bytes_sent: int) -> None:
    """What a streamed download really sent, once it ends (finished, or the client hung up)."""
    Download.objects.filter(pk=download_id).update(bytes=bytes_sent)


def license_downloads(license: License) -> QuerySet[Download]:
    return license.downloads.select_related("release")
