"""report.schema.json: the JSON Schema of every command's --json output (`devcheck schema`)."""

import json
from importlib.resources import files


def document(command: str | None = None) -> dict:
    """The whole schema, or one command's: `command` fixed and its `data` required to match that
    command's definition (a report cut short by an interrupt or a bad input carries none). ValueError
    names the commands when `command` is not one of them."""
    doc = json.loads(files(__name__).joinpath("report.schema.json").read_text(encoding="utf-8"))
    commands = doc["properties"]["command"]["enum"]
    if command is None:
        return doc
    if command not in commands:
        raise ValueError(f"schema {command!r}: choose from {', '.join(commands)}")
    data = "check_data" if command == "check" else command
    doc["properties"]["command"] = {"const": command}
    doc["allOf"] = [
        {"if": {"not": {"$ref": "#/$defs/cut_short"}}, "then": {"properties": {"data": {"$ref": f"#/$defs/{data}"}}}}
    ]
    return doc
