"""The one exception commands raise on purpose: bad input from the user (exit 2, one line)."""


class BadInput(ValueError):
    """A value the user gave that devcheck cannot use; the message names it and what is allowed."""


def check_writable(option: str, path) -> None:
    """A file option's path must name a file whose folder exists, checked before any work starts."""
    if path.is_dir():
        raise BadInput(f"{option} {path}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise BadInput(f"{option} {path}: the folder {path.parent} does not exist")
