"""Sample release files (a settings document with images:, a Deployment) and the small helpers
the release tests share: a .tar.gz of files, and a release made with release_create."""

from __future__ import annotations

import io
import json
import tarfile

from accounts.access import Actor
from licenses import releases
from licenses.models import App, Release

# Two images, one public and one on the portal's own registry; no other settings.
IMAGES = """\
images:
- source: public
  name: redis
  tag: "7.2"
- source: replicated
  name: worker
  tag: 1.4.2
"""
SETTINGS = IMAGES + "additionalNamespaces: [monitoring]\n"
# Runs redis:7.2, which IMAGES lists.
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  template:
    spec:
      containers:
      - name: api
        image: redis:7.2
"""
FILES = {"app.yaml": SETTINGS, "manifests/api.yaml": DEPLOYMENT}
EMPTY = {"app.yaml": "images: []\n"}  # no images: ready at once


def tarball(files: dict[str, str], *, top: str = "") -> bytes:
    """A .tar.gz holding `files` (path → text), each path below `top` (e.g. "acme-1.0/")."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(top + path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def create_release(actor: Actor, app: App, files: dict[str, str] | None = None, **kwargs) -> Release:
    """A release of `files` (EMPTY by default) made with release_create; `kwargs` go to it."""
    release, _ = releases.release_create(actor=actor, app=app, files=files or EMPTY, **kwargs)
    return release


def settings_file(*images: dict) -> str:
    """A settings file listing `images` (dicts of source, name, tag, digest) as a vendor writes it."""
    lines = ["images:"]
    for image in images:
        lines.append(f"- source: {image['source']}")
        lines += [f"  {key}: {json.dumps(value)}" for key, value in image.items() if key != "source"]
    return "\n".join(lines) + "\n"
