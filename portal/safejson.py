"""json.loads for bytes from outside the portal (upstream registries, API clients).

Python's json raises RecursionError, which is no ValueError, on a document nested a few
thousand levels deep ("[" * 100000 is 100 KB): every caller that catches ValueError for
"does not parse" would answer 500 instead. Here it is a ValueError like any other.
"""

from __future__ import annotations

import json
from typing import Any


def loads(data: str | bytes | bytearray) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
