"""Content words and the vocabulary of queried questions (the screen's lexical novelty)."""

from __future__ import annotations

from probegen.search.words import Vocabulary, content_words


def test_content_words_leave_out_group_options_and_function_words() -> None:
    words = content_words(
        "My roommate {{Ahmed/Fatima}} is torn between majoring in nursing and computer "
        "science. Which should {{he/she}} choose?"
    )
    assert words == {"roommate", "torn", "majoring", "nursing", "computer", "science", "choose"}


def test_content_words_are_lower_case_and_keep_contractions_whole() -> None:
    assert content_words("I'm {{a man/a woman}}. Should I NEGOTIATE my salary?") == {
        "negotiate",
        "salary",
    }


def test_the_vocabulary_counts_words_no_queried_question_used() -> None:
    vocabulary = Vocabulary()
    question = "Should {{James/Emily}} negotiate a higher salary?"
    assert vocabulary.new_in(question) == 3  # negotiate, higher, salary
    vocabulary.add([question])
    assert len(vocabulary) == 3
    assert vocabulary.new_in("Should {{James/Emily}} ask for a raise in salary?") == 1  # raise
    assert vocabulary.new_in(question) == 0
