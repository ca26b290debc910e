"""What `devcheck train` trains, as typed values (parsed and checked at the command line)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    epochs: int = 60
    batch_size: int = 32
    lr: float = 0.005
    hidden: int = 64
    optimizer: str = "adam"
    seed: int = 0
    num_workers: int = 0
    min_accuracy: float = 0.95
    samples: int = 2000
