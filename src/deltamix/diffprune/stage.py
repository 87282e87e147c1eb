"""Stage: which of its stages a diff is in (learned gates, dense diff, fixed mask), and what each holds."""

from __future__ import annotations

import enum


class Stage(enum.StrEnum):
    """The stage of a :class:`~deltamix.diffprune.diff_state.DiffState`; a ``str`` (``Stage.L0 == "l0"``).

    What the state holds in each (d = number of gated entries, k = number kept):

    - ``L0``: flat fp32 ``w`` (d,) and gate log-odds ``alpha`` (d,) (plus ``group_alpha``, one per
      tensor, when structured, and ``lagrange_multipliers`` (2,) with a target density);
      delta = z(alpha) * w [* z_g]. Where a diff starts when ``learn_gates`` is True.
    - ``DENSE_DIFF``: ``w`` (d,) only, delta = w (``learn_gates=False``: the non-adaptive
      baseline's first stage).
    - ``FIXED_MASK``: after projection, ``kept_values`` (k,) at sorted flat ``kept_indices`` (k,)
      int64; w and the gates are freed.

    ``project_()`` moves L0 or DENSE_DIFF to FIXED_MASK (and FIXED_MASK to a smaller FIXED_MASK);
    nothing moves back.

    >>> Stage.L0 == "l0", f"{Stage.FIXED_MASK}"
    (True, 'fixed_mask')
    """

    L0 = "l0"
    DENSE_DIFF = "dense_diff"
    FIXED_MASK = "fixed_mask"

    @classmethod
    def initial(cls, learn_gates: bool) -> Stage:
        """The stage a new diff starts in: ``L0`` with learned gates, ``DENSE_DIFF`` without."""
        return cls.L0 if learn_gates else cls.DENSE_DIFF
