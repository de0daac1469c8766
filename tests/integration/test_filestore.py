"""The file store on a real directory: atomic, idempotent puts; chunked transfers that resume."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from core.errors import ErrorCode, StoreError
from sync.record.filestore import FileStore

DATA = bytes(range(256)) * 1000
SHA = hashlib.sha256(DATA).hexdigest()


def test_a_put_names_the_file_by_its_hash_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    assert store.put(DATA) == SHA
    assert store.path(SHA) == tmp_path / "files" / SHA[:2] / SHA
    assert store.has(SHA) and store.size(SHA) == len(DATA)
    assert store.read(SHA) == DATA and store.read(SHA, 10, 5) == DATA[10:15]
    assert os.listdir(store.path(SHA).parent) == [SHA]
    assert list(store.shas()) == [SHA] and store.used_bytes() == len(DATA)


def test_putting_the_same_bytes_again_changes_nothing(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    store.put(DATA)
    before = store.path(SHA).stat()
    assert store.put(DATA) == SHA
    after = store.path(SHA).stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_a_torn_file_left_by_a_crash_is_replaced_by_a_whole_one(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    store.path(SHA).parent.mkdir(parents=True)
    store.path(SHA).write_bytes(DATA[:100])
    assert store.check(SHA) is ErrorCode.FILE_HASH
    store.put(DATA)
    assert store.check(SHA) is None and store.read(SHA) == DATA


def test_a_file_arrives_in_chunks_and_resumes_where_a_cut_left_it(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    assert store.partial_offset(SHA) == 0
    assert store.append(SHA, 0, DATA[:1000]) == 1000
    # the link is cut; a new store object (a restarted node) sees the part
    store = FileStore(tmp_path / "files")
    offset = store.partial_offset(SHA)
    assert offset == 1000 and not store.has(SHA)
    assert store.append(SHA, offset, DATA[offset:]) == len(DATA)
    store.finish(SHA, len(DATA))
    assert store.read(SHA) == DATA and store.partial_offset(SHA) == 0
    assert list(store.partials()) == []


@pytest.mark.parametrize("offset", [0, 999, 1001])
def test_a_chunk_that_does_not_continue_the_part_is_refused_and_changes_nothing(
    tmp_path: Path, offset: int
) -> None:
    store = FileStore(tmp_path / "files")
    store.append(SHA, 0, DATA[:1000])
    with pytest.raises(StoreError) as err:
        store.append(SHA, offset, DATA[offset : offset + 10])
    assert err.value.code is ErrorCode.FILE_OFFSET
    assert store.partial_offset(SHA) == 1000


def test_a_finished_transfer_whose_bytes_do_not_match_is_dropped(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    bad = bytearray(DATA)
    bad[500] ^= 1
    store.append(SHA, 0, bytes(bad))
    with pytest.raises(StoreError) as err:
        store.finish(SHA, len(DATA))
    assert err.value.code is ErrorCode.FILE_HASH
    assert not store.has(SHA) and store.partial_offset(SHA) == 0


def test_a_transfer_of_the_wrong_length_is_dropped(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    store.append(SHA, 0, DATA[:-1])
    with pytest.raises(StoreError) as err:
        store.finish(SHA, len(DATA))
    assert err.value.code is ErrorCode.FILE_HASH
    assert not store.has(SHA) and store.partial_offset(SHA) == 0


def test_a_removed_file_is_gone_and_a_missing_one_says_so(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    store.put(DATA)
    store.remove(SHA)
    store.remove(SHA)  # twice: nothing
    assert not store.has(SHA) and store.check(SHA) is ErrorCode.FILE_MISSING
    with pytest.raises(StoreError) as err:
        store.read(SHA)
    assert err.value.code is ErrorCode.FILE_MISSING
    with pytest.raises(StoreError):
        store.path("../../etc/passwd")


def test_the_pages_are_private_to_the_account_whatever_the_umask(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    before = os.umask(0o022)
    try:
        whole = store.put(b"scanned page")
        data = b"page sent in chunks"
        sha = hashlib.sha256(data).hexdigest()
        store.append(sha, 0, data[:5])
        part_mode = stat.S_IMODE(next(store.partials())[1].stat().st_mode)
        store.append(sha, 5, data[5:])
        store.finish(sha, len(data))
    finally:
        os.umask(before)
    assert part_mode == 0o600
    for folder in (store.root, store.path(whole).parent, store.path(sha).parent, store.root / "partial"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for name in (whole, sha):
        assert stat.S_IMODE(store.path(name).stat().st_mode) == 0o600, name
