"""Config files as frozen, typed dataclasses, declared once (docs/services.md, "Config files").

A config class's fields are its file's keys (`keys`: the markers a field's Annotated type
carries: Within, Above, Items, OneOf, Matches, NOT_EMPTY, Parse, Key, Label, Unique); `read`
turns a TOML table into the class by them, refusing an unknown key with the known ones and a
value of the wrong type or out of range with the key's dotted path and the file, in the one
wording of `words`. The TOML text itself is read by trademesh.core.platform.config.file.
"""

from trademesh.core.platform.config.schema.keys import (
    NOT_A_KEY,
    NOT_EMPTY,
    Above,
    Items,
    Key,
    Label,
    Matches,
    OneOf,
    Parse,
    Unique,
    Within,
    check_fields,
)
from trademesh.core.platform.config.schema.read import Reader, Reading, load, read_value

__all__ = [
    "NOT_A_KEY",
    "NOT_EMPTY",
    "Above",
    "Items",
    "Key",
    "Label",
    "Matches",
    "OneOf",
    "Parse",
    "Reader",
    "Reading",
    "Unique",
    "Within",
    "check_fields",
    "load",
    "read_value",
]
