"""The registry token key is made once however many processes start together (`make run`'s
two web workers on a fresh var/): every process signs with the same key, and its certificate
(which Distribution trusts) belongs to that key."""

from __future__ import annotations

import json
import subprocess
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from portal import registry_tokens

STARTER = """
import json, sys
from portal import registry_tokens
key = registry_tokens._load.__wrapped__(sys.argv[1])
print(json.dumps({"kid": key.kid}))
"""


def test_processes_starting_together_agree_on_one_key_and_its_certificate(tmp_path):
    key_file = tmp_path / "var" / "token_signing_key.pem"
    processes = [
        subprocess.Popen([sys.executable, "-c", STARTER, str(key_file)], stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    kids = {json.loads(p.communicate(timeout=60)[0])["kid"] for p in processes}
    assert all(p.returncode == 0 for p in processes)
    assert len(kids) == 1
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    certificate = x509.load_pem_x509_certificate(key_file.with_suffix(".crt").read_bytes())
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()
    assert kids == {registry_tokens.libtrust_key_id(key.public_key())}
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert not [p.name for p in key_file.parent.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_a_key_made_by_another_process_while_waiting_is_kept(tmp_path):
    key_file = tmp_path / "token_signing_key.pem"
    registry_tokens._create_key(key_file, key_file.with_suffix(".crt"))
    first = key_file.read_bytes()
    registry_tokens._create_key(key_file, key_file.with_suffix(".crt"))  # the loser of a race
    assert key_file.read_bytes() == first
