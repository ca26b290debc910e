"""Files devcheck writes (reports, logs, recordings) are whole or absent, never half written, and
readable as any file the user makes (mkstemp alone would leave them private). devcheck often runs as
root (prologs, DaemonSets, Ansible), so it writes only where it is sure to own what it writes:

- a regular file is replaced whole (written beside it, then renamed over it), or appended to;
- a FIFO, a terminal or a null-like device (/dev/null, /dev/zero, /dev/full) is written through;
- anything else (a block device, another character device, a socket, a folder) is refused;
- a symbolic link is followed only when its owner could not have been someone else: the rule of
  Linux's fs.protected_symlinks, kept even where the kernel's is off (many containers): in a
  world-writable folder (/tmp), only a link of devcheck's own user or of the folder's owner;
- a path that was no link when checked is opened with O_NOFOLLOW, so a link planted since is refused.

Every refusal is BadInput: one line naming the option. The engine keeps its own copy of the atomic
write for checkpoints, since it imports nothing of the rest of devcheck."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import IO

from devcheck.errors import BadInput

NULL_LIKE = {(1, 3), (1, 5), (1, 7)}  # Linux's /dev/null, /dev/zero, /dev/full (memory devices, major 1)
# Linux's terminals, told by number: opening a device to ask it could start it (a watchdog reboots on it)
TERMINALS = {4, *range(136, 144)}  # ttyN and serial ttyS, then the pseudo-terminals /dev/pts/N
TERMINAL_DEVICES = {(5, 0), (5, 1)}  # /dev/tty, /dev/console
STDOUT = "-"


class Target:
    """What a path is, read once: `kind` is "new", "file" or "stream"; `path` is the one to open or
    replace (a trusted link's target); `follow`: open it following a final link (it was a trusted one)."""

    def __init__(self, option: str, path: Path):
        self.option, self.given = option, Path(path)
        self.path, self.follow = self.given, False
        try:
            info = os.lstat(self.given)
        except FileNotFoundError:
            self.kind = "new"
            return
        except OSError as e:
            raise self.refused(f"cannot read it ({e.strerror})") from None
        if stat.S_ISLNK(info.st_mode):
            self._trust_every_hop()
            self.follow, self.path = True, Path(os.path.realpath(self.given))
            try:
                info = os.stat(self.given)
            except FileNotFoundError:  # a dangling link of the user's own: its target is created
                self.kind = "new"
                return
            except OSError as e:
                raise self.refused(f"cannot follow the link ({e.strerror})") from None
        self.kind = self._kind(info)

    def refused(self, why: str) -> BadInput:
        return BadInput(f"{self.option} {self.given}: {why}")

    def _trust_every_hop(self) -> None:
        """Each link of a chain, by the rule above: a link of one's own may lead to another user's."""
        hop = self.given
        for _ in range(40):  # Linux's own limit on links followed in one path
            try:
                link = os.lstat(hop)
            except OSError:
                return  # the chain ends where nothing is: the caller says what (dangling, unreadable)
            if not stat.S_ISLNK(link.st_mode):
                return
            folder = os.stat(hop.parent)
            if folder.st_mode & stat.S_IWOTH and link.st_uid not in (os.geteuid(), folder.st_uid):
                raise self.refused(
                    f"a symbolic link in the world-writable folder {hop.parent}, owned by another user "
                    f"(uid {link.st_uid}); devcheck does not follow it: remove it or give another file"
                )
            hop = hop.parent / os.readlink(hop)  # an absolute target replaces the folder
        raise self.refused("too many levels of symbolic links")

    def _kind(self, info: os.stat_result) -> str:
        mode = info.st_mode
        if stat.S_ISREG(mode):
            return "file"
        if stat.S_ISDIR(mode):
            raise self.refused("is a folder; give a file name")
        if stat.S_ISFIFO(mode):
            return "stream"
        number = os.major(info.st_rdev), os.minor(info.st_rdev)
        if stat.S_ISCHR(mode) and (number in NULL_LIKE | TERMINAL_DEVICES or number[0] in TERMINALS):
            return "stream"
        what = "a block device (a disk)" if stat.S_ISBLK(mode) else "not a regular file, a FIFO or a terminal"
        raise self.refused(f"is {what}; devcheck writes only to regular files, FIFOs, terminals and /dev/null")

    def open(self, flags: int) -> int:
        """A file descriptor opened with `flags` (O_WRONLY and more), never through a link planted since:
        a file by its resolved path, a stream through the trusted link (a terminal's name is the link's)."""
        through = self.follow and self.kind == "stream"
        flags |= os.O_CLOEXEC | (0 if through else os.O_NOFOLLOW)
        try:
            return os.open(self.given if through else self.path, flags, 0o666)
        except OSError as e:
            if e.errno == errno.ELOOP:  # a link appeared where there was none
                raise self.refused("became a symbolic link while devcheck ran; not followed") from None
            raise


def check_output(option: str, path: Path, replaced: bool = True) -> Target:
    """A file option's path checked for real before any work starts: what it is (above), that an
    existing one opens for appending and takes an empty write (nothing changes; `/proc/version` and
    `/dev/full` fail here), and, where the file is created or `replaced`, that its folder takes a new file."""
    if str(path) == STDOUT:
        raise BadInput(f"{option} -: give a file name; this option cannot write to stdout")
    target = Target(option, path)
    if target.kind == "new" or (target.kind == "file" and replaced):
        folder = target.path.parent
        if not folder.is_dir():
            raise target.refused(f"the folder {folder} does not exist")
        _probe(target, folder)
    if target.kind != "new" and not (target.kind == "stream" and stat.S_ISFIFO(os.stat(target.given).st_mode)):
        try:  # (a FIFO is not opened: with no reader yet that would fail, or block)
            fd = target.open(os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK | os.O_NOCTTY)
            try:
                os.write(fd, b"")
            finally:
                os.close(fd)
        except OSError as e:
            raise target.refused(f"cannot write to it ({e.strerror})") from None
    return target


def _probe(target: Target, folder: Path) -> None:
    import tempfile  # only when a file option is given: its import costs every run a millisecond

    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".devcheck-probe-")
    except OSError as e:
        raise target.refused(f"cannot create a file in {folder} ({e.strerror})") from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


def write_atomic(path: Path, text: str, option: str = "") -> None:
    """`text` replaces a regular file whole, or is written through to a stream (above)."""
    target = Target(option or "file", path)
    if target.kind == "stream":
        with os.fdopen(target.open(os.O_WRONLY | os.O_NOCTTY), "w", encoding="utf-8") as f:
            f.write(text)
        return
    import tempfile  # only when a file is written: its import (random, hashlib) is a cost every run would pay

    fd, tmp = tempfile.mkstemp(dir=target.path.parent, prefix=f".{target.path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target.path)  # a rename replaces a link planted since, never writes through it
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_text(path: Path, mode: str, option: str) -> IO[str]:
    """A log or summary opened to write ("w") or append ("a"), by the same rules."""
    target = Target(option, path)
    flags = os.O_WRONLY | os.O_NOCTTY | (os.O_APPEND if mode == "a" else 0)
    if target.kind != "stream":
        flags |= os.O_CREAT | (os.O_TRUNC if mode == "w" else 0)
    return os.fdopen(target.open(flags), mode, encoding="utf-8")
