"""The file writers' failure paths, through their public functions: a write that fails leaves the old
file whole and no temporary behind; a file written is readable as any file the user makes; a device
is written to, never replaced."""

import os
import stat

import pytest

from devcheck.errors import BadInput
from devcheck.files import write_atomic
from devcheck.machine.replay.recording import Recording
from tests.recordings import h100

UNENCODABLE = "new \ud800"  # a lone surrogate: UTF-8 cannot encode it, so the write fails midway


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary(tmp_path):
    path = tmp_path / "report.json"
    write_atomic(path, "old")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, UNENCODABLE)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["report.json"]


def test_a_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(UnicodeEncodeError):
        write_atomic(tmp_path / "report.json", UNENCODABLE)
    assert os.listdir(tmp_path) == []


def test_a_write_into_a_missing_folder_fails_and_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "report.json", "x")
    assert os.listdir(tmp_path) == []


def test_a_folder_is_not_replaced(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(BadInput, match="is a folder; give a file name"):
        write_atomic(folder, "x")
    assert folder.is_dir() and os.listdir(tmp_path) == ["out"]


def test_a_write_replaces_the_whole_file_and_leaves_a_hard_link_to_the_old_one(tmp_path):
    path, link = tmp_path / "report.json", tmp_path / "kept.json"
    write_atomic(path, "a much longer old text\n" * 10)
    os.link(path, link)
    write_atomic(path, "new")
    assert path.read_text() == "new" and link.read_text().startswith("a much longer")
    assert sorted(os.listdir(tmp_path)) == ["kept.json", "report.json"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_written_file_has_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "report.json", "x")
        assert os.umask(umask) == umask  # the umask is left as it was
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "report.json").st_mode) == mode


def test_a_device_is_written_to_not_replaced(null_device):
    write_atomic(null_device, "x")
    assert stat.S_ISCHR(os.stat(null_device).st_mode)


def test_a_fifo_is_written_to_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_atomic(fifo, "through the pipe")
        assert os.read(reader, 100) == b"through the pipe"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe"]


def test_a_recording_is_saved_whole_and_a_failed_save_keeps_the_old_one(tmp_path):
    path = tmp_path / "h100.json"
    recording = h100()
    recording.save(path)
    before = path.read_text()
    assert Recording.load(path).to_dict() == recording.to_dict()
    with pytest.raises(FileNotFoundError):
        recording.save(tmp_path / "missing" / "h100.json")
    assert path.read_text() == before and os.listdir(tmp_path) == ["h100.json"]
