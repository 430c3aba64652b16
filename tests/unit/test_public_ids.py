"""The public id codec: reversible with its key, opaque without it, strict about input."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from web.public_ids import MAX_ID, TASK, TRANSACTION, PublicIdCodec, PublicIds

codec = PublicIdCodec(b"k" * 32)
ids = PublicIds(b"s" * 32)
numbers = st.integers(1, MAX_ID - 1)
SHAPE = re.compile(r"(tsk|txn)_[0-9a-hjkmnp-tv-z]{13}")


@given(numbers)
def test_every_id_comes_back_from_its_text(number: int) -> None:
    text = codec.encode(TASK, number)
    assert SHAPE.fullmatch(text)
    assert codec.decode(TASK, text) == number


@given(numbers, numbers)
def test_distinct_numbers_get_distinct_texts(a: int, b: int) -> None:
    assert (codec.encode(TASK, a) == codec.encode(TASK, b)) == (a == b)


def test_neighbouring_numbers_look_unrelated_and_the_key_matters() -> None:
    texts = [codec.encode(TASK, n) for n in range(1, 200)]
    assert texts != sorted(texts)  # no order leaks through
    assert len({t[4:8] for t in texts}) > 150  # no shared leading characters either
    other = PublicIdCodec(b"x" * 32)
    assert other.encode(TASK, 1) != codec.encode(TASK, 1)
    assert other.decode(TASK, codec.encode(TASK, 1)) != 1


def test_a_task_id_is_not_a_transaction_id() -> None:
    assert codec.decode(TRANSACTION, codec.encode(TASK, 7)) is None
    assert ids.parse(TASK, ids.transaction(7)) is None


@given(st.text(max_size=30))
def test_garbage_is_none_never_an_error(text: str) -> None:
    result = codec.decode(TASK, text)
    assert result is None or 0 < result < MAX_ID


def test_wrong_lengths_letters_and_overflow_are_refused() -> None:
    good = codec.encode(TASK, 46)
    for bad in ["", "tsk_", good + "0", good[:-1], good.upper(), good[:-1] + "u",
                "tsk_" + "z" * 13, "TSK_" + good[4:], "46 ", "tsk_٣٣٣٣٣٣٣٣٣٣٣٣٣"]:
        assert codec.decode(TASK, bad) is None, bad


def test_the_old_plain_numbers_still_parse() -> None:
    assert ids.parse(TASK, "46") == 46
    assert ids.parse(TASK, ids.task(46)) == 46
    assert ids.parse(TRANSACTION, "184") == 184
    for bad in ["0", "-1", "1" * 19, "٣", "4.5", "1e3"]:
        assert ids.parse(TASK, bad) is None, bad


def test_the_key_is_derived_from_the_session_key_alone() -> None:
    assert PublicIds(b"s" * 32).task(5) == ids.task(5)  # another process, same secret
    later = PublicIds()
    later.use_key(b"s" * 32)  # PostgreSQL: the key comes when the store opens
    assert later.task(5) == ids.task(5)
    assert PublicIds(b"t" * 32).task(5) != ids.task(5)


def test_ids_already_given_out_keep_their_text() -> None:
    """Written by the codec before its round function became hmac.digest: a user's saved
    tsk_/txn_ ids must keep naming the same task and transaction."""
    issued = {1: "tsk_cw5pn3z4vga88", 2: "tsk_a5r8ahhwq9wsn", 77: "tsk_3drwrtbp1px3w",
              123456789: "tsk_dn2ynt98pg2e8", 2**53 - 1: "tsk_a3c9k0y873tr2"}
    for number, text in issued.items():
        assert codec.encode(TASK, number) == text
        assert codec.decode(TASK, text) == number
    assert codec.encode(TRANSACTION, 42) == "txn_ba2w35t1s7da7"
