"""A per-page count of GUP references, kept by a fix that needs one.

v4.15 cannot tell a GUP reference from any other (Jan Kara: "no space in
struct page" for a separate count). Fixes that need the count keep it themselves
in ``page.extra``, incrementing where GUP hands a reference out
(``get_user_pages_fast``, ``get_user_pages_longterm``) and decrementing where the holder gives it back
(``put_user_page``, ``unpin_user_page``); the count is part of the state the
explorer fingerprints, and its upkeep is part of the fix's cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from mmsim.gup import FOLL_WRITE
from mmsim.policy import Policy

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Page, Vma


class GupCounting(Policy):
    """Keeps ``page.extra[count_key]``: GUP references taken (writable ones only if
    ``writes_only``). A release cannot tell which kind of reference it drops;
    every GUP user in the built-in scenarios writes, so the count is exact there.
    """

    count_key: ClassVar[str] = ""
    writes_only: ClassVar[bool] = False
    #: Count only long-term references (``get_user_pages_longterm``).
    longterm_only: ClassVar[bool] = False

    def get_user_pages_fast(
        self, nxt: Any, k: Kernel, vma: Vma, index: int, flags: int
    ) -> Path:
        page = yield from nxt(k, vma, index, flags)
        if (
            page is not None
            and not self.longterm_only
            and (flags & FOLL_WRITE or not self.writes_only)
        ):
            page.extra[self.count_key] = page.extra.get(self.count_key, 0) + 1
        return page

    def get_user_pages_longterm(
        self, nxt: Any, k: Kernel, vma: Vma, index: int, flags: int
    ) -> Path:
        page, pinned = yield from nxt(k, vma, index, flags)
        if page is not None and (flags & FOLL_WRITE or not self.writes_only):
            page.extra[self.count_key] = page.extra.get(self.count_key, 0) + 1
        return page, pinned

    def put_user_page(self, nxt: Any, k: Kernel, page: Page) -> None:
        self._drop(page)
        nxt(k, page)

    def unpin_user_page(self, nxt: Any, k: Kernel, page: Page) -> None:
        self._drop(page)
        nxt(k, page)

    def _drop(self, page: Page) -> None:
        n = page.extra.get(self.count_key, 0)
        if n > 1:
            page.extra[self.count_key] = n - 1
        else:
            page.extra.pop(self.count_key, None)


def gup_count(page: Page, key: str) -> int:
    """The count a :class:`GupCounting` policy keeps under ``key``."""
    return page.extra.get(key, 0)
