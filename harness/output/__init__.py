"""Stage 5, outputs: the selection table, the markdown summary, JUnit XML and the
Buildkite pipeline (the pytest plugin, :mod:`harness.plugin`, is the other way out)."""
