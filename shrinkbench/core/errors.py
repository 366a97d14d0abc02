"""User-facing errors.

Every mistake a user can make (an unknown name, an impossible compression, a malformed
suite file, missing data, a corrupt checkpoint) raises a subclass of `ShrinkBenchError`
whose message is ONE line saying what was wrong and what is allowed. The CLI prints that
line and exits with status 2; it never shows a traceback for these.
"""


class ShrinkBenchError(Exception):
    """Base class of every error caused by user input or missing resources."""


class UnknownNameError(ShrinkBenchError, KeyError):
    """A registry lookup failed; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(ShrinkBenchError, ValueError):
    """A configuration value or suite file is invalid."""


class DataNotFoundError(ShrinkBenchError, FileNotFoundError):
    """A dataset could not be found in any of the places searched."""


class CheckpointError(ShrinkBenchError):
    """A checkpoint file is missing, corrupt or does not match the model."""


class CompressionError(ShrinkBenchError, ValueError):
    """A target compression ratio cannot be reached by a model."""


class TrainingDivergedError(ShrinkBenchError, FloatingPointError):
    """The loss became NaN or infinite during training."""


class StrategyError(ShrinkBenchError):
    """A strategy misbehaved while scoring (it raised, returned wrong shapes, non-finite
    scores or a bad scope). The run gets a failed record with this message; the sweep goes on."""
