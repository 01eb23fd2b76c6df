"""Video I/O on PyAV, one name for the whole of it: probe, streaming decode with fps resampling / trimming /
resizing, streaming encode with the source audio carried over in sync.

The code lives in one module per concern; this module re-exports their public names so that
``from lib_vid2vid import video; video.probe(...)`` keeps working:

* :mod:`.video_probe`     what a file holds (:class:`VideoInfo`, :func:`probe`), opening it safely, and
                          what counts as a video (:func:`is_video`: allow-listed containers and codecs)
* :mod:`.video_resample`  the resampling rule: which output frames a range gives, and when each is shown
* :mod:`.video_resize`    resize modes (the WebUI's stretch / crop / fill)
* :mod:`.video_decode`    :func:`iter_frames`, the streaming decoder
* :mod:`.video_audio`     reading the source audio, feeding it sample-exactly into an output
* :mod:`.video_writer`    :class:`VideoWriter` (mp4 / webm / gif / PNG folder), :func:`encode_frames`

PyAV's wheel embeds FFmpeg; nothing here runs an external binary or a subprocess.

Conventions
-----------
* Frames are RGB uint8 arrays shaped (H, W, 3), already turned upright (rotation metadata applied).
* Times are seconds on the source video's timeline, measured from its first frame
  (``VideoInfo.start_time`` is subtracted from container timestamps), so ``start=0`` is source frame 0.
* Frame rates are :class:`fractions.Fraction` (frames per second) so 30000/1001 stays exact.

Errors
------
Expected failures raise :class:`~lib_vid2vid.errors.VideoError` (or :class:`CorruptVideoError`, which names
the first output frame that could not be produced) with a one-line message that says what to do.
"""

from __future__ import annotations

from .video_audio import audio_duration, decode_audio, has_audio
from .video_decode import iter_frames
from .video_probe import PROBE_SCAN_LIMIT, AudioInfo, VideoInfo, is_video, probe
from .video_resample import output_frame_count, output_times, plan_output
from .video_resize import RESIZE_MODES, resize_frame
from .video_writer import FORMATS, VideoWriter, encode_frames

__all__ = [
    "AudioInfo",
    "VideoInfo",
    "VideoWriter",
    "FORMATS",
    "PROBE_SCAN_LIMIT",
    "RESIZE_MODES",
    "audio_duration",
    "decode_audio",
    "encode_frames",
    "has_audio",
    "is_video",
    "iter_frames",
    "output_frame_count",
    "output_times",
    "plan_output",
    "probe",
    "resize_frame",
]
