"""The mutation lanes: mutants of the selection code, each killed through an evaluation session.

Two lanes share the pieces: the project's lane (:mod:`harness.mutation.project`,
``python -m harness.mutation``) mutates this project's selection code and
kills each mutant with the matrix, then the fast unit tests; the vLLM lane
(:mod:`harness.mutation.vllm`, ``python -m harness.mutation.vllm``) mutates
the installed vLLM's selection function at run time and kills each mutant with
its release line's matrix. One module per job: :mod:`~harness.mutation.config`
(the checkout, the configuration), :mod:`~harness.mutation.units` (which unit a
line belongs to), :mod:`~harness.mutation.mutants` (generation, keys, shards),
:mod:`~harness.mutation.equivalents` (the recorded survivors),
:mod:`~harness.mutation.kill` (forked kills, cosmic-ray sessions, parts),
:mod:`~harness.mutation.score` (the verdict), :mod:`~harness.mutation.cli`.
cosmic-ray is imported only where mutants are generated or applied.
"""
