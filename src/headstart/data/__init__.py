"""Getting data in: image folders, tables and in-memory arrays, checked before any training.

``load_dataset`` reads a folder (``root/<class>/<image>``) or a table; ``from_arrays`` wraps lists and
arrays. Both return a :class:`LabeledData`. ``load_image`` turns any image input into RGB;
``stratified_split`` and ``check_classification_labels`` prepare labels for training. DICOM files and
16-bit images are windowed to 8 bits (:mod:`headstart.data.medical`: ``Window``, ``parse_window``).
"""

from .audio import AUDIO_EXTENSIONS, load_audio
from .images import IMAGE_EXTENSIONS, load_image
from .inputs import LabeledData, from_arrays, load_dataset
from .medical import Window, parse_window, read_dicom, set_window, window_of, window_text
from .screen import SkippedInput
from .split import check_classification_labels, check_labels_known, stratified_split
from .tables import TABLE_EXTENSIONS

__all__ = [
    "AUDIO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "TABLE_EXTENSIONS",
    "Window",
    "LabeledData",
    "SkippedInput",
    "check_classification_labels",
    "check_labels_known",
    "from_arrays",
    "load_audio",
    "load_dataset",
    "load_image",
    "parse_window",
    "read_dicom",
    "set_window",
    "stratified_split",
    "window_of",
    "window_text",
]
