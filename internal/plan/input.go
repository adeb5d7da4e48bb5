package plan

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// DefaultMaxBytes is the size cap applied when Options.MaxBytes is zero.
const DefaultMaxBytes = 512 << 20

// newTextReader returns a reader of UTF-8 text from raw plan bytes: a UTF-8
// byte-order mark is dropped, and UTF-16 (with a mark, as a PowerShell
// redirect writes it, or without one) is converted.
func newTextReader(raw io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(raw, 64<<10)
	head, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		_, _ = br.Discard(3)
		return br, nil
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}):
		return transform.NewReader(br, unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder()), nil
	case bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return transform.NewReader(br, unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder()), nil
	case len(head) >= 2 && head[0] != 0 && head[1] == 0:
		return transform.NewReader(br, unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewDecoder()), nil
	case len(head) >= 2 && head[0] == 0 && head[1] != 0:
		return transform.NewReader(br, unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM).NewDecoder()), nil
	}
	return br, nil
}

// Reading ahead: the raw bytes are read, counted and hashed on a goroutine
// of their own, in chunks of chunkSize, while the decoder parses the chunks
// before. At most chunks buffers are in use: the reader waits for the
// decoder to give one back.
const (
	chunkSize = 256 << 10
	chunks    = 4
)

var chunkPool = sync.Pool{New: func() any { return new([chunkSize]byte) }}

// rawReader passes on the raw bytes of a plan, counts and hashes them, and
// fails once more than max have been passed on. The bytes are read,
// counted and hashed ahead of the decoder, past the first chunk by a
// goroutine of its own (see start); stop must be called before the count
// and digest are read.
//
// Read gives what a Read of the raw reader gave when it was read directly:
// as many bytes as asked for while there are more, and when a Read would
// take more than max bytes in all, no bytes but ErrTooLarge. A reader of a
// file or of bytes in memory gives every Read in full, so the decoder sees
// the same bytes, and the size cap error at the same place, as it did.
type rawReader struct {
	r   io.Reader
	max int64
	h   hash.Hash // of the bytes read from r
	n   int64     // the bytes read from r, at most max+1

	// what the decoder is handed: cur, the rest of the chunk in buf, then
	// err once the chunks are done with
	cur    []byte
	buf    *[chunkSize]byte
	err    error
	passed int64 // the bytes passed on (and asked for past the cap)

	full chan chunk            // read chunks, in order, to the decoder
	free chan *[chunkSize]byte // buffers back to the reader
	done chan struct{}         // closed by stop: the reader must end
	exit chan struct{}         // closed by the reader when it ends
	bufs []*[chunkSize]byte    // every buffer taken from chunkPool
}

// chunk is what the raw reader gave: bytes, then maybe an error.
type chunk struct {
	buf *[chunkSize]byte
	n   int
	err error
}

// errOverCap ends the bytes read ahead once there are more than max: Read
// fails with ErrTooLarge before it gets to it.
var errOverCap = errors.New("over the size cap")

func newRawReader(r io.Reader, max int64) *rawReader {
	if max <= 0 {
		max = DefaultMaxBytes
	}
	return &rawReader{r: r, h: sha256.New(), max: max}
}

// fill reads from r into b until b is full or r fails, and counts and
// hashes what it gets. It reads no more than max+1 bytes in all: past
// that, it fails with errOverCap. Like bufio, it gives up on a reader that
// returns nothing 100 times in a row.
func (c *rawReader) fill(b []byte) (int, error) {
	n, empty := 0, 0
	for n < len(b) {
		if c.n > c.max {
			return n, errOverCap
		}
		end := len(b)
		if left := c.max - c.n; left < int64(end-n) {
			end = n + int(left) + 1
		}
		m, err := c.r.Read(b[n:end])
		c.h.Write(b[n : n+m])
		c.n += int64(m)
		n += m
		if err != nil {
			return n, err
		}
		if m > 0 {
			empty = 0
		} else if empty++; empty == 100 {
			return n, io.ErrNoProgress
		}
	}
	return n, nil
}

// prime reads the first chunk on the calling goroutine: a small plan is
// read whole without a goroutine. A larger one is read on by one (start).
func (c *rawReader) prime() {
	c.buf = c.take()
	var n int
	n, c.err = c.fill(c.buf[:])
	c.cur = c.buf[:n]
	if c.err == nil {
		c.start()
	}
}

func (c *rawReader) take() *[chunkSize]byte {
	b := chunkPool.Get().(*[chunkSize]byte)
	c.bufs = append(c.bufs, b)
	return b
}

// start starts the goroutine that reads the chunks after the first.
func (c *rawReader) start() {
	c.full = make(chan chunk, chunks)
	c.free = make(chan *[chunkSize]byte, chunks)
	c.done = make(chan struct{})
	c.exit = make(chan struct{})
	for range chunks - 1 {
		c.free <- c.take()
	}
	go c.readAhead()
}

func (c *rawReader) readAhead() {
	defer close(c.exit)
	for {
		var b *[chunkSize]byte
		select {
		case b = <-c.free:
		case <-c.done:
			return
		}
		n, err := c.fill(b[:])
		select {
		case c.full <- chunk{b, n, err}:
		case <-c.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read fills p with the bytes read ahead, waiting for them as needed, and
// fails with ErrTooLarge when that takes the bytes passed on over max.
// Once the bytes are all passed on, it returns the error that ended them.
func (c *rawReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := 0
	for n < len(p) {
		if len(c.cur) == 0 {
			if c.err != nil {
				break
			}
			// The chunk is done with: give its buffer back, take the next.
			c.free <- c.buf
			ch := <-c.full
			c.buf, c.cur, c.err = ch.buf, ch.buf[:ch.n], ch.err
			continue
		}
		m := copy(p[n:], c.cur)
		c.cur = c.cur[m:]
		n += m
	}
	c.passed += int64(n)
	if c.passed > c.max {
		return 0, fmt.Errorf("%w: more than %d bytes (the limit)", ErrTooLarge, c.max)
	}
	if n > 0 {
		return n, nil
	}
	return 0, c.err
}

// stop ends the reading ahead, waits for the goroutine to end (it may be in
// a Read of the raw reader, which the caller may use again once Decode
// returns), and puts the buffers back in the pool. The count and digest can
// be read after it.
func (c *rawReader) stop() {
	if c.done != nil {
		close(c.done)
		<-c.exit
		c.done = nil
	}
	c.cur = nil
	for _, b := range c.bufs {
		chunkPool.Put(b)
	}
	c.bufs = nil
}
