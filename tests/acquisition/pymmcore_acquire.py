"""A Micro-Manager acquisition on Linux with no device-adapter binaries: pymmcore-plus's pure-Python
core (UniMMCore) with a Python camera, running a multi-dimensional acquisition (MDA) of N time
points that its TensorStoreHandler writes to a Zarr array on disk as the frames land.

Usage: python pymmcore_acquire.py OUTPUT.zarr FRAMES INTERVAL_MS
Writes OUTPUT.zarr (Zarr v3, shape (FRAMES, 64, 64), uint16, one chunk per frame). It writes no end
marker: deepcad --follow stops when the array stops changing (--follow-idle) or at --follow-frames.
"""

import sys

import numpy as np
import useq
from pymmcore_plus.experimental.unicore import SimpleCameraDevice, UniMMCore
from pymmcore_plus.mda.handlers import TensorStoreHandler

SIDE = 64


class NoisyCamera(SimpleCameraDevice):
    """A simulated camera: a few slowly blinking cells under shot noise, deterministic per frame."""

    def __init__(self) -> None:
        super().__init__()
        self._exposure = 5.0
        self._frame = 0
        yy, xx = np.mgrid[0:SIDE, 0:SIDE]
        centres = [(16, 20), (40, 44), (30, 12), (50, 24)]
        self._cells = [np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 18.0) for y, x in centres]

    def get_exposure(self) -> float:
        return self._exposure

    def set_exposure(self, exposure: float) -> None:
        self._exposure = exposure

    def sensor_shape(self) -> tuple[int, int]:
        return (SIDE, SIDE)

    def dtype(self) -> str:
        return "uint16"

    def snap(self, buffer: np.ndarray) -> dict:
        t = self._frame
        self._frame += 1
        rng = np.random.default_rng(t)
        signal = 200.0 + sum(
            400.0 * (1 + np.sin(0.2 * t + k)) * cell for k, cell in enumerate(self._cells)
        )
        buffer[:] = rng.poisson(signal).clip(0, 65535).astype(np.uint16)
        return {}


def main() -> None:
    output, frames, interval_ms = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    core = UniMMCore()
    core.loadPyDevice("Camera", NoisyCamera())
    core.initializeDevice("Camera")
    core.setCameraDevice("Camera")
    core.setExposure(5.0)
    # No shutter device: the camera alone, light always on.
    core.setAutoShutter(False)
    sequence = useq.MDASequence(time_plan={"interval": interval_ms / 1000.0, "loops": frames})
    writer = TensorStoreHandler(driver="zarr3", path=output)
    core.mda.run(sequence, output=writer)
    print(f"acquired {frames} frames into {output}", flush=True)


if __name__ == "__main__":
    main()
