"""User-facing errors.

Every expected failure (bad input, a missing model, a host that does not answer) raises a
:class:`Vid2VidError` whose message is one line saying what is wrong and what to do. The CLI and the
WebUI show that line without a traceback; anything else is a bug and keeps its traceback.
"""


class Vid2VidError(Exception):
    """An expected failure with a one-line, actionable message."""


class SettingsError(Vid2VidError):
    """A setting is out of range or malformed. ``field`` names it the way the user typed it; ``detail`` is the
    message without the field (for forms that name the field themselves, such as a CLI flag)."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.detail = message
        super().__init__(f"{field}: {message}")


class VideoError(Vid2VidError):
    """The input video cannot be read, or an output video cannot be written."""


class CorruptVideoError(VideoError):
    """Decoding failed part-way; ``frame`` is the first output frame that could not be decoded."""

    def __init__(self, frame: int, message: str):
        self.frame = frame
        super().__init__(message)


class RendererError(Vid2VidError):
    """The render backend failed (host unreachable, HTTP error, bad reply)."""


class Interrupted(Vid2VidError):
    """The user stopped the job; finished frames are kept and the job can be resumed."""
