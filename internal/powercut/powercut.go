//go:build linux

package powercut

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// FS is a mounted power-cut file system.
type FS struct {
	backing    string
	mountpoint string

	mu     sync.Mutex // serializes every change, fsync and cut
	server *fuse.Server
	sess   *session // the current mount; nil once closed
}

// CutStats is what a Cut threw away.
type CutStats struct {
	Files     int   // files that lost changes
	Writes    int   // writes (and allocations) undone
	Truncates int   // size changes undone
	Bytes     int64 // bytes those writes wrote, plus bytes the truncates cut or added
}

// session is one mount. A request the kernel sent before an unmount may
// still be running after it: once the session is dead it changes nothing.
type session struct {
	dead bool                // guarded by FS.mu
	logs map[uint64]*undoLog // by inode number; guarded by FS.mu
}

// undoLog is what to undo in one file, oldest change first.
type undoLog struct {
	f       *os.File // a descriptor of its own: the file may be closed, renamed or unlinked before the cut
	changes []change
}

// change is one write, allocation or truncate: the bytes it overwrote and
// the file's size before it.
type change struct {
	off      int64
	old      []byte
	size     int64
	bytes    int64 // for CutStats
	truncate bool
}

// Mount mounts a power-cut view of the folder backing on mountpoint (an
// existing empty folder). Close unmounts it.
func Mount(backing, mountpoint string) (*FS, error) {
	var err error
	fsys := &FS{}
	if fsys.backing, err = filepath.Abs(backing); err != nil {
		return nil, err
	}
	if fsys.mountpoint, err = filepath.Abs(mountpoint); err != nil {
		return nil, err
	}
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if err := fsys.mount(); err != nil {
		return nil, err
	}
	return fsys, nil
}

// mount starts a new session on a fresh loopback root. Must hold mu.
func (fsys *FS) mount() error {
	var st syscall.Stat_t
	if err := syscall.Stat(fsys.backing, &st); err != nil {
		return fmt.Errorf("powercut: backing folder: %w", err)
	}
	sess := &session{logs: map[uint64]*undoLog{}}
	lr := &fs.LoopbackRoot{Path: fsys.backing, Dev: uint64(st.Dev)}
	root := &node{LoopbackNode: &fs.LoopbackNode{RootData: lr}, fsys: fsys, sess: sess}
	lr.RootNode = root
	sec := time.Second
	server, err := fs.Mount(fsys.mountpoint, root, &fs.Options{
		EntryTimeout: &sec,
		AttrTimeout:  &sec,
		MountOptions: fuse.MountOptions{
			FsName: "powercut",
			Name:   "powercut",
			// As root, mount(2) directly; otherwise through fusermount.
			DirectMount: true,
			// Passthrough would let the kernel write to the backing file
			// without asking this process, past the undo log.
			DisabledCapabilities: fuse.CAP_PASSTHROUGH,
		},
	})
	if err != nil {
		return fmt.Errorf("powercut: mount %s: %w", fsys.mountpoint, err)
	}
	fsys.server, fsys.sess = server, sess
	return nil
}

// unmount unmounts and ends the session. Unmounting makes the kernel send
// everything it still holds (dirty pages of a shared mmap) first.
func (fsys *FS) unmount() error {
	if err := fsys.server.Unmount(); err != nil {
		return fmt.Errorf("powercut: unmount %s: %w", fsys.mountpoint, err)
	}
	fsys.mu.Lock()
	fsys.sess.dead = true
	fsys.mu.Unlock()
	return nil
}

// Cut is a power cut: it unmounts, undoes on the backing files every
// change no fsync covered, newest first, and mounts again (with a fresh
// kernel cache). No file may be open on the mount.
func (fsys *FS) Cut() (CutStats, error) {
	if fsys.sess == nil {
		return CutStats{}, errors.New("powercut: cut after close")
	}
	if err := fsys.unmount(); err != nil {
		return CutStats{}, err
	}
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	var stats CutStats
	var errs []error
	for _, lg := range fsys.sess.logs {
		stats.Files++
		for i := len(lg.changes) - 1; i >= 0; i-- {
			c := lg.changes[i]
			if c.truncate {
				stats.Truncates++
			} else {
				stats.Writes++
			}
			stats.Bytes += c.bytes
			if _, err := lg.f.WriteAt(c.old, c.off); err != nil {
				errs = append(errs, err)
			}
			if err := lg.f.Truncate(c.size); err != nil {
				errs = append(errs, err)
			}
		}
		lg.f.Close()
	}
	fsys.sess = nil
	if err := errors.Join(errs...); err != nil {
		return stats, fmt.Errorf("powercut: undo: %w", err)
	}
	return stats, fsys.mount()
}

// Close unmounts, keeping every change as it is (a clean shutdown).
func (fsys *FS) Close() error {
	if fsys.sess == nil {
		return nil
	}
	err := fsys.server.Unmount()
	if err != nil {
		// Do not leave a mount behind (its folder could not even be
		// removed): detach it, and it goes once its last file closes.
		if syscall.Unmount(fsys.mountpoint, syscall.MNT_DETACH) == nil {
			err = nil
		}
	}
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	fsys.sess.dead = true
	for _, lg := range fsys.sess.logs {
		lg.f.Close()
	}
	fsys.sess = nil
	if err != nil {
		return fmt.Errorf("powercut: unmount %s: %w", fsys.mountpoint, err)
	}
	return nil
}

// change records what a change of [off, end) of n's file will overwrite
// (end < 0: to the end of the file) and the file's size, then makes the
// change with do. h is the open backing file, or nil for a change by path.
// bytes says, from the size before, how many bytes the change moves.
func (fsys *FS) change(s *session, n *node, h *os.File, off, end int64, truncate bool, bytes func(size int64) int64, do func() syscall.Errno) syscall.Errno {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if s.dead {
		return syscall.EIO
	}
	lg, err := s.logFor(n, h)
	if err != nil {
		return fs.ToErrno(err)
	}
	st, err := lg.f.Stat()
	if err != nil {
		return fs.ToErrno(err)
	}
	size := st.Size()
	if end < 0 || end > size {
		end = size
	}
	var old []byte
	if end > off {
		old = make([]byte, end-off)
		if _, err := lg.f.ReadAt(old, off); err != nil {
			return fs.ToErrno(err)
		}
	}
	// Recorded before the change is made: a change that fails half way is
	// undone too, which is harmless.
	lg.changes = append(lg.changes, change{off: off, old: old, size: size, bytes: bytes(size), truncate: truncate})
	return do()
}

// logFor returns the undo log of n's file, opening it on first use.
func (s *session) logFor(n *node, h *os.File) (*undoLog, error) {
	ino := n.StableAttr().Ino
	if lg := s.logs[ino]; lg != nil {
		return lg, nil
	}
	var f *os.File
	if h != nil {
		fd, err := unix.Dup(int(h.Fd()))
		if err != nil {
			return nil, err
		}
		f = os.NewFile(uintptr(fd), h.Name())
	} else {
		var err error
		if f, err = os.OpenFile(n.backingPath(), os.O_RDWR, 0); err != nil {
			return nil, err
		}
	}
	lg := &undoLog{f: f}
	s.logs[ino] = lg
	return lg, nil
}

// synced forgets what to undo in n's file: an fsync made it durable.
func (fsys *FS) synced(s *session, n *node) syscall.Errno {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if s.dead {
		return syscall.EIO
	}
	ino := n.StableAttr().Ino
	if lg := s.logs[ino]; lg != nil {
		lg.f.Close()
		delete(s.logs, ino)
	}
	return fs.OK
}

// node is a loopback node whose data changes go through the undo log.
type node struct {
	*fs.LoopbackNode
	fsys *FS
	sess *session
}

var (
	_ fs.NodeWrapChilder    = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeWriter         = (*node)(nil)
	_ fs.NodeWritever       = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeAllocater      = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
)

// WrapChild makes every node the loopback creates one of ours.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), fsys: n.fsys, sess: n.sess}
}

func (n *node) backingPath() string {
	return filepath.Join(n.RootData.Path, n.Path(nil))
}

// openFlags adapts the flags of an open: a write-only file is opened for
// reading too, so that the undo log can read what a write overwrites; a
// truncating open truncates through the log instead.
func openFlags(flags uint32) (_ int, truncate bool) {
	f := int(flags) &^ (syscall.O_APPEND | fuse.FMODE_EXEC | syscall.O_CREAT | syscall.O_EXCL)
	if f&syscall.O_ACCMODE == syscall.O_WRONLY {
		f = f&^syscall.O_ACCMODE | syscall.O_RDWR
	}
	return f &^ syscall.O_TRUNC, f&syscall.O_TRUNC != 0
}

// Open opens the backing file as our own handle.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return n.open(n.backingPath(), flags)
}

// open opens path, the backing file of n.
func (n *node) open(path string, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	f, truncate := openFlags(flags)
	h, err := os.OpenFile(path, f, 0)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	fh := &file{f: h, lf: fs.NewLoopbackFileFromOS(h)}
	if truncate {
		if errno := n.truncate(h, 0, func() syscall.Errno { return fs.ToErrno(h.Truncate(0)) }); errno != 0 {
			h.Close()
			return nil, 0, errno
		}
	}
	return fh, 0, fs.OK
}

// Create lets the loopback create the file (and its node), then opens it
// again as our own handle.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	// Without O_TRUNC: should the file exist after all, open truncates it
	// through the undo log.
	ch, lf, _, errno := n.LoopbackNode.Create(ctx, name, flags&^syscall.O_TRUNC, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	lf.(fs.FileReleaser).Release(ctx)
	// The new node is not in the tree yet, so it has no path of its own.
	fh, fuseFlags, errno := ch.Operations().(*node).open(filepath.Join(n.backingPath(), name), flags)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return ch, fh, fuseFlags, fs.OK
}

func (n *node) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	h, ok := fh.(*file)
	if !ok {
		return 0, syscall.EBADF
	}
	var written int
	errno := n.fsys.change(n.sess, n, h.f, off, off+int64(len(data)), false,
		func(int64) int64 { return int64(len(data)) },
		func() syscall.Errno {
			var err error
			written, err = h.f.WriteAt(data, off)
			return fs.ToErrno(err)
		})
	return uint32(written), errno
}

func (n *node) Writev(ctx context.Context, fh fs.FileHandle, data [][]byte, off int64) (uint32, syscall.Errno) {
	var all []byte
	for _, d := range data {
		all = append(all, d...)
	}
	return n.Write(ctx, fh, all, off)
}

// Setattr records a size change before the loopback makes it.
func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	size, ok := in.GetSize()
	if !ok {
		return n.LoopbackNode.Setattr(ctx, fh, in, out)
	}
	var h *os.File
	if f, ok := fh.(*file); ok {
		h = f.f
	}
	return n.truncate(h, int64(size), func() syscall.Errno { return n.LoopbackNode.Setattr(ctx, fh, in, out) })
}

// truncate records a size change to size, made by do.
func (n *node) truncate(h *os.File, size int64, do func() syscall.Errno) syscall.Errno {
	return n.fsys.change(n.sess, n, h, size, -1, true,
		func(before int64) int64 { return max(before-size, size-before) },
		do)
}

// Allocate records what an fallocate may zero or extend. Shifting data
// (collapse or insert a range) is refused: the undo log cannot express it.
func (n *node) Allocate(ctx context.Context, fh fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	h, ok := fh.(*file)
	if !ok {
		return syscall.EBADF
	}
	if mode&(unix.FALLOC_FL_COLLAPSE_RANGE|unix.FALLOC_FL_INSERT_RANGE) != 0 {
		return syscall.EOPNOTSUPP
	}
	return n.fsys.change(n.sess, n, h.f, int64(off), int64(off+size), false,
		func(int64) int64 { return int64(size) },
		func() syscall.Errno {
			return fs.ToErrno(unix.Fallocate(int(h.f.Fd()), mode, int64(off), int64(size)))
		})
}

// Fsync (and fdatasync) makes the file's changes so far durable. It is
// not passed on to the backing disk: the only power cut this file system
// models is its own.
func (n *node) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	return n.fsys.synced(n.sess, n)
}

// CopyFileRange is refused, so that the kernel falls back to reads and
// writes, which go through the undo log.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, len uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.EOPNOTSUPP
}

// file is an open backing file. Reads and the rest go to a LoopbackFile;
// it has no Write, Allocate or passthrough of its own: changes are made by
// the node, through the undo log.
type file struct {
	f  *os.File         // shared with lf, which closes it on Release
	lf *fs.LoopbackFile // reads, attributes, flush, release
}

var (
	_ fs.FileReader    = (*file)(nil)
	_ fs.FileGetattrer = (*file)(nil)
	_ fs.FileSetattrer = (*file)(nil)
	_ fs.FileFlusher   = (*file)(nil)
	_ fs.FileReleaser  = (*file)(nil)
	_ fs.FileLseeker   = (*file)(nil)
)

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return f.lf.Read(ctx, dest, off)
}

func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return f.lf.Getattr(ctx, out)
}

// Setattr is only called by node.Setattr, after the undo log has what it
// needs.
func (f *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return f.lf.Setattr(ctx, in, out)
}

func (f *file) Flush(ctx context.Context) syscall.Errno { return f.lf.Flush(ctx) }

func (f *file) Release(ctx context.Context) syscall.Errno { return f.lf.Release(ctx) }

func (f *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return f.lf.Lseek(ctx, off, whence)
}
