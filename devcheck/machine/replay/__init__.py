"""The hardware seam and what stands behind it: the real NVML and CuPy, or a recording of a real
machine replayed through a stand-in that says only what the recording says (`DEVCHECK_REPLAY=FILE`),
and the recorder that makes such recordings (`devcheck env --record FILE`)."""
