"""The ext4 personality (fs/ext4/), v4.15, with delayed allocation.

:class:`Ext4` plugs the functions of :mod:`mmsim.ext4.inode` and
:mod:`mmsim.ext4.page_io` into the generic paths as its address-space operations.
"""

from mmsim.ext4.inode import Ext4 as Ext4

__all__ = ["Ext4"]
