package sqlstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// How records map to columns, the same on both backends:
//   - times are stored in UTC, truncated to the microsecond (PostgreSQL's
//     timestamptz precision), and a zero time is stored as NULL and comes
//     back zero;
//   - maps and slices are stored as JSON, and an empty one as NULL, so that
//     nil and empty both come back nil;
//   - json.RawMessage values are stored verbatim (byte for byte), and an
//     empty or all-space one as NULL, so it comes back nil;
//   - byte slices are stored as blobs, and an empty one as NULL (back nil);
//   - a uint32 is stored as a 64-bit integer, which holds all of it;
//   - strings are stored as they are, never NULL, but for optional
//     references (optArg, optDest: "" is NULL, and NULL comes back "").

// NormalTime is t as it is stored and read back: in UTC, truncated to the
// microsecond. It is the zero time for t's that truncate to it.
func NormalTime(t time.Time) time.Time {
	t = t.Truncate(time.Microsecond)
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func (d *Dialect) timeArg(t time.Time) any {
	t = NormalTime(t)
	if t.IsZero() {
		return nil
	}
	return d.Time(t)
}

func jsonArg[T ~map[string]string | ~[]string](v T) (any, error) {
	if len(v) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// rawArg binds JSON as text, which SQLite's json_valid and PostgreSQL's json
// both take.
func rawArg(m json.RawMessage) any {
	if len(bytes.TrimSpace(m)) == 0 {
		return nil
	}
	return string(m)
}

func bytesArg(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func intPtrArg(p *int) any {
	if p == nil {
		return nil
	}
	return int64(*p)
}

// timeDest scans a time column: NULL, a time (PostgreSQL) or microseconds
// since the Unix epoch (SQLite).
type timeDest struct{ p *time.Time }

func (d timeDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = time.Time{}
	case time.Time:
		*d.p = v.UTC()
	case int64:
		*d.p = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("scanning time from %T: unsupported type", src)
	}
	return nil
}

// jsonDest scans a JSON column into the map or slice p points to; NULL
// leaves it nil.
type jsonDest struct{ p any }

func (d jsonDest) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		return nil
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return fmt.Errorf("scanning JSON from %T: unsupported type", src)
	}
	if err := json.Unmarshal(b, d.p); err != nil {
		return fmt.Errorf("decoding JSON column: %w", err)
	}
	return nil
}

// rawDest scans a JSON column verbatim; NULL gives nil.
type rawDest struct{ p *json.RawMessage }

func (d rawDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = nil
	case []byte:
		*d.p = bytes.Clone(v) // the driver may reuse its buffer
	case string:
		*d.p = json.RawMessage(v)
	default:
		return fmt.Errorf("scanning JSON from %T: unsupported type", src)
	}
	return nil
}

// intPtrDest scans a nullable integer, keeping NULL (nil) apart from 0.
type intPtrDest struct{ p **int }

func (d intPtrDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = nil
	case int64:
		n := int(v)
		*d.p = &n
	default:
		return fmt.Errorf("scanning integer from %T: unsupported type", src)
	}
	return nil
}

// uint32Dest scans an integer column that holds a uint32, refusing a value
// out of its range rather than wrapping it.
type uint32Dest struct{ p *uint32 }

func (d uint32Dest) Scan(src any) error {
	v, ok := src.(int64)
	if !ok {
		return fmt.Errorf("scanning uint32 from %T: unsupported type", src)
	}
	if v < 0 || v > math.MaxUint32 {
		return fmt.Errorf("scanning uint32: %d is out of range", v)
	}
	*d.p = uint32(v)
	return nil
}

// bytesDest scans a blob; NULL gives nil.
type bytesDest struct{ p *[]byte }

func (d bytesDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = nil
	case []byte:
		*d.p = bytes.Clone(v)
	default:
		return fmt.Errorf("scanning bytes from %T: unsupported type", src)
	}
	return nil
}

// optArg binds an optional string, such as a reference to another row:
// "" is NULL.
func optArg(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// optDest scans an optional string column; NULL gives "".
type optDest struct{ p *string }

func (d optDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = ""
	case string:
		*d.p = v
	case []byte:
		*d.p = string(v)
	default:
		return fmt.Errorf("scanning string from %T: unsupported type", src)
	}
	return nil
}
