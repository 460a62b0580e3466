"""The unfixed kernel, v4.15: no hook is overridden.

Proposal: none; this is the behaviour Jan Kara reported on 3 Jan 2018
(https://lore.kernel.org/linux-mm/20180103100430.GE4911@quack2.suse.cz/).
Status: what every kernel from the introduction of get_user_pages() to v4.15 did.
"""

from __future__ import annotations

from mmsim.policy import Policy


class Baseline(Policy):
    """The v4.15 kernel as it was when the race was reported."""

    name = "baseline"
    summary = "v4.15 as reported: no fix"
    status = "merged (the bug)"
    link = "https://lore.kernel.org/linux-mm/20180103100430.GE4911@quack2.suse.cz/"
    kernel_version = "v4.15"
