"""nvfp4-matrix kernels: the NVFP4 format, one class per GEMM backend, and their selection.

This package never imports :mod:`harness`; it reads the hardware only through
:mod:`kernels.platform`.
"""

__version__ = "0.1.0"
