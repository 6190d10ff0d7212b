"""`portal airgap verify|push`: the customer's side of an air-gap bundle.

`verify` proves a bundle complete and signed by the portal (its public key fetched from
PORTAL_URL without a token, or given with --public-key to work offline). `push` needs no
portal at all: it checks the bundle, pushes every image by digest to the customer's registry
(portal_cli/airgap_push.py) and, with --out, writes the install kit (portal_cli/airgap_kit.py).

Why `push` does not insist on the signature: it runs inside the air gap, where the portal's
key cannot be fetched, and the trust decision belongs where the bundle was downloaded
(`portal airgap verify`, online). `push` always checks SHA256SUMS and that every image is
whole, so damage on the way in is refused before anything is pushed; with --public-key it
checks the signature too, which is what to do when the bundle crossed hands one does not trust.
"""

from __future__ import annotations

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from portal_cli import airgap_kit
from portal_cli import bundleformat as fmt
from portal_cli.airgap_push import PushError, Registry, human, parse_destination, push_bundle
from portal_cli.context import CliError, client, common_options, output_format
from portal_cli.licensefile import LicenseFileError, load_public_key
from portal_cli.output import Column, emit_json, record, table, text
from portal_cli.secret_input import read_stdin_secret

MAX_KEY_BYTES = 64 * 1024


def _key_from_file(path: str) -> Ed25519PublicKey:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_BYTES)
    except OSError as e:
        raise CliError(f"--public-key: cannot read {path}: {e.strerror}", exit_code=2) from None
    try:
        return load_public_key(data)
    except LicenseFileError as e:
        raise CliError(f"--public-key {path}: {e}", exit_code=2) from None


def _portal_key() -> Ed25519PublicKey:
    """The portal's public key from PORTAL_URL, as `portal license verify` fetches it."""
    try:
        return load_public_key(client(anonymous=True).get_text("license-signing-key"))
    except LicenseFileError as e:
        raise CliError(f"the portal at PORTAL_URL served no usable public key: {e}") from None


def _platforms(image: fmt.BundleImage) -> list[str]:
    platforms = image.facts.get("platforms")
    return [p for p in platforms if isinstance(p, str)] if isinstance(platforms, list) else []


def _size(image: fmt.BundleImage) -> int | None:
    size = image.facts.get("size")
    return size if isinstance(size, int) else None


IMAGE_COLUMNS = [
    Column("IMAGE", "reference"),
    Column("DIGEST", "digest"),
    Column("PLATFORMS", "platforms"),
    Column("SIZE", lambda r: human(r["size"]) if r.get("size") is not None else None),
]
SUMMARY_FIELDS = [
    Column("valid", lambda s: "yes: complete, undamaged, signed by the portal's key"),
    Column("app", "app"),
    Column("release", "release"),
    Column("images", lambda s: len(s["images"])),
    Column("blobs", "blobs"),
    Column("files", lambda s: len(s["files"])),
    Column("size", lambda s: human(s["size"])),
    Column("key id", "key_id"),
]


def _summary(verified: fmt.VerifiedBundle) -> dict:
    metadata = verified.metadata if isinstance(verified.metadata, dict) else {}
    release = metadata.get("release") if isinstance(metadata.get("release"), dict) else {}
    version = release.get("version")
    return {
        "valid": True,
        "key_id": verified.key_id,
        "app": metadata.get("app"),
        "release": f"{release.get('sequence')}" + (f" ({version})" if version else ""),
        "images": [
            {
                "reference": image.reference,
                "digest": image.digest,
                "platforms": _platforms(image),
                "size": _size(image),
                "repository": image.facts.get("repository"),
            }
            for image in verified.images
        ],
        "blobs": verified.blobs,
        "files": [name[len(fmt.INSTALL) :] for name in verified.files],
        "size": verified.size,
    }


@click.command("verify")
@click.argument("path", metavar="BUNDLE", type=click.Path(dir_okay=False))
@click.option(
    "--public-key",
    "key_path",
    metavar="PEM-FILE",
    type=click.Path(dir_okay=False),
    help="The portal's public key; default: fetched from PORTAL_URL (no token needed).",
)
@common_options
def verify(path: str, key_path: str | None) -> None:
    """Check an air-gap bundle: complete, undamaged and signed by the portal. Exit 0 when
    valid, 1 (with the reason) when not."""
    output = output_format()
    public_key = _key_from_file(key_path) if key_path else _portal_key()
    try:
        verified = fmt.verify_bundle(path, public_key)
    except fmt.BundleError as e:
        if output == "json":
            emit_json({"valid": False, "reason": str(e)})
        raise CliError(f"invalid bundle: {text(str(e))}") from None
    summary = _summary(verified)
    if output == "json":
        emit_json(summary)
        return
    click.echo(record(summary, SUMMARY_FIELDS))
    click.echo()
    click.echo(table(summary["images"], IMAGE_COLUMNS))


def _credentials(dest_creds: str | None, from_stdin: bool) -> tuple[str, str]:
    if dest_creds is not None and from_stdin:
        raise CliError("give --dest-creds or --dest-creds-stdin, not both", exit_code=2)
    option = "--dest-creds-stdin" if from_stdin else "--dest-creds"
    value = read_stdin_secret(option, what="registry credentials (USER:PASS)") if from_stdin else dest_creds
    if value is None:
        return "", ""
    username, colon, password = value.partition(":")
    if not username or not colon:
        raise CliError(f"{option}: give USER:PASS, the user name and password joined by a colon", exit_code=2)
    return username, password


PUSHED_COLUMNS = [
    Column("IMAGE", "destination"),
    Column("TAG", lambda r: r["tag"].rpartition(":")[2] if r["tag"] else None),
    Column("BLOBS PUSHED", "blobs_pushed"),
    Column("ALREADY THERE", "blobs_skipped"),
    Column("BYTES", lambda r: human(r["bytes_pushed"])),
]


@click.command("push")
@click.argument("path", metavar="BUNDLE", type=click.Path(dir_okay=False))
@click.option("--registry", "registry_value", required=True, metavar="HOST[/NAMESPACE]", help="Your registry.")
@click.option(
    "--dest-creds",
    metavar="USER:PASS",
    help="Your registry's credentials (visible in `ps`: prefer --dest-creds-stdin).",
)
@click.option("--dest-creds-stdin", is_flag=True, help="Read USER:PASS from stdin (or a hidden prompt).")
@click.option(
    "--dest-tls-verify",
    "tls_verify",
    type=click.BOOL,
    default=True,
    metavar="BOOL",
    help="false: do not check the registry's TLS certificate, and allow plain http.",
)
@click.option("--out", "out_dir", metavar="DIR", help="Write the install kit (kubectl apply -k DIR) here.")
@click.option(
    "--public-key",
    "key_path",
    metavar="PEM-FILE",
    type=click.Path(dir_okay=False),
    help="Also check the bundle's signature with the portal's public key.",
)
@common_options
def push(
    path: str,
    registry_value: str,
    dest_creds: str | None,
    dest_creds_stdin: bool,
    tls_verify: bool,
    out_dir: str | None,
    key_path: str | None,
) -> None:
    """Push every image of an air-gap bundle, by digest, to your registry; no portal needed.

    Images go to HOST[/NAMESPACE]/<repository> (the tag they were listed with too); blobs the
    registry has are skipped. The bundle is checked first, and a damaged one is refused
    before anything is pushed. With --out DIR, also writes the install kit: the release's
    manifests and a kustomization.yaml sending every image to your registry by digest.
    """
    output = output_format()
    try:
        destination = parse_destination(registry_value)
    except ValueError as e:
        raise CliError(f"--registry: {e}", exit_code=2) from None
    username, password = _credentials(dest_creds, dest_creds_stdin)
    if out_dir:
        try:
            airgap_kit.check_out_dir(out_dir)
        except ValueError as e:
            raise CliError(str(e), exit_code=2) from None
    public_key = _key_from_file(key_path) if key_path else None

    def progress(line: str) -> None:
        click.echo(text(line), err=True)

    progress(f"checking {path} …")
    try:
        verified = fmt.verify_bundle(path, public_key)
    except fmt.BundleError as e:
        raise CliError(f"refusing the bundle, nothing was pushed: {text(str(e))}") from None
    if public_key is None:
        progress("the bundle is whole (SHA256SUMS); its signature was not checked: pass --public-key to check it")
    else:
        progress(f"the bundle is whole and signed by {verified.key_id}")

    registry = Registry(destination.host, username=username, password=password, tls_verify=tls_verify)
    try:
        with fmt.BundleReader(path) as reader:
            registry.connect()
            reports = push_bundle(reader, verified.images, destination, registry, progress=progress)
            kit = airgap_kit.kit_files(reader, verified, destination) if out_dir else {}
    except (PushError, fmt.BundleError) as e:
        raise CliError(text(str(e))) from None
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror or e}") from None
    finally:
        registry.close()

    if out_dir:
        try:
            airgap_kit.write_kit(out_dir, kit)
        except OSError as e:
            raise CliError(f"--out: cannot write the kit in {out_dir}: {e.strerror or e}") from None
    rows = [report.as_json() for report in reports]
    totals = {key: sum(row[key] for row in rows) for key in ("blobs_pushed", "blobs_skipped", "bytes_pushed")}
    if output == "json":
        emit_json(
            {
                "registry": registry_value,
                "signature_checked": public_key is not None,
                "key_id": verified.key_id or None,
                "images": rows,
                **totals,
                "kit": out_dir,
            }
        )
        return
    click.echo(table(rows, PUSHED_COLUMNS))
    click.echo(
        f"{len(rows)} image(s) in {destination.host}: {totals['blobs_pushed']} blob(s) pushed "
        f"({human(totals['bytes_pushed'])}), {totals['blobs_skipped']} already there."
    )
    if out_dir:
        click.echo(f"Install kit written to {out_dir}; apply it with: kubectl apply -k {out_dir}")
