"""The device model: the devices a command computes on, each one's facts (its model, memory, clocks)
and the peaks its measurements are judged against, built from the probes' readings."""
