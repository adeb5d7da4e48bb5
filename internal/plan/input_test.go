package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// bigPlan returns a valid plan of about size bytes: n changes, then padding
// in a section that is skipped.
func bigPlan(n, size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"format_version":"1.2","resource_changes":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"address":"null_resource.r[%d]","mode":"managed","type":"null_resource","name":"r","index":%d,"provider_name":"registry.terraform.io/hashicorp/null","change":{"actions":["create"],"before":null,"after":{"triggers":{"k":"v%d"}},"after_unknown":{"id":true},"before_sensitive":false,"after_sensitive":{"triggers":{"k":true}}}}`, i, i, i)
	}
	b.WriteString(`],"configuration":{"pad":"`)
	if pad := size - b.Len() - 3; pad > 0 {
		b.WriteString(strings.Repeat("x", pad))
	}
	b.WriteString(`"}}`)
	return b.Bytes()
}

// countingReader counts the bytes read, the Read calls in progress, and
// the calls after finish.
type countingReader struct {
	t      *testing.T
	r      io.Reader
	mu     sync.Mutex
	n      int64
	active int
	done   bool
	late   int // Read calls after finish
	delay  time.Duration
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.done {
		c.late++
	}
	c.active++
	c.mu.Unlock()
	time.Sleep(c.delay)
	n, err := c.r.Read(p)
	c.mu.Lock()
	c.n += int64(n)
	c.active--
	c.mu.Unlock()
	return n, err
}

// lateReads returns the Read calls after finish.
func (c *countingReader) lateReads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.late
}

// finish marks the end of Decode: no Read may be in progress or follow.
func (c *countingReader) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active != 0 {
		c.t.Errorf("%d reads still in progress when Decode returned", c.active)
	}
	c.done = true
}

func TestDigestAndSize(t *testing.T) {
	for _, size := range []int{600, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 17, 9*chunkSize + 5} {
		raw := bigPlan(2, size)
		for _, enc := range []struct {
			name string
			in   []byte
		}{
			{"utf8", raw},
			{"utf8-bom", append([]byte{0xEF, 0xBB, 0xBF}, raw...)},
			{"utf16le-bom", utf16Bytes(string(raw), false, true)},
		} {
			t.Run(fmt.Sprintf("%s/%d", enc.name, len(enc.in)), func(t *testing.T) {
				r := &countingReader{t: t, r: bytes.NewReader(enc.in)}
				p, err := Read(r, Options{})
				r.finish()
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(enc.in)
				if p.SHA256 != hex.EncodeToString(sum[:]) || p.Size != int64(len(enc.in)) {
					t.Errorf("SHA256, Size = %s, %d; want %x, %d", p.SHA256, p.Size, sum, len(enc.in))
				}
				if len(p.Changes) != 2 || p.Changes[1].Index != any(nil) && fmt.Sprint(p.Changes[1].Index) != "1" {
					t.Errorf("changes = %+v", p.Changes)
				}
			})
		}
	}
}

func TestSizeCapAcrossChunks(t *testing.T) {
	raw := bigPlan(3, 5*chunkSize+123)
	for _, max := range []int64{1, 3, 4, 100, 64 << 10, chunkSize - 1, chunkSize, chunkSize + 1, 3 * chunkSize, int64(len(raw)) - 1} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			r := &countingReader{t: t, r: bytes.NewReader(raw)}
			_, err := Read(r, Options{MaxBytes: max})
			r.finish()
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprintf("more than %d bytes (the limit)", max)) {
				t.Errorf("Read over the cap: error = %v, want ErrTooLarge", err)
			}
			if r.n > max+1 {
				t.Errorf("read %d bytes of the reader, more than the cap (%d) and one", r.n, max)
			}
		})
	}
	if _, err := Read(bytes.NewReader(raw), Options{MaxBytes: int64(len(raw))}); err != nil {
		t.Errorf("Read at exactly the cap: %v", err)
	}
}

// errAfter reads n bytes of r, then fails with err.
type errAfter struct {
	r   io.Reader
	n   int
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, e.err
	}
	n, err := e.r.Read(p[:min(len(p), e.n)])
	e.n -= n
	return n, err
}

func TestReaderErrors(t *testing.T) {
	boom := errors.New("boom: the disk caught fire")
	raw := bigPlan(200, 4*chunkSize)
	for _, n := range []int{0, 2, 100, 64 << 10, chunkSize - 1, chunkSize, chunkSize + 5, 3*chunkSize + 1, len(raw) - 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			_, err := Read(&errAfter{bytes.NewReader(raw), n, boom}, Options{})
			if err == nil || !strings.Contains(err.Error(), boom.Error()) {
				t.Errorf("Read error = %v, want the reader's", err)
			}
		})
	}
}

func TestReaderReturnsNothing(t *testing.T) {
	_, err := Read(iotestEmpty{}, Options{})
	if !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("Read of a reader that returns nothing: error = %v, want io.ErrNoProgress", err)
	}
}

type iotestEmpty struct{}

func (iotestEmpty) Read([]byte) (int, error) { return 0, nil }

// TestReadAheadEnds checks that when decoding stops early, Decode returns
// only once the goroutine reading ahead has ended: no goroutine is left,
// and the reader is not read from after Decode returns.
func TestReadAheadEnds(t *testing.T) {
	stop := errors.New("stop here")
	raw := bigPlan(3000, 12*chunkSize)
	broken := bytes.Clone(raw)
	copy(broken[2*chunkSize:], `",]}`)
	if jsontext.Value(broken).IsValid() {
		t.Fatal("the broken plan is valid")
	}
	before := runtime.NumGoroutine()
	var readers []*countingReader
	for _, tt := range []struct {
		name  string
		in    []byte
		max   int64
		visit func(*Change) error
		err   error
	}{
		{"visit-error", raw, 0, func(*Change) error { return stop }, stop},
		{"visit-error-later", raw, 0, func(c *Change) error {
			if c.Address == "null_resource.r[2000]" {
				return stop
			}
			return nil
		}, stop},
		{"syntax-error", broken, 0, nil, ErrSyntax},
		{"too-large", raw, 5 * chunkSize, nil, ErrTooLarge},
		{"done", raw, 0, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, delay := range []time.Duration{0, time.Millisecond} {
				r := &countingReader{t: t, r: bytes.NewReader(tt.in), delay: delay}
				readers = append(readers, r)
				_, err := Decode(r, Options{MaxBytes: tt.max}, tt.visit)
				r.finish()
				if !errors.Is(err, tt.err) {
					t.Errorf("Decode error = %v, want %v", err, tt.err)
				}
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines left running, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
	for _, r := range readers {
		if n := r.lateReads(); n > 0 {
			t.Errorf("a reader was read %d times after Decode returned", n)
		}
	}
}

// TestVisitPanics checks that the goroutine reading ahead ends when visit
// panics.
func TestVisitPanics(t *testing.T) {
	raw := bigPlan(3000, 8*chunkSize)
	before := runtime.NumGoroutine()
	r := &countingReader{t: t, r: bytes.NewReader(raw)}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the visit function's panic was not passed on")
			}
		}()
		_, _ = Decode(r, Options{}, func(*Change) error { panic("visit") })
	}()
	r.finish()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines left running, %d before", n, before)
	}
	if n := r.lateReads(); n > 0 {
		t.Errorf("the reader was read %d times after Decode returned", n)
	}
}
