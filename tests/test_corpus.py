"""The conformance corpus must be where the tests look for it: an empty glob would
quietly turn the corpus-driven tests into no tests at all."""

from helpers.corpus import EXAMPLES


def test_the_k8s_examples_corpus_is_found() -> None:
    assert len(list(EXAMPLES.rglob("*.yaml"))) >= 60, f"no corpus at {EXAMPLES}"
