"""One call for many resources, then each alone if AWS refuses the call.

Calls that take many resources (tags on groups, stop or terminate instances) fail as a
whole when one resource is refused (deleted meanwhile, say). Made again one resource a
call, a refusal stays that resource's, and the others still get the call. The happy
path costs one call per batch; a refused batch costs one more call per resource.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError

Item = TypeVar("Item")
Answer = TypeVar("Answer")
Result = TypeVar("Result")


def chunks(items: Sequence[Item], size: int) -> Iterator[Sequence[Item]]:
    """``items`` in order, ``size`` at a time (the last chunk may be shorter)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def together_or_alone(items: Sequence[Item], together: Callable[[Sequence[Item]], Answer],
                      answered: Callable[[Sequence[Item], Answer], list[Result]],
                      alone: Callable[[Item], Result],
                      refused: Callable[[Sequence[Item], ClientError | BotoCoreError], None]
                      ) -> list[Result]:
    """``together(items)``, one call, and ``answered`` its results (one per item, in
    order); when AWS refuses it (a ClientError, or a network error), ``refused`` notes
    it and each item is made ``alone``. A single item is made ``alone`` at once."""
    if len(items) == 1:
        return [alone(items[0])]
    try:
        answer = together(items)
    except (ClientError, BotoCoreError) as error:
        refused(items, error)
        return [alone(item) for item in items]
    return answered(items, answer)
