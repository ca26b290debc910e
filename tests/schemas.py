"""Validating reports against devcheck's shipped JSON Schema, one validator per command for the whole run.

`jsonschema.validate` checks the schema itself against the metaschema on every call, which took nine
tenths of each validation's time; here that check runs once per schema, and the error raised is the
one `jsonschema.validate` would raise (its best match).
"""

import functools

import jsonschema
from jsonschema.exceptions import best_match

from devcheck.schema import document


@functools.cache
def validator(command: str | None = None) -> jsonschema.protocols.Validator:
    schema = document(command)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate(doc: object, command: str | None = None) -> None:
    """Raise jsonschema.ValidationError where `doc` is not a valid report (of `command`, when given)."""
    error = best_match(validator(command).iter_errors(doc))
    if error is not None:
        raise error
