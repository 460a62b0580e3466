"""The ``iomap`` personality: XFS (fs/xfs/) with iomap buffered I/O, v5.14.

:class:`Xfs` plugs :mod:`mmsim.xfs.xfs_aops`, :mod:`mmsim.xfs.xfs_file` and
:mod:`mmsim.iomap.buffered_io` into the generic paths.
"""

from mmsim.xfs.xfs_file import Xfs as Xfs

__all__ = ["Xfs"]
