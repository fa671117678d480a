"""Triton kernels of the ``triton`` NVFP4 backend (see kernels/linear/triton.py).

* :mod:`.layout`: offline weight layouts (pure torch);
* :mod:`.plan`: the (N, K)-only reduction plan and the per-M tile table;
* :mod:`.quantize`: row-local W4A4 activation quantization;
* :mod:`.dequant_gemm`: explicit-dequant GEMM (sm80, sm90, interpreter);
* :mod:`.dot_scaled_gemm`: ``tl.dot_scaled`` NVFP4 GEMM (Blackwell).

``layout`` and ``plan`` are pure torch; importing the three kernel modules
imports Triton, and on a CPU ``TRITON_INTERPRET=1`` must be set before that
import for the kernels to run (the interpreter).
"""
