"""designsim.fileio: modes a runner can read, streams left alone, ``-`` is stdout."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from designsim import fileio
from designsim.fileio import atomic_write_text, backup_then_replace, current_umask, write_output


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_the_process_mask():
    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
    finally:
        os.umask(old)


def test_new_file_honours_the_umask(tmp_path, umask022):
    """0644 under 022, not mkstemp's 0600 (a root container's report must be readable by uid 1001)."""
    target = atomic_write_text(tmp_path / "report.json", "{}\n")
    assert _mode(target) == 0o644
    old = os.umask(0o077)
    try:
        assert _mode(atomic_write_text(tmp_path / "private.json", "{}\n")) == 0o600
    finally:
        os.umask(old)


def test_replaced_file_keeps_its_mode(tmp_path, umask022):
    target = tmp_path / "script.sh"
    target.write_text("old")
    target.chmod(0o750)
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and _mode(target) == 0o750
    backup = backup_then_replace(target, lambda p: p.write_text("newer"))
    assert backup.read_text() == "new" and _mode(target) == 0o750


def test_dev_null_is_written_in_place_never_replaced(tmp_path):
    before = os.stat("/dev/null")
    assert atomic_write_text("/dev/null", "discarded") == Path("/dev/null")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert backup_then_replace("/dev/null", lambda p: p.write_text("x")) is None
    assert not list(Path("/dev").glob(".null.*"))


def test_fifo_is_written_in_place(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_output(fifo, "through the pipe\n")
    reader.join(timeout=10)
    assert got == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temp file left beside it


def test_dev_stdout_redirected_to_a_file_appends_to_it(tmp_path):
    """`--out /dev/stdout > file`: the shell's file gets the text; it is not swapped for a new inode."""
    import subprocess
    import sys

    out = tmp_path / "out.txt"
    code = "from designsim.fileio import atomic_write_text; print('first', flush=True); atomic_write_text('/dev/stdout', 'second\\n')"
    with open(out, "w") as fh:
        subprocess.run([sys.executable, "-c", code], stdout=fh, check=True, timeout=60)
    assert out.read_text() == "first\nsecond\n"


def test_regular_file_under_dev_shm_is_replaced_not_appended(umask022):
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm on this system")
    target = shm / f"designsim-test-{os.getpid()}.txt"
    try:
        target.write_text("old old old")
        atomic_write_text(target, "new")
        assert target.read_text() == "new"
    finally:
        target.unlink(missing_ok=True)


def test_symlink_is_followed_and_kept(tmp_path):
    real = tmp_path / "real.md"
    real.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_dash_means_stdout(capsys, tmp_path):
    assert write_output("-", "text out\n") is None
    assert write_output(None, "more\n") is None
    assert capsys.readouterr().out == "text out\nmore\n"
    assert write_output(tmp_path / "f.bin", b"\x00\x01") == tmp_path / "f.bin"
    assert (tmp_path / "f.bin").read_bytes() == b"\x00\x01"


def test_cli_out_and_json_out_take_dash_and_dev_null(tmp_path, capsys):
    from designsim.cli import main

    code = main(["demo", "--out", "/dev/null", "--json-out", "-"])
    assert code in (0, 1)
    out = capsys.readouterr().out
    assert out.lstrip().startswith("{") and '"verdict"' in out
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert main(["demo", "--out", str(tmp_path / "c.md"), "--json-out", str(tmp_path / "r.json")]) in (0, 1)
    assert _mode(tmp_path / "r.json") == 0o666 & ~current_umask()


def test_failed_write_leaves_nothing(tmp_path):
    def boom(p: Path) -> None:
        p.write_text("partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fileio.atomic_write(tmp_path / "x.txt", boom)
    assert list(tmp_path.iterdir()) == []
