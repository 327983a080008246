"""The one exception type the CLI turns into a clean, single-line error message.

Every problem caused by the user's input (a config key, a raw file, a request file, a checksum) raises
`RecUnlearnError` with a message that names the file or parameter and what is wrong with it. The CLI prints that
message alone and exits with status 2, so a bad input never ends in a traceback or a half-written output.
"""


class RecUnlearnError(Exception):
    """A problem with the user's input, explained in one line."""


class ConfigError(RecUnlearnError):
    """The configuration file is invalid (unknown key, wrong type, out-of-range value)."""


class DataError(RecUnlearnError):
    """A raw, preprocessed or request file is missing, malformed, truncated or fails its checksum."""


class RequestError(DataError):
    """An unlearning request file names unknown users/items, untrained pairs, duplicates or nothing at all."""
