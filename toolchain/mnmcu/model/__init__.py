"""MobileNet models: specification, construction, datasets and training.

Every module that imports TensorFlow or Keras lives in this package (or
imports it first, as :mod:`mnmcu.quantize` does), so the default below is in
place before TensorFlow's C++ runtime starts: it prints its start-up lines
(``cpu_feature_guard``, absl's "All log messages before
absl::InitializeLog()") at import unless ``TF_CPP_MIN_LOG_LEVEL`` says
otherwise. A value the user set is kept; ``mnmcu -v`` shows the lines
(:func:`show_tensorflow_log`).
"""

import os

_TF_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
_QUIETED = _TF_LOG_LEVEL not in os.environ
os.environ.setdefault(_TF_LOG_LEVEL, "3")


def show_tensorflow_log() -> None:
    """TensorFlow's own default (all its lines), unless the user chose a level."""
    if _QUIETED:
        os.environ[_TF_LOG_LEVEL] = "0"
