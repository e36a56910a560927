"""PlatformIO platform class of mnmcu-qemu (nothing to customise: no packages to fetch)."""

from platformio.public import PlatformBase


class MnmcuqemuPlatform(PlatformBase):
    """Bare-metal QEMU MPS2/MPS3 machines, built with the system's arm-none-eabi-gcc."""
