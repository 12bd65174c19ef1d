"""Errors a user can cause. The CLI turns each into one line and exit code 2."""


class MdplError(Exception):
    """Base class for every error a user can cause (bad file, bad config, bad site)."""


class DataError(MdplError):
    """A forcing/flux file or data directory is missing, malformed or implausible."""


class ConfigError(MdplError):
    """A configuration file or option is invalid (unknown key, wrong type, bad value)."""


class ModelError(MdplError):
    """A land model run failed (bad parameters, external executable failure)."""
