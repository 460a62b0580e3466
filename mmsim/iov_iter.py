"""lib/iov_iter.c: how direct I/O gets at the user's buffer pages.

v4.15 ``iov_iter_get_pages()`` takes FOLL_GET references through
``get_user_pages_fast``; v6.3 added ``iov_iter_extract_pages()`` (7d58fe731028),
which pins user-backed iterators with FOLL_PIN, and v6.5 converted the block
layer and fs/direct-io.c to it (``BIO_PAGE_PINNED``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsim.engine import kernel
from mmsim.gup import FOLL_WRITE, pin_user_pages_fast

if TYPE_CHECKING:
    from mmsim.engine import Path
    from mmsim.machine import Kernel
    from mmsim.mm_types import Vma

__all__ = ["iov_iter_extract_pages", "iov_iter_get_pages"]


@kernel("lib/iov_iter.c")
def iov_iter_get_pages(k: Kernel, vma: Vma, index: int, write: bool) -> Path:
    """Models iov_iter_get_pages(), v4.15: ``get_user_pages_fast`` (FOLL_GET).

    This is a hook: a policy may make direct I/O pin instead. Returns
    ``(page, pinned)``; ``page`` is None when the buffer cannot be faulted in.
    """
    page = yield from k.ops.get_user_pages_fast(
        k, vma, index, FOLL_WRITE if write else 0
    )
    return page, False


@kernel("lib/iov_iter.c", version="v6.3")
def iov_iter_extract_pages(k: Kernel, vma: Vma, index: int, write: bool) -> Path:
    """Models iov_iter_extract_pages(), v6.3: pin a user-backed buffer (FOLL_PIN)."""
    page = yield from pin_user_pages_fast(k, vma, index, FOLL_WRITE if write else 0)
    return page, page is not None
