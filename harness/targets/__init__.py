"""Systems under test: the engines whose NVFP4 kernel selection the harness checks."""
