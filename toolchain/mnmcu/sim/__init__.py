"""Simulators that run the generated firmware: QEMU (Cortex-M MPS2/MPS3 machines)."""

from mnmcu.sim.qemu import (
    BOOT_TIMEOUT_S,
    FirmwareFault,
    QemuRun,
    SimulatorError,
    SimulatorTimeout,
    qemu_session,
    run_qemu,
)

__all__ = [
    "BOOT_TIMEOUT_S",
    "FirmwareFault",
    "QemuRun",
    "SimulatorError",
    "SimulatorTimeout",
    "qemu_session",
    "run_qemu",
]
