"""A poll's background checkpoint: the WAL stays bounded, no commit is lost, readers never stall it."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import threading

from aggregator.pipeline import ArchiveWriter
from aggregator.store import Archive, Checkpointer

PAGE = 4096
ROW_BYTES = 40 * PAGE  # each commit below writes some 40 pages
LONGEST = 100 + 3 * 45  # frames: a limit of 100, passed by at most three commits (see Checkpointer.committed)


def commit_rows(archive: Archive, first: int, count: int) -> None:
    for n in range(first, first + count):
        with archive.write_transaction():
            archive.db.execute("INSERT INTO archive_meta(key, value) VALUES (?, ?)",
                               [f"row-{n}", f"{n:08d}" * (ROW_BYTES // 8)])


def wal_frames(path) -> int:
    """How long the WAL file ever got, in frames (SQLite rewinds it in place, never shrinks it)."""
    try:
        return os.path.getsize(f"{path}-wal") // (PAGE + 24)
    except FileNotFoundError:
        return 0


def wal_length(path) -> int:
    """The frames the WAL holds now (after a rewind, those written since)."""
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]


def stored_rows(path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {key for (key,) in conn.execute("SELECT key FROM archive_meta WHERE key LIKE 'row-%'")}


def test_commits_past_the_limit_rewind_the_wal_instead_of_growing_it(tmp_path):
    db = tmp_path / "a.db"
    with Archive(db) as archive:
        checkpointer = Checkpointer(archive, wal_limit=100)
        try:
            commit_rows(archive, 0, 60)
        finally:
            checkpointer.close()
        longest = wal_frames(db)
        assert wal_length(db) <= LONGEST
        assert archive.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # given back
        assert archive.on_commit is None
    # Unchecked, 60 commits of 40 pages would make a WAL of 2,400 frames; rewound each time it
    # passes 100 frames, it never holds more than the limit and the commits a pass may be behind.
    assert 100 <= longest <= LONGEST
    assert stored_rows(db) == {f"row-{n}" for n in range(60)}


def test_a_reader_holding_an_old_snapshot_delays_the_rewind_but_never_the_writer(tmp_path):
    db = tmp_path / "a.db"
    with Archive(db) as archive:
        reader = sqlite3.connect(db, isolation_level=None)
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM archive_meta WHERE key LIKE 'row-%'").fetchone() == (0,)
        checkpointer = Checkpointer(archive, wal_limit=100)
        try:
            done = threading.Event()
            writer = threading.Thread(target=lambda: (commit_rows(archive, 0, 30), done.set()))
            writer.start()
            writer.join(timeout=60)
            assert done.is_set()  # the passes could not copy past the reader's snapshot; commits went on
            held_back = wal_frames(db)
            assert held_back >= 30 * 40  # nothing could be rewound while the reader looked
            assert reader.execute("SELECT count(*) FROM archive_meta WHERE key LIKE 'row-%'").fetchone() == (0,)
            reader.execute("COMMIT")
            reader.close()
            commit_rows(archive, 30, 30)  # the reader gone, the next passes catch up and rewind
        finally:
            checkpointer.close()
        assert wal_length(db) <= LONGEST
        assert wal_frames(db) <= held_back + 45  # rewound in place, not grown by another 30 commits
    assert stored_rows(db) == {f"row-{n}" for n in range(60)}


def test_a_poll_writer_checkpoints_in_the_background_and_gives_the_setting_back(tmp_path):
    db = tmp_path / "a.db"
    with Archive(db) as archive:
        archive.db.execute("PRAGMA wal_autocheckpoint = 500")

        async def scenario():
            writer = ArchiveWriter(archive)
            try:
                assert archive.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
                await asyncio.gather(*(writer.save(commit_rows, archive, n * 10, 10) for n in range(6)))
            finally:
                writer.close()

        asyncio.run(scenario())
        assert archive.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 500
        # The writer's own checkpoints were off: only the background passes can have put the
        # rows into the database file itself, which a copy of it without its WAL shows.
        shutil.copy(db, tmp_path / "file-only.db")
    assert stored_rows(tmp_path / "file-only.db") == {f"row-{n}" for n in range(60)}
    assert stored_rows(db) == {f"row-{n}" for n in range(60)}
