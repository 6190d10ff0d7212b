"""Staging files of blob fetches whose process died are swept; running fetches' files stay. Cached
files and staging files being followed are read in pieces sized by how many streams share the
process."""

from __future__ import annotations

import contextlib
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


def test_cached_files_are_read_in_smaller_pieces_the_more_streams_share_a_process(tmp_path):
    import asyncio

    from delivery.proxy import blobs, pieces
    from portal.objectstore import FileStore

    layer = tmp_path / "layer"
    layer.write_bytes(os.urandom(3 * 1024 * 1024))
    size = layer.stat().st_size

    async def read() -> tuple[int, int, bytes]:
        store = FileStore(tmp_path)
        first_stream = blobs._local_chunks(store.read("layer", piece=pieces.size))
        alone = len(await anext(first_stream))
        others = [blobs._local_chunks(store.read("layer", piece=pieces.size)) for _ in range(15)]
        for other in others:
            await anext(other)
        shared = len(await anext(first_stream))
        rest = b"".join([chunk async for chunk in first_stream])
        for other in others:
            await other.aclose()
        return alone, shared, rest

    alone, shared, rest = asyncio.run(read())
    assert alone == pieces.LARGEST == 1024 * 1024  # one stream: the largest pieces
    assert shared == pieces.BUDGET // 16  # sixteen share the budget
    assert alone + shared + len(rest) == size
    assert pieces.streams() == 0  # every stream that ended let go of its share


def test_a_staging_file_is_followed_in_pieces_of_the_budget_it_shares_with_cached_reads(tmp_path):
    import asyncio

    from delivery.proxy import pieces

    staging = tmp_path / "staging"
    staging.write_bytes(os.urandom(2 * 1024 * 1024))
    size = staging.stat().st_size
    key = fill.claim_key(0, "sha256:" + os.urandom(32).hex())
    claim = fill.Claim(owner="o", node=fill.node(), staging=str(staging), state=fill.DONE, size=size)

    async def no_cache():
        raise AssertionError("a staging file on this node is read, not the cache")

    async def read() -> tuple[list[int], int]:
        await fill.write_claim(key, claim, 60)
        with contextlib.ExitStack() as others:  # fifteen cached blobs being read meanwhile
            for _ in range(15):
                others.enter_context(pieces.sharing())
            lengths = [len(chunk) async for chunk in fill.follow(key, claim, no_cache)]
        return lengths, pieces.streams()

    lengths, left = asyncio.run(read())
    assert sum(lengths) == size
    assert max(lengths) == pieces.BUDGET // 16  # sixteen streams share the budget
    assert left == 0
