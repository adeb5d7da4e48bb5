package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// GenesisHash is the PrevHash of the first event.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// canonical is the encoding that is hashed: fixed field order, time in UTC
// with nanoseconds, data re-encoded with sorted keys and no spaces.
type canonical struct {
	Seq      int64           `json:"seq"`
	Time     string          `json:"time"`
	Type     string          `json:"type"`
	Actor    string          `json:"actor"`
	Subject  string          `json:"subject"`
	Data     json.RawMessage `json:"data"`
	PrevHash string          `json:"prev_hash"`
}

// encode returns the bytes of e that its hash covers (everything but the
// hash itself).
func encode(e *Event) ([]byte, error) {
	data := json.RawMessage("null")
	if len(bytes.TrimSpace(e.Data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(e.Data))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("audit event %d data: %w", e.Seq, err)
		}
		b, err := json.Marshal(v) // maps are written with sorted keys
		if err != nil {
			return nil, err
		}
		data = b
	}
	return json.Marshal(canonical{
		Seq:      e.Seq,
		Time:     e.Time.UTC().Format(time.RFC3339Nano),
		Type:     e.Type,
		Actor:    e.Actor,
		Subject:  e.Subject,
		Data:     data,
		PrevHash: e.PrevHash,
	})
}

// HashOf returns the hex SHA-256 of e's canonical encoding.
func HashOf(e *Event) (string, error) {
	b, err := encode(e)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// after is the Seq and PrevHash of the event that follows prev (nil: none).
func after(prev *Event) (seq int64, prevHash string) {
	if prev == nil {
		return 1, GenesisHash
	}
	return prev.Seq + 1, prev.Hash
}

// Seal links e to prev (nil for the first event): it sets Seq, PrevHash and
// Hash. The store calls it while it holds the chain's lock.
func Seal(prev, e *Event) error {
	e.Seq, e.PrevHash = after(prev)
	h, err := HashOf(e)
	if err != nil {
		return err
	}
	e.Hash = h
	return nil
}

// ErrBroken says the chain was tampered with.
var ErrBroken = errors.New("audit chain broken")

// BreakError names the first event where the chain does not hold.
type BreakError struct {
	Seq    int64
	Reason string
}

func (e *BreakError) Error() string {
	return fmt.Sprintf("%v at sequence %d: %s", ErrBroken, e.Seq, e.Reason)
}

func (e *BreakError) Unwrap() error { return ErrBroken }

// Verifier checks a chain one event at a time, oldest first, so that a long
// log is never held in memory whole.
type Verifier struct {
	prev *Event // the last event verified
}

// Next checks the next event. It returns a *BreakError naming the first
// sequence number that was edited, removed or reordered.
func (v *Verifier) Next(e *Event) error {
	wantSeq, wantPrev := after(v.prev)
	switch {
	case e.Seq < wantSeq:
		return &BreakError{Seq: e.Seq, Reason: fmt.Sprintf("out of order: sequence %d follows %d", e.Seq, wantSeq-1)}
	case e.Seq > wantSeq:
		return &BreakError{Seq: wantSeq, Reason: fmt.Sprintf("missing: the next event is %d", e.Seq)}
	case e.PrevHash != wantPrev:
		return &BreakError{Seq: e.Seq, Reason: "its previous hash does not match the event before it (an event before it was removed or replaced)"}
	}
	h, err := HashOf(e)
	if err != nil {
		return &BreakError{Seq: e.Seq, Reason: err.Error()}
	}
	if h != e.Hash {
		return &BreakError{Seq: e.Seq, Reason: "its content does not match its hash (edited)"}
	}
	v.prev = e
	return nil
}

// Resume starts v at e, an event vouched for by other means (a signed
// checkpoint of its hash), so that Next checks the events after it. It
// checks e's content still matches its hash.
func (v *Verifier) Resume(e *Event) error {
	h, err := HashOf(e)
	if err != nil {
		return &BreakError{Seq: e.Seq, Reason: err.Error()}
	}
	if h != e.Hash {
		return &BreakError{Seq: e.Seq, Reason: "its content does not match its hash (edited)"}
	}
	c := *e
	v.prev = &c
	return nil
}

// Count is the number of events verified so far: the chain starts at 1 and
// has no gaps, so the last one's Seq.
func (v *Verifier) Count() int64 {
	if v.prev == nil {
		return 0
	}
	return v.prev.Seq
}

// Verify checks a whole chain held in memory.
func Verify(events []*Event) error {
	var v Verifier
	for _, e := range events {
		if err := v.Next(e); err != nil {
			return err
		}
	}
	return nil
}
