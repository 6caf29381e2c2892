"""The article as data: passages with stable ids that cover the article verbatim."""
import re

from knowledge import article_text, load_passages


def test_passage_ids_are_stable_and_ordered():
    ids = list(load_passages())
    assert ids == [f"p{n:02d}" for n in range(1, len(ids) + 1)]
    assert len(ids) >= 20


def test_passages_are_the_article_verbatim_and_cover_it_all():
    joined = " ".join(p.source for p in load_passages().values())
    assert joined == article_text()


def test_every_passage_has_a_title_and_a_plain_english_text():
    for passage in load_passages().values():
        assert passage.title and passage.text
        assert "TODO" not in passage.text
        # The plain text only states numbers the source states.
        assert set(re.findall(r"\d+", passage.text)) <= set(re.findall(r"\d+", passage.source))
