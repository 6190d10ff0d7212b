"""Staging files of blob fetches whose process died are swept; running fetches' files stay."""

from __future__ import annotations

import os
import time

from delivery.proxy import fill


def test_only_staging_files_not_written_for_ten_minutes_are_removed(tmp_path):
    dead = tmp_path / "blob-dead"
    running = tmp_path / "blob-running"
    dead.write_bytes(b"half a layer")
    running.write_bytes(b"a layer arriving")
    old = time.time() - fill.ABANDONED_SECONDS - 5
    os.utime(dead, (old, old))
    (tmp_path / "a-folder").mkdir()

    assert fill.sweep_staging(tmp_path) == 1
    assert not dead.exists() and running.exists() and (tmp_path / "a-folder").is_dir()
    assert fill.sweep_staging(tmp_path / "missing") == 0
