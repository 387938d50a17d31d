package output

import (
	"io"
	"os"
	"sync"
	"unsafe"
)

// chunkSize is how much a received copy gathers before it writes to its file and hash:
// a socket gives a few kilobytes per read, and each write to the file and the hash
// costs per call. A multiple of every direct I/O alignment in use (4 KiB at most).
const chunkSize = 1 << 20

// pageSize is the memory alignment a chunk gets, enough for direct I/O on any device.
const pageSize = 4 << 10

// chunks holds the buffers of copies being received, so a busy copier does not make
// (and fault in) a fresh chunk of memory per copy.
var chunks = sync.Pool{New: func() any {
	b := make([]byte, chunkSize+pageSize)
	off := 0
	if r := addrMod(b, pageSize); r != 0 {
		off = pageSize - r
	}
	b = b[off : off+chunkSize : off+chunkSize]
	return &b
}}

// receive writes what src sends to f, a new empty file, and to also, in chunks of
// chunkSize, and returns how many bytes it wrote. Where f's file system supports direct
// I/O, the whole blocks go to the disk without the page cache (O_DIRECT): a copy is a
// spare that is seldom read, and a node that receives a copy of every run's outputs
// would otherwise fill its page cache with them, pushing out what its own runs read,
// and pay for every page of it. The last, partial block goes through the cache. Where
// direct I/O is not supported (tmpfs, some network file systems) everything does.
func receive(f *os.File, src io.Reader, also io.Writer) (int64, error) {
	bp := chunks.Get().(*[]byte)
	defer chunks.Put(bp)
	buf := *bp
	w := startDirect(f)
	var n int64
	for {
		k, rerr := io.ReadFull(src, buf)
		if k > 0 {
			if _, err := also.Write(buf[:k]); err != nil {
				return n, err
			}
			if err := w.write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
		}
		switch rerr {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return n, nil
		default:
			return n, rerr
		}
	}
}

// fileWriter writes a received copy to its file, directly while it can.
type fileWriter struct {
	f     *os.File
	align int // direct I/O's offset and length alignment; 0: through the page cache
}

// write writes p, of chunkSize bytes unless it is the last: its whole blocks directly
// if f is in direct mode, then what is left through the cache (after which f stays
// there). A direct write the file system refuses is made through the cache instead.
func (w *fileWriter) write(p []byte) error {
	if w.align > 0 {
		whole := len(p) / w.align * w.align
		if whole > 0 {
			k, err := w.f.Write(p[:whole])
			p = p[k:]
			if err != nil && !refusedDirect(err) {
				return err
			}
		}
		if len(p) > 0 {
			if err := stopDirect(w.f); err != nil {
				return err
			}
			w.align = 0
		}
	}
	if len(p) == 0 {
		return nil
	}
	_, err := w.f.Write(p)
	return err
}

// addrMod is the address of b's first byte modulo m.
func addrMod(b []byte, m int) int {
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) % uintptr(m))
}
