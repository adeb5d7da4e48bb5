package api

import (
	"fmt"
	"io"
	"log/slog"
	"time"
)

// CheckSecret is one secret a check would release: its name and the
// environment variable the pipeline asked to receive it in, if any.
type CheckSecret struct {
	Name string `json:"name"`
	Env  string `json:"env,omitempty"`
}

// ReleaseRequest is the body of POST /v1/secrets/release: the grant of a
// check that names secrets, exchanged once for their values (the grant is
// used up as by POST /v1/grants/consume). Only the token that asked for the
// check may exchange it; a second exchange is refused with 409.
type ReleaseRequest struct {
	Grant string `json:"grant"`
}

// ReleaseResponse carries the values. Nothing else in the API ever does.
type ReleaseResponse struct {
	CheckID    string           `json:"check_id"`
	GrantID    string           `json:"grant_id"`
	ConsumedAt time.Time        `json:"consumed_at"`
	Secrets    []ReleasedSecret `json:"secrets"`
}

// ReleasedSecret is one released value (base64 in JSON, so any bytes
// travel). It keeps its value out of fmt and slog.
type ReleasedSecret struct {
	Name    string `json:"name"`
	Env     string `json:"env,omitempty"`
	Version int    `json:"version"`
	Value   []byte `json:"value"`
}

// String names the secret, never its value.
func (s ReleasedSecret) String() string {
	return fmt.Sprintf("%s@%d [redacted]", s.Name, s.Version)
}

// GoString is String, for %#v.
func (s ReleasedSecret) GoString() string { return s.String() }

// Format keeps the value out of every fmt verb.
func (s ReleasedSecret) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// LogValue keeps the value out of structured logs.
func (s ReleasedSecret) LogValue() slog.Value { return slog.StringValue(s.String()) }
