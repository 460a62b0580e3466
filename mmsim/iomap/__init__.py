"""fs/iomap/: the iomap library: buffered I/O (XFS's page-cache writeback) and
direct I/O (XFS's O_DIRECT reads, and ext4's from v5.5)."""
