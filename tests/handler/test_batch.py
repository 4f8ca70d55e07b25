"""One call for many items, then each alone when AWS refuses the call."""

from __future__ import annotations

from botocore.exceptions import ClientError

from handler.batch import chunks, together_or_alone

REFUSED = ClientError({"Error": {"Code": "ValidationError", "Message": "no such group b"}},
                      "CreateOrUpdateTags")


def _run(items: list[str], refuse: set[str]) -> tuple[list[list[str]], list[str | None], list]:
    calls: list[list[str]] = []
    refusals: list = []

    def together(batch):
        calls.append(list(batch))
        if refuse & set(batch):
            raise REFUSED
        return "ok"

    def alone(item):
        try:
            together([item])
        except ClientError:
            return item
        return None

    results = together_or_alone(items, together, lambda batch, answer: [None] * len(batch),
                                alone, lambda batch, error: refusals.append((list(batch),
                                                                            error)))
    return calls, results, refusals


def test_an_accepted_batch_is_one_call():
    calls, results, refusals = _run(["a", "b", "c"], refuse=set())
    assert (calls, results, refusals) == ([["a", "b", "c"]], [None, None, None], [])


def test_a_refused_batch_is_made_again_one_item_a_call():
    calls, results, refusals = _run(["a", "b", "c"], refuse={"b"})
    assert calls == [["a", "b", "c"], ["a"], ["b"], ["c"]]
    assert results == [None, "b", None]             # the refusal is b's only
    assert refusals == [(["a", "b", "c"], REFUSED)]


def test_a_single_item_is_made_alone_at_once():
    calls, results, refusals = _run(["b"], refuse={"b"})
    assert (calls, results, refusals) == ([["b"]], ["b"], [])


def test_chunks_keep_the_order_and_the_remainder():
    assert [list(c) for c in chunks(list("abcde"), 2)] == [["a", "b"], ["c", "d"], ["e"]]
