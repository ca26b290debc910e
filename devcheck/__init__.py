"""devcheck: does this machine compute correctly, and how fast?"""

__version__ = "0.1.0"
