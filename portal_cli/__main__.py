"""`python -m portal_cli` runs the CLI."""

from __future__ import annotations

from portal_cli.main import main

if __name__ == "__main__":
    main()
