"""The host side of mnmcu's serial protocol (``firmware/protocol/PROTOCOL.md``).

:mod:`~mnmcu.link.protocol` encodes and decodes frames, :mod:`~mnmcu.link.session`
talks to a device over any pyserial URL, :mod:`~mnmcu.link.ports` finds and
:mod:`~mnmcu.link.flash` flashes boards, :mod:`~mnmcu.link.monitor` shows a port.
"""

from mnmcu.link.protocol import PROTOCOL_VERSION, DeviceInfo, Frame, FrameDecoder, encode_frame
from mnmcu.link.session import DeviceSession, InferResult, LinkError, open_session

__all__ = [
    "PROTOCOL_VERSION",
    "DeviceInfo",
    "DeviceSession",
    "Frame",
    "FrameDecoder",
    "InferResult",
    "LinkError",
    "encode_frame",
    "open_session",
]
