import math

import numpy as np
import pytest

from database import Database
from matching.decision import choose_threshold
from matching.matcher import Matcher


def unit_rows(count, seed, d=32):
    rows = np.random.default_rng(seed).standard_normal((count, d)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def noisy(rows, amount, seed):
    rows = rows + amount * np.random.default_rng(seed).standard_normal(rows.shape).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture
def collection():
    return [(f"song{n}", unit_rows(count, n), count * 0.5 + 0.5, "") for n, count in enumerate([40, 60, 30, 2])]


def test_a_query_cut_from_a_song_is_found_with_its_offset(collection):
    matcher = Matcher(Database.build(collection), neighbors=4)
    query = noisy(collection[1][1][20:29], 0.3, seed=7)
    match = matcher.match(query)
    assert match.song == "song1" and match.song_index == 1
    assert match.offset_seconds == 10.0
    expected = np.mean(np.sum(query * collection[1][1][20:29], axis=1))  # mean inner product of aligned rows
    assert match.score == pytest.approx(expected, abs=1e-5)
    assert match.ranked[0] == ("song1", 10.0, match.score)
    assert match.margin > 0.3


def test_the_first_song_and_its_very_first_row_are_matchable(collection):
    match = Matcher(Database.build(collection)).match(collection[0][1][:9])
    assert (match.song, match.offset_seconds) == ("song0", 0.0)
    assert match.score == pytest.approx(1.0, abs=1e-5)


def test_a_query_at_the_very_end_of_a_song_is_found(collection):
    match = Matcher(Database.build(collection)).match(collection[2][1][-9:])
    assert (match.song, match.offset_seconds) == ("song2", 10.5)


def test_a_query_running_past_the_song_end_is_scored_on_its_rows_inside_the_song(collection):
    # the last 7 rows of song0 followed by 2 rows that belong to no song
    query = np.concatenate([collection[0][1][-7:], unit_rows(2, 99)])
    match = Matcher(Database.build(collection)).match(query)
    assert (match.song, match.offset_seconds) == ("song0", 16.5)
    assert match.score == pytest.approx(1.0, abs=1e-5)


def test_a_candidate_that_would_start_before_the_song_is_not_kept(collection):
    # query rows 2.. equal song1's rows 0..; rows 0-1 are foreign: start row would be -2
    query = np.concatenate([unit_rows(2, 98), collection[1][1][:7]])
    match = Matcher(Database.build(collection), neighbors=1).match(query)
    assert match.song != "song1" or match.offset_seconds >= 0.0
    assert all(offset >= 0 for _, offset, _ in match.ranked)


def test_a_song_shorter_than_the_query_is_matched_on_its_rows(collection):
    match = Matcher(Database.build(collection)).match(np.concatenate([collection[3][1], unit_rows(7, 97)]))
    assert (match.song, match.offset_seconds) == ("song3", 0.0)


def test_threshold_turns_a_weak_best_candidate_into_no_match(collection):
    database = Database.build(collection)
    stranger = unit_rows(9, 1234)
    open_match = Matcher(database).match(stranger)
    assert open_match.song is not None  # without a threshold something always wins
    match = Matcher(database, threshold=0.5).match(stranger)
    assert match.song is None and match.song_index is None
    assert match.score == open_match.score < 0.5  # the rejected candidate's score is still reported
    assert Matcher(database, threshold=0.5).match(collection[1][1][3:12]).song == "song1"


def test_faiss_minus_one_ids_are_skipped():
    # IVF with one list probed: k larger than the probed list makes faiss pad with -1
    collection = [(f"song{n}", unit_rows(100, n), 50.0, "") for n in range(4)]
    database = Database.build(collection, factory="IVF16,Flat")
    matcher = Matcher(database, neighbors=200, nprobe=1)
    _, ids = database.index.search(collection[2][1][10:19], 200)
    assert (ids == -1).any()
    match = matcher.match(collection[2][1][10:19])
    assert (match.song, match.offset_seconds) == ("song2", 5.0)


def test_exact_ties_are_broken_by_song_name_not_index_order():
    rows = unit_rows(12, 5)
    database = Database.build([("zeta", rows, 6.5, ""), ("alpha", rows.copy(), 6.5, "")])
    match = Matcher(database).match(rows[2:9])
    assert match.song == "alpha" and match.margin == 0.0


def test_majority_vote_picks_the_song_with_most_hits(collection):
    matcher = Matcher(Database.build(collection), neighbors=3, method="vote")
    match = matcher.match(noisy(collection[1][1][30:39], 0.2, seed=3))
    assert (match.song, match.offset_seconds) == ("song1", 15.0)
    query = noisy(collection[1][1][30:39], 0.2, seed=3)
    expected = np.mean(np.sum(query * collection[1][1][30:39], axis=1))  # aligned similarity, not a vote share
    assert match.score == pytest.approx(expected, abs=1e-5) and match.hits >= 9


def test_vote_ranks_by_votes_and_its_score_separates_a_unanimous_stranger_from_a_true_match():
    # One song, so every hit of any query votes for it: a vote share would be 1.0 for both.
    database = Database.build([("only", unit_rows(40, 1), 20.5, "")])
    matcher = Matcher(database, neighbors=2, method="vote")
    stranger, true = matcher.match(unit_rows(3, 77)), matcher.match(noisy(unit_rows(40, 1)[10:13], 0.1, seed=4))
    assert stranger.song == true.song == "only" and true.offset_seconds == 5.0
    assert true.score > 0.7 > 0.4 > stranger.score
    assert Matcher(database, neighbors=2, method="vote", threshold=0.5).match(unit_rows(3, 77)).song is None


def test_empty_queries_and_bad_arguments():
    database = Database.build([("a", unit_rows(5, 1), 3.0, "")])
    match = Matcher(database).match(np.zeros((0, 32), np.float32))
    assert match.song is None and match.score == -1.0
    with pytest.raises(ValueError, match="method"):
        Matcher(database, method="best")
    with pytest.raises(ValueError, match=r"\(J, 32\)"):
        Matcher(database).match(np.zeros((3, 16), np.float32))


def test_choose_threshold_keeps_the_false_match_rate():
    negatives = np.linspace(0.0, 0.99, 100)
    threshold = choose_threshold(negatives, false_match_rate=0.05)
    assert np.mean(negatives >= threshold) <= 0.05
    assert np.mean(negatives >= np.nextafter(negatives[-6], -math.inf)) > 0.05  # the lowest such threshold
    assert choose_threshold([0.3, 0.3, 0.3], 0.0) > 0.3
    with pytest.raises(ValueError):
        choose_threshold([], 0.01)


def test_matching_many_queries_at_once_gives_the_same_answers(collection):
    matcher = Matcher(Database.build(collection), neighbors=4, threshold=0.5)
    queries = [noisy(collection[n][1][s : s + 9], 0.2, seed=n) for n, s in ((0, 3), (1, 40), (2, 0))]
    queries += [unit_rows(5, 77), np.zeros((0, 32), np.float32), collection[3][1]]
    assert matcher.match_many(queries) == [matcher.match(query) for query in queries]


def test_a_matcher_for_another_model_is_refused(collection):
    from database import DatabaseError

    identity = {"model_str": "fingerprinter", "width": 1.0, "embedding_dim": 32, "model_id": "a", "frontend": {}}
    database = Database.build(collection, identity=identity)
    Matcher(database, identity=dict(identity))
    with pytest.raises(DatabaseError, match="weights a.*weights b"):
        Matcher(database, identity=dict(identity, model_id="b"))
