"""Air-gap bundles: every image of a release by digest, its files and a signed SHA256SUMS in
one tar (format: portal_cli/bundleformat.py). bundles.py asks for one and finds it, build.py
builds it on a Celery worker, layout.py writes the tar, storage.py says where it is kept,
download.py serves it to a customer."""
