"""The file writers' failure paths, through their public functions: a write that fails leaves the old
file whole and no temporary behind; a file written is readable as any file the user makes; a device
is written to, never replaced."""

import os
import stat
from pathlib import Path

import pytest

from devcheck.errors import BadInput
from devcheck.files import Target, check_output, open_text, write_atomic
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
    with pytest.raises(BadInput) as e:
        write_atomic(folder, "x")
    assert str(e.value) == f"file {folder}: is a folder; give a file name"  # no option: the word "file"
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


# --- what a path is (files.Target), read once, each kind and each refusal in its own words ------------------
ONLY = "devcheck writes only to regular files, FIFOs, terminals and /dev/null"


def _device(folder, name: str, kind: int, number: tuple[int, int]):
    """A device node of the test's own; only classified here, never written (its number may be real)."""
    path = folder / name
    try:
        os.mknod(path, 0o600 | kind, os.makedev(*number))
    except PermissionError:
        pytest.skip("making a device file needs root")
    return path


def test_each_kind_of_path(tmp_path):
    (tmp_path / "report.json").write_text("old")
    os.mkfifo(tmp_path / "pipe")
    new = Target("--json-file", tmp_path / "new.json")
    assert (new.kind, new.path, new.follow) == ("new", tmp_path / "new.json", False)
    assert Target("--json-file", tmp_path / "report.json").kind == "file"
    assert Target("--json-file", tmp_path / "pipe").kind == "stream"


def test_a_null_device_is_a_stream(null_device):
    assert Target("--json-file", null_device).kind == "stream"


@pytest.mark.parametrize(
    ("kind", "number", "why"),
    [
        (stat.S_IFBLK, (7, 0), f"is a block device (a disk); {ONLY}"),
        (stat.S_IFCHR, (1, 8), f"is not a regular file, a FIFO or a terminal; {ONLY}"),  # /dev/random's number
    ],
    ids=["block", "random"],
)
def test_a_device_that_is_not_a_stream_is_refused_in_one_line(tmp_path, kind, number, why):
    device = _device(tmp_path, "dev", kind, number)
    with pytest.raises(BadInput) as e:
        Target("--junit", device)
    assert str(e.value) == f"--junit {device}: {why}"


def test_a_folder_is_refused_naming_the_option(tmp_path):
    with pytest.raises(BadInput) as e:
        Target("--log", tmp_path)
    assert str(e.value) == f"--log {tmp_path}: is a folder; give a file name"


def test_a_link_of_ones_own_is_followed_and_a_dangling_one_makes_its_target(tmp_path):
    (tmp_path / "real.json").write_text("old")
    os.symlink(tmp_path / "real.json", tmp_path / "link.json")
    os.symlink(tmp_path / "absent.json", tmp_path / "dangling.json")
    followed = Target("--json-file", tmp_path / "link.json")
    assert (followed.kind, followed.path, followed.follow) == ("file", tmp_path / "real.json", True)
    dangling = Target("--json-file", tmp_path / "dangling.json")
    assert (dangling.kind, dangling.path, dangling.follow) == ("new", tmp_path / "absent.json", True)
    write_atomic(tmp_path / "link.json", "new")
    assert (tmp_path / "real.json").read_text() == "new" and (tmp_path / "link.json").is_symlink()


def _link_of_another_user(link, target) -> None:
    """A symbolic link owned by uid 65534 (nobody), as another user would plant it."""
    os.symlink(target, link)
    try:
        os.chown(link, 65534, 65534, follow_symlinks=False)
    except PermissionError:
        pytest.skip("giving a link to another user needs root")


def _world_writable(tmp_path):
    """A folder as /tmp is (mode 1777), beside a victim file a planted link would point at."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    (tmp_path / "victim.txt").write_text("keep")
    return shared


def test_a_link_another_user_planted_in_a_world_writable_folder_is_not_followed(tmp_path):
    shared = _world_writable(tmp_path)
    _link_of_another_user(shared / "out.json", tmp_path / "victim.txt")
    with pytest.raises(BadInput) as e:
        write_atomic(shared / "out.json", "x", "--json-file")
    assert str(e.value) == (
        f"--json-file {shared}/out.json: a symbolic link in the world-writable folder {shared}, owned by another "
        "user (uid 65534); devcheck does not follow it: remove it or give another file"
    )
    assert (tmp_path / "victim.txt").read_text() == "keep"
    mine = shared / "mine.json"
    os.symlink(tmp_path / "victim.txt", mine)  # the same link of devcheck's own user is followed
    assert Target("--json-file", mine).follow is True


def test_a_link_planted_after_the_check_is_not_followed(tmp_path):
    target = Target("--log", tmp_path / "log.jsonl")
    (tmp_path / "victim.txt").write_text("keep")
    os.symlink(tmp_path / "victim.txt", tmp_path / "log.jsonl")
    with pytest.raises(BadInput) as e:
        target.open(os.O_WRONLY | os.O_CREAT)
    assert str(e.value) == f"--log {tmp_path}/log.jsonl: became a symbolic link while devcheck ran; not followed"
    assert (tmp_path / "victim.txt").read_text() == "keep"


# --- check_output: every file option checked before any work, changing nothing -----------------------------


def test_check_output_changes_nothing_and_leaves_no_probe(tmp_path):
    (tmp_path / "old.json").write_text("old")
    assert check_output("--json-file", tmp_path / "new.json").kind == "new"
    assert check_output("--json-file", tmp_path / "old.json").kind == "file"
    assert check_output("--summary", tmp_path / "old.json", replaced=False).kind == "file"
    assert sorted(os.listdir(tmp_path)) == ["old.json"] and (tmp_path / "old.json").read_text() == "old"


@pytest.mark.parametrize(
    ("path", "replaced", "why"),
    [
        ("-", True, "give a file name; this option cannot write to stdout"),
        ("{tmp}/missing/r.json", True, "the folder {tmp}/missing does not exist"),
        ("/proc/version", True, "cannot create a file in /proc (No such file or directory)"),
        ("/proc/version", False, "cannot write to it ("),  # appended to: opened; the OS's reason (EIO as root)
    ],
    ids=["stdout", "missing-folder", "proc-replaced", "proc-appended"],
)
def test_check_output_refusals_name_the_option(tmp_path, path, replaced, why):
    path = path.format(tmp=tmp_path)
    with pytest.raises(BadInput) as e:
        check_output("--junit", path, **({} if replaced else {"replaced": False}))  # replaced by default
    said, expected = str(e.value), f"--junit {path}: {why.format(tmp=tmp_path)}"
    assert said.startswith(expected) and said.endswith(")") if why.endswith("(") else said == expected


def test_a_folder_that_takes_no_new_file_is_refused(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root may create files in a read-only folder")
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(BadInput, match="cannot create a file in"):
        check_output("--json-file", folder / "r.json")


def test_check_output_does_not_open_a_fifo(tmp_path):
    """With no reader yet, opening a FIFO to write would fail (non-blocking) or block: it is not opened."""
    os.mkfifo(tmp_path / "pipe")
    assert check_output("--json-file", tmp_path / "pipe").kind == "stream"


# --- open_text: a log written or appended, a stream written through -------------------------------------------


def test_open_text_writes_appends_and_creates(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("old line\n")
    with open_text(log, "a", "--log") as f:
        f.write("appended\n")
    assert log.read_text() == "old line\nappended\n"
    with open_text(log, "w", "--log") as f:
        f.write("fresh\n")
    assert log.read_text() == "fresh\n"
    with open_text(tmp_path / "new.jsonl", "a", "--log") as f:
        f.write("created\n")
    assert (tmp_path / "new.jsonl").read_text() == "created\n"
    assert stat.S_IMODE(os.stat(tmp_path / "new.jsonl").st_mode) == 0o666 & ~_umask()


def test_open_text_writes_through_a_device(null_device):
    with open_text(null_device, "w", "--log") as f:
        f.write("gone\n")
    assert stat.S_ISCHR(os.stat(null_device).st_mode)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_two_writers_appending_to_one_summary_both_land(tmp_path):
    """O_APPEND: a summary appended by two steps at once keeps both lines (a position read at open
    would make the second overwrite the first)."""
    summary = tmp_path / "summary.md"
    summary.write_text("old\n")
    with open_text(summary, "a", "--summary") as first, open_text(summary, "a", "--summary") as second:
        first.write("one\n")
        first.flush()
        second.write("two\n")
    assert summary.read_text() == "old\none\ntwo\n"


def test_the_temporary_is_beside_the_file_and_named_after_it(tmp_path, monkeypatch):
    """Written beside its file (a rename within one file system is atomic; across two it fails), named
    `.NAME.*.tmp` so a person or a cleaner can tell what it was. Seen through os.replace, not patched."""
    renamed = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: renamed.append(Path(src)) or real(src, dst))
    write_atomic(tmp_path / "report.json", "x")
    (temporary,) = renamed
    assert temporary.parent == tmp_path and temporary.name.startswith(".report.json.") and temporary.suffix == ".tmp"


def test_a_stream_behind_a_trusted_link_is_opened_through_the_link(tmp_path):
    """/dev/stdout is a link to /proc/self/fd/1; where that is a pipe, its resolved name cannot be
    opened, so a stream is opened through the link itself."""
    read, write = os.pipe()
    try:
        os.symlink(f"/proc/self/fd/{write}", tmp_path / "out")
        target = Target("--json-file", tmp_path / "out")
        assert (target.kind, target.follow) == ("stream", True)
        write_atomic(tmp_path / "out", "through the link")
        assert os.read(read, 100) == b"through the link"
    finally:
        os.close(read)
        os.close(write)


@pytest.mark.parametrize("number", [(136, 200), (4, 64), (5, 0)], ids=["pts-200", "ttyS0", "tty"])
def test_terminals_are_streams_by_their_device_number(tmp_path, number):
    assert Target("--json-file", _device(tmp_path, "tty", stat.S_IFCHR, number)).kind == "stream"


def test_a_link_of_another_user_outside_a_world_writable_folder_is_followed(tmp_path):
    (tmp_path / "real.json").write_text("old")
    _link_of_another_user(tmp_path / "link.json", tmp_path / "real.json")
    assert Target("--json-file", tmp_path / "link.json").path == tmp_path / "real.json"


def test_a_path_that_cannot_be_read_or_followed_says_why(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(BadInput) as e:
        Target("--log", tmp_path / "file.txt" / "log")
    assert str(e.value) == f"--log {tmp_path}/file.txt/log: cannot read it (Not a directory)"
    os.symlink(tmp_path / "file.txt" / "log", tmp_path / "link")
    with pytest.raises(BadInput) as e:
        Target("--log", tmp_path / "link")
    assert str(e.value) == f"--log {tmp_path}/link: cannot follow the link (Not a directory)"


def test_a_full_device_is_refused_before_any_work(tmp_path):
    """A null-like device is a stream, but /dev/full refuses every write: check_output writes nothing to
    it to find out, before the run."""
    full = _device(tmp_path, "full", stat.S_IFCHR, (1, 7))
    with pytest.raises(BadInput) as e:
        check_output("--json-file", full)
    assert str(e.value) == f"--json-file {full}: cannot write to it (No space left on device)"


def test_open_text_names_its_option_and_opens_what_was_checked(tmp_path):
    """A trusted link swapped after the check: the file checked is opened (its resolved path, no link
    followed), not the link's new target."""
    with pytest.raises(BadInput) as e:
        open_text(tmp_path, "a", "--log")
    assert str(e.value) == f"--log {tmp_path}: is a folder; give a file name"
    (tmp_path / "real.log").write_text("")
    (tmp_path / "victim.txt").write_text("keep")
    os.symlink(tmp_path / "real.log", tmp_path / "link.log")
    target = Target("--log", tmp_path / "link.log")
    os.remove(tmp_path / "link.log")
    os.symlink(tmp_path / "victim.txt", tmp_path / "link.log")
    os.close(target.open(os.O_WRONLY | os.O_TRUNC))
    assert (tmp_path / "victim.txt").read_text() == "keep"


def test_a_link_of_ones_own_that_leads_to_a_planted_one_is_not_followed(tmp_path):
    """Every hop of a chain is judged: root's own link to another user's link in a world-writable folder
    would otherwise carry a write to that user's chosen target."""
    shared = _world_writable(tmp_path)
    _link_of_another_user(shared / "theirs", tmp_path / "victim.txt")
    os.symlink(shared / "theirs", shared / "mine.json")
    with pytest.raises(BadInput) as e:
        write_atomic(shared / "mine.json", "x", "--json-file")
    assert str(e.value).startswith(f"--json-file {shared}/mine.json: a symbolic link in the world-writable folder")
    assert "(uid 65534)" in str(e.value) and (tmp_path / "victim.txt").read_text() == "keep"


def test_a_loop_of_links_is_refused_in_one_line(tmp_path):
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    with pytest.raises(BadInput) as e:
        Target("--log", tmp_path / "a")
    assert str(e.value) == f"--log {tmp_path}/a: too many levels of symbolic links"
