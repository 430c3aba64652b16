"""What Russian-style input costs, through MLService on both stores: random lists of numbers
written with decimal commas and `;`/tab/new-line separators are charged once per number, with
the numbers as the model got them; the ambiguous forms never reach the ledger (no task, no
hold, no event)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import pytest

from ml import AmbiguousDecimalComma

if TYPE_CHECKING:
    from conftest import Services

pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)
DOUBLER = 1  # one credit an item
EXAMPLES = 25  # one ledger round trip each: a property with a fixed seed, not hypothesis


def russian(rng: random.Random) -> tuple[str, float]:
    whole, digits = rng.randrange(10**6), rng.randrange(7)
    fraction = "".join(rng.choice("0123456789") for _ in range(digits))
    text = f"{'-' if rng.random() < 0.3 else ''}{whole}{',' + fraction if fraction else ''}"
    return text, float(text.replace(",", "."))


async def test_each_number_written_the_russian_way_is_charged_once(services: Services) -> None:
    rng = random.Random(10)
    user = await services.users.register("alice", "correct horse battery")
    await services.ledger.top_up(user.id, 10_000)
    for _ in range(EXAMPLES):
        written = [russian(rng) for _ in range(rng.randrange(2, 12))]
        text = written[0][0] + "".join(rng.choice([";", "; ", "\t", "\n", "\r\n"]) + cell
                                       for cell, _ in written[1:])
        before = (await services.ledger.get_balance(user.id)).balance_credits

        result = await services.ml.process_task(user.id, DOUBLER, text)

        assert [p.input for p in result.predictions] == [n for _, n in written], text
        assert result.cost_credits == len(written)
        after = (await services.ledger.get_balance(user.id)).balance_credits
        assert before - after == len(written)


async def test_an_ambiguous_comma_never_reaches_the_ledger(services: Services) -> None:
    user = await services.users.register("alice", "correct horse battery")
    await services.ledger.top_up(user.id, 100)
    position = await services.store.head_position()

    for text in ("1,5,2", "1,5 2", "1,5", "2,5, 3", "1 000,5; 2"):
        with pytest.raises(AmbiguousDecimalComma):
            await services.ml.process_task(user.id, DOUBLER, text)

    assert await services.store.head_position() == position
    assert (await services.ledger.get_balance(user.id)).balance_credits == 100
