"""The article search behind the fallback: relevant passages are found, noise is not."""
import pytest

from knowledge.search import default_index, query_lemmas


@pytest.mark.parametrize(
    "query,expected",
    [
        ("how long should I wear a corset", "p26"),
        ("does vitamin D have anything to do with it", "p07"),
        ("what is the dura mater", "p04"),
        ("how much does an operation cost", "p19"),
        ("is sitting at a desk all day bad for me", "p23"),
        ("pain when walking that goes away when I cycle", "p04"),
        ("will a ct scan show the size", "p10"),
        ("mattress advice", "p23"),
    ],
)
def test_relevant_questions_find_their_passage(query, expected):
    hits = default_index().search(query, limit=3)
    assert hits and hits[0].relevant
    assert expected in [hit.passage.id for hit in hits]


@pytest.mark.parametrize(
    "query",
    [
        "what's the weather in paris",
        "my knee hurts",
        "best pizza in town",
        "is ibuprofen safe",
        "i like football",
        "covid vaccine side effects",
        "hello",
        "",
        "🙂🙂",
    ],
)
def test_unrelated_questions_are_not_relevant(query):
    hits = default_index().search(query)
    assert not hits or not hits[0].relevant


def test_words_without_a_topic_are_ignored():
    assert query_lemmas("I really like it, thanks") == []
    assert query_lemmas("Calcified discs") == ["calcify", "disc"]


def test_coverage_ranks_before_raw_score():
    hits = default_index().search("is sitting at a desk all day bad for me", limit=3)
    assert hits[0].coverage >= hits[-1].coverage
