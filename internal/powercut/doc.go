// Package powercut is a FUSE file system for power-cut tests, after LazyFS
// and SQLite's own crash tests. It mirrors a backing folder (a loopback)
// and remembers, for every write and truncate that no later fsync or
// fdatasync of its file covers, what the change overwrote. Cut throws those
// changes away, as a power cut throws away what was still in the disk's
// cache, and mounts again what survived.
//
// Only file data is at risk. Metadata (create, mkdir, unlink, rename, link,
// chmod, times) is durable at once: a cut never loses a new file or brings
// back a deleted one, whether or not its directory was fsynced.
//
// Changes reach the backing files at once: there is no writeback cache, so
// the kernel sends every write(2) to this process before it returns, and
// the undo log is what makes them volatile. Locks stay in the kernel (they
// are not forwarded), which is right for one mount used by one machine.
//
// It needs Linux (FUSE, fallocate's collapse and insert of ranges); elsewhere
// the package is empty and the power-cut tests do not build.
package powercut
