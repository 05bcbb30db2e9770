"""Files written whole or not at all (``ptbench.files``): caches and weights are shared by workers
on one disk, so a reader never sees half a file and two writers never share a temporary file."""

from __future__ import annotations

import numpy as np
import pytest

from ptbench.files import atomic_path, write_text_atomic


def test_two_writers_of_one_file_never_trample_each_others_temporary_file(tmp_path):
    target = tmp_path / "decoded" / "digits.npz"
    with atomic_path(target) as a, atomic_path(target) as b:
        assert a != b and a.parent == b.parent == target.parent
        np.savez(a, x=np.zeros(3))  # np.savez keeps the name: it ends in .npz
        np.savez(b, x=np.ones(3))
        assert not target.exists()  # nothing is visible before a writer is done
    with np.load(target) as z:
        assert z["x"].tolist() == [0.0, 0.0, 0.0]  # the last writer to finish wins, whole
    assert [p.name for p in target.parent.iterdir()] == ["digits.npz"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "split.json"
    write_text_atomic(target, '{"train": [1]}', fsync=True)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"tra')
        raise RuntimeError("killed mid-write")
    assert target.read_text() == '{"train": [1]}'
    assert [p.name for p in tmp_path.iterdir()] == ["split.json"]
