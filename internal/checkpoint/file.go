package checkpoint

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/stepgate/stepgate/internal/audit"
)

// File is the append-only checkpoint file: one checkpoint per line, as
// JSON, each line written with one write on a file opened O_APPEND and
// fsynced before Write returns. Put it where the database's attacker
// cannot write: another host's mount, a WORM volume, a log shipper
// following it (chattr +a makes it append-only even for its owner).
type File struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// OpenFile opens (creating it, mode 0600) the checkpoint file at path for
// appending. It refuses a file that group or others may read or write.
func OpenFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening audit checkpoint file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening audit checkpoint file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("audit checkpoint file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		f.Close()
		return nil, fmt.Errorf("audit checkpoint file %s is accessible by group or others (mode %04o); run `chmod 600 %s`", path, perm, path)
	}
	return &File{f: f, path: path}, nil
}

// Write appends cp as one JSON line and syncs the file.
func (s *File) Write(_ context.Context, cp *audit.Checkpoint) error {
	b, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("encoding audit checkpoint %d: %w", cp.Seq, err)
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.Write(b); err != nil {
		return fmt.Errorf("writing audit checkpoint %d to %s: %w", cp.Seq, s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("syncing audit checkpoint file %s: %w", s.path, err)
	}
	return nil
}

// Close closes the file.
func (s *File) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Close()
}

// maxLine bounds a line of the checkpoint file (a checkpoint is ~250 bytes).
const maxLine = 64 << 10

// ReadFile reads a checkpoint file. Lines that do not parse are returned
// as problems naming the line, not as an error: a reader of a damaged file
// still wants the rest. The error is for a file that cannot be read.
func ReadFile(path string) (cps []*audit.Checkpoint, problems []error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("opening audit checkpoint file: %w", err)
	}
	defer f.Close()
	return read(f, path)
}

func read(r io.Reader, name string) (cps []*audit.Checkpoint, problems []error, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		var cp audit.Checkpoint
		if err := dec.Decode(&cp); err != nil {
			problems = append(problems, fmt.Errorf("%s line %d is not a checkpoint: %w", name, n, err))
			continue
		}
		if dec.More() {
			problems = append(problems, fmt.Errorf("%s line %d has more than one checkpoint", name, n))
			continue
		}
		cps = append(cps, &cp)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return cps, append(problems, fmt.Errorf("%s line %d is longer than %d bytes", name, n+1, maxLine)), nil
		}
		return nil, nil, fmt.Errorf("reading audit checkpoint file %s: %w", name, err)
	}
	return cps, problems, nil
}
