"""mnmcu: int8 MobileNet on microcontrollers.

The command line (``mnmcu``) is a thin layer over this package; every stage is
also callable from Python (see :mod:`mnmcu.pipeline`).
"""

__version__ = "0.1.0"
