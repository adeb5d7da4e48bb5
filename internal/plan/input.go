package plan

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"

	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// DefaultMaxBytes is the size cap applied when Options.MaxBytes is zero.
const DefaultMaxBytes = 512 << 20

// capReader counts the bytes it passes on, hashes them, and fails once more
// than max have been read.
type capReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	max int64
}

func (c *capReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		return 0, fmt.Errorf("%w: more than %d bytes (the limit)", ErrTooLarge, c.max)
	}
	c.h.Write(p[:n])
	return n, err
}

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

func newCapReader(r io.Reader, max int64) *capReader {
	if max <= 0 {
		max = DefaultMaxBytes
	}
	return &capReader{r: r, h: sha256.New(), max: max}
}
