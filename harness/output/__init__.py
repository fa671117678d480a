"""Stage 5, outputs: the selection table, the markdown summary, JUnit XML, the records
the README's figures come from, the diff's reports and the Buildkite pipeline, every file
written whole or not at all (:mod:`harness.output.atomic`) into a folder one run holds
(:mod:`harness.output.folder`)."""
