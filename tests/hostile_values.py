"""Values an attacker controls (file names, argv, environment, socket paths), as Hypothesis
strategies shared by the property tests."""

from __future__ import annotations

from hypothesis import strategies as st

HOSTILE_TEXT = st.one_of(
    st.text(max_size=64),
    st.sampled_from(["\x1b[2J", "a\nb", "\r", "\x00", "\ud800", "\udfff", "\u202e", "/" * 4096, "%s%n", "{{ 7*7 }}"]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    HOSTILE_TEXT,
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(HOSTILE_TEXT, inner, max_size=4), max_leaves=12
)
