"""The stream's text feed (server/model_api/feed.py): a key split across pieces of a synthesis is never
sent, what is sent adds up to the redacted answer, and a stream whose text was not the answer ends
with a note and the answer."""

import pytest

from fusion_mcp.redaction import redact
from fusion_mcp.server.model_api.feed import TextFeed
from tests.conftest import LAB_KEY


@pytest.mark.parametrize("size", [1, 3, 7, 50])
def test_a_key_split_over_pieces_is_never_sent_and_the_rest_completes_the_answer(size):
    raw = "Before the key " + LAB_KEY + " and a long tail after it, so that the feed clears most of it. " * 3
    feed = TextFeed()
    sent = ""
    for i in range(0, len(raw), size):
        feed.write(raw[i:i + size])
        sent += feed.take()
        assert not any(LAB_KEY[j:j + 12] in sent for j in range(len(LAB_KEY) - 11))
    assert len(sent) > 0  # most of the text goes out before the end, not all at once
    answer = redact(raw)
    assert sent + feed.rest(answer, "unused") == answer


def test_a_stream_that_was_not_the_answer_ends_with_a_note_and_the_answer():
    feed = TextFeed()
    feed.write("A synthesis that broke off halfway through its first sentence, and then")
    sent = feed.take()
    assert sent
    rest = feed.rest("The best draft's answer.", "the synthesis failed; the answer is the best-weighted draft")
    assert rest.startswith("\n\n[fusion: the text above is not the answer (the synthesis failed")
    assert rest.endswith("The best draft's answer.")
