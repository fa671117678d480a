"""Stage 4, evaluation: cells from the matrix, the oracle's expectation, the target's
outcome, their comparison; and the reality check of a real machine."""
