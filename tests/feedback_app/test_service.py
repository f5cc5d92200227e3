"""The labelling service: leases, answers, replays, overlap and agreement, durability."""

from __future__ import annotations

import threading

import pytest
from feedback_helpers import TOKENS, pairs_of, real_segments

from rlhp.data.label_store import read_labels
from rlhp.feedback_app.errors import (
    AlreadyAnsweredError,
    NotYoursError,
    UnauthorizedError,
    UnknownItemError,
)


def test_answers_become_durable_human_labels(make_service, segments):
    service = make_service()
    service.enqueue(pairs_of(segments[:4]), "disagreement")
    offer = service.next_pair("alice")
    out = service.answer("alice", offer["pair_id"], offer["lease"], "left", answer_ms=1500)
    table = read_labels(service.store.directory)  # read back from disk, as the trainer does
    assert table.num_rows == 1 and out == {"label_id": "run-0000000", "your_labels": 1}
    row = table.to_pylist()[0]
    assert row["left"] == segments[0].segment_id and row["right"] == segments[1].segment_id
    assert (row["preference"], row["source"], row["labeler"]) == (1.0, "human", "alice")
    assert row["query_strategy"] == "disagreement"
    assert service.counts() == {"stored": 1, "pending": 1}
    stats = service.stats()
    assert stats["human/labels_by/alice"] == 1 and stats["human/answer_time_median_s"] == 1.5


def test_a_pair_is_not_shown_to_two_people_at_once(make_service, segments):
    service = make_service()
    service.enqueue(pairs_of(segments[:2]), "random")  # one pair
    assert service.next_pair("alice") is not None
    assert service.next_pair("bob") is None


def test_a_reload_gets_the_held_pairs_back_and_at_most_two(make_service, segments):
    service = make_service()
    service.enqueue(pairs_of(segments), "random")  # four pairs
    first, second = service.next_pair("alice"), service.next_pair("alice", [])
    assert first["pair_id"] == second["pair_id"]  # the page lost it: same pair, same lease
    prefetched = service.next_pair("alice", [first["pair_id"]])
    assert prefetched["pair_id"] != first["pair_id"]
    assert service.next_pair("alice", [first["pair_id"], prefetched["pair_id"]]) is None


def test_forged_replayed_and_unknown_submissions_store_nothing(make_service, segments):
    service = make_service()
    service.enqueue(pairs_of(segments[:4]), "random")
    a, b = service.next_pair("alice"), service.next_pair("bob")
    with pytest.raises(NotYoursError):
        service.answer("bob", a["pair_id"], a["lease"], "left")  # someone else's lease
    with pytest.raises(NotYoursError):
        service.answer("alice", a["pair_id"], "forged-lease", "left")
    with pytest.raises(UnknownItemError):
        service.answer("alice", "0123456789abcdef", a["lease"], "left")
    service.answer("alice", a["pair_id"], a["lease"], "right")
    with pytest.raises(AlreadyAnsweredError):
        service.answer("alice", a["pair_id"], a["lease"], "right")  # replay
    with pytest.raises(UnauthorizedError):
        service.authenticate("not-a-token")
    assert len(service.store) == 1 and b is not None


def test_an_expired_lease_moves_the_pair_on(make_service, segments):
    now = [0.0]
    service = make_service(lease_s=10)
    service.clock = lambda: now[0]
    service.enqueue(pairs_of(segments[:2]), "random")
    a = service.next_pair("alice")
    now[0] = 11.0
    b = service.next_pair("bob")
    assert b["pair_id"] == a["pair_id"]
    with pytest.raises(NotYoursError):  # alice's lease ran out and went to bob
        service.answer("alice", a["pair_id"], a["lease"], "left")
    service.answer("bob", b["pair_id"], b["lease"], "left")
    assert len(service.store) == 1


def test_overlap_shows_a_pair_to_several_people_and_reports_agreement(make_service, segments):
    service = make_service(overlap=2)
    service.enqueue(pairs_of(segments[:4]), "random")
    for choices in (("left", "left"), ("left", "right")):
        a, b = service.next_pair("alice"), service.next_pair("bob")
        assert a["pair_id"] == b["pair_id"]
        service.answer("alice", a["pair_id"], a["lease"], choices[0])
        service.answer("bob", b["pair_id"], b["lease"], choices[1])
    stats = service.stats()
    assert stats["human/agreement"] == 0.5 and len(service.store) == 4
    assert service.counts()["pending"] == 0


def test_tie_and_cant_tell_rates(make_service, segments):
    service = make_service()
    service.enqueue(pairs_of(segments), "random")
    for choice in ("tie", "cant_tell", "left", "cant_tell"):
        offer = service.next_pair("alice")
        service.answer("alice", offer["pair_id"], offer["lease"], choice)
    prefs = read_labels(service.store.directory).column("preference").to_pylist()
    assert prefs == [0.5, None, 1.0, None]
    stats = service.stats()
    assert stats["human/tie_rate"] == 0.25 and stats["human/cant_tell_rate"] == 0.5


def test_concurrent_answers_are_each_stored_once(make_service):
    service = make_service(tokens={f"tok-{i:02d}-0123456789abcdef": f"l{i}" for i in range(8)})
    service.enqueue(pairs_of(real_segments(160, length=4)), "random")
    errors: list[BaseException] = []

    def labeller(name: str) -> None:
        try:
            while (offer := service.next_pair(name)) is not None:
                service.answer(name, offer["pair_id"], offer["lease"], "left")
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=labeller, args=(f"l{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    table = read_labels(service.store.directory)
    pairs = list(
        zip(table.column("left").to_pylist(), table.column("right").to_pylist(), strict=True)
    )
    assert not errors and table.num_rows == 80 and len(set(pairs)) == 80
    assert len(set(table.column("label_id").to_pylist())) == 80


def test_tokens_need_a_name_and_a_long_secret(tmp_path):
    from rlhp.errors import ConfigError
    from rlhp.feedback_app.tokens import load_or_generate, read_tokens

    bad = tmp_path / "tokens"
    bad.write_text("alice:short\n")
    with pytest.raises(ConfigError, match="line 1"):
        read_tokens(bad)
    generated = load_or_generate(None, tmp_path, 3)
    assert sorted(generated.values()) == ["labeller-1", "labeller-2", "labeller-3"]
    assert (tmp_path / "feedback_tokens.txt").stat().st_mode & 0o777 == 0o600
    assert load_or_generate(None, tmp_path, 3) == generated  # kept for a resumed run
    assert TOKENS  # the fixtures' tokens pass the same rules
    good = tmp_path / "good"
    good.write_text("".join(f"{n}:{t}\n" for t, n in TOKENS.items()))
    assert read_tokens(good) == TOKENS
