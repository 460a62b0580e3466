"""The ``cow`` personality: btrfs (fs/btrfs/), v4.15, data copy-on-write.

:class:`Btrfs` plugs :mod:`mmsim.btrfs.inode` and :mod:`mmsim.btrfs.extent_io`
into the generic paths.
"""

from mmsim.btrfs.inode import Btrfs as Btrfs

__all__ = ["Btrfs"]
