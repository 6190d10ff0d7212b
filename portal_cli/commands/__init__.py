"""One module per command group; each talks to one family of /api/v1/ endpoints.

New groups (`registry` for /api/v1/external-registries/, `license` for
/api/v1/apps/{slug}/licenses/) go here as modules and are added in `portal_cli.main`.
"""
