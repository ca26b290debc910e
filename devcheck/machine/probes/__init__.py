"""Probes: each reads one part of the machine as it is (Python, the CPU, NumPy's BLAS, packages, the CUDA
toolkit, NVML's driver and GPUs, CuPy step by step, CUDA_VISIBLE_DEVICES, MIG, the links between GPUs)
into Fields and Checks. They talk to NVML and CuPy only through replay/seam.py."""
