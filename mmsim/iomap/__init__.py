"""fs/iomap/: the iomap buffered-I/O library XFS uses for page-cache writeback."""
