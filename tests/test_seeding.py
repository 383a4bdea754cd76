"""Bulk-built participant streams are numpy's SeedSequence/PCG64 streams, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from isletsim.params import select_patients
from isletsim.seeding import assembled_entropy, generators, int_words, seed_states
from isletsim.therapy.graft import participant_streams
from isletsim.therapy.hypoglycemia import HypoglycemiaSelfCare, participant_key
from isletsim.therapy.regimens import BasalBolus, participant_rngs


def _cases():
    rng = np.random.default_rng(0)
    yield 0, ()
    yield 1, (3,)
    yield 2**64 + 5, ()
    yield [7, int.from_bytes(b"adult#001\x01", "little")], ()
    for _ in range(60):
        entropy = int(rng.integers(0, 2**63)) * int(rng.integers(1, 2**40))
        key = tuple(int(v) for v in rng.integers(0, 2**32, rng.integers(0, 25)))
        yield entropy, key


@pytest.mark.parametrize("pool_size", [4, 8])
def test_states_and_draws_equal_numpy(pool_size):
    cases = list(_cases())
    ent = [assembled_entropy(e, k, pool_size) for e, k in cases]
    ours = seed_states(ent, 11, pool_size)
    gens = generators(ent, pool_size)
    for (e, k), row, g in zip(cases, ours, gens, strict=True):
        ss = np.random.SeedSequence(e, spawn_key=k, pool_size=pool_size)
        np.testing.assert_array_equal(row, ss.generate_state(11))
        ref = np.random.default_rng(ss)
        np.testing.assert_array_equal(g.random(5), ref.random(5))
        np.testing.assert_array_equal(g.standard_normal(3), ref.standard_normal(3))


def test_words_and_errors():
    assert int_words(0) == [0]
    assert int_words(2**32) == [0, 1]
    with pytest.raises(ValueError, match=">= 0"):
        int_words(-1)


def test_participant_streams_are_numpys():
    """The package's stream builders equal their one-at-a-time numpy definitions."""
    root = np.random.SeedSequence(12345).spawn(3)[2]
    for got, i in zip(participant_streams(root, 5, start=7), range(7, 12), strict=True):
        ref = np.random.default_rng(
            np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, i))
        )
        np.testing.assert_array_equal(got.random(4), ref.random(4))
    keys = ["adult#001", "r12.P0003", "enfant-é"]
    for got, key in zip(participant_rngs(9, keys, 4), keys, strict=True):
        ref = np.random.default_rng(np.random.SeedSequence(9, spawn_key=(4, *key.encode())))
        np.testing.assert_array_equal(got.standard_normal(3), ref.standard_normal(3))
    bound = HypoglycemiaSelfCare(BasalBolus(), seed=3).bind(
        select_patients(["adult#001"] * 3).assign(Name=keys)
    )
    ref = [participant_key(3, k).generate_state(1, np.uint64)[0] for k in keys]
    np.testing.assert_array_equal(bound.keys, np.array(ref, dtype=np.uint64))
