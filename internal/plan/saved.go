package plan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// ErrNoTool says a saved plan was given but neither terraform nor tofu can
// be found to read it.
var ErrNoTool = errors.New("no terraform or tofu on PATH")

// zipMagic starts every saved (binary) plan: it is a zip archive.
var zipMagic = []byte("PK\x03\x04")

// IsSaved reports whether the first bytes of a file are those of a saved
// plan from `terraform plan -out` rather than JSON.
func IsSaved(head []byte) bool { return bytes.HasPrefix(head, zipMagic) }

// Tools lists the programs that can read a saved plan, in the order they are
// tried when none is named.
var Tools = []string{"terraform", "tofu"}

// FindTool returns the program to read saved plans with: the named one, or
// the first of Tools on PATH.
func FindTool(name string) (string, error) {
	if name != "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrNoTool, name, err)
		}
		return p, nil
	}
	for _, t := range Tools {
		if p, err := exec.LookPath(t); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: a saved plan needs one of them to turn it into JSON (or pass the output of `terraform show -json tfplan`)", ErrNoTool)
}

// Show runs `TOOL show -json PATH` in dir and returns its standard output as
// a stream. Close waits for the program and reports its failure with what it
// wrote on standard error.
func Show(ctx context.Context, tool, dir, path string) (io.ReadCloser, error) {
	cmd := exec.CommandContext(ctx, tool, "show", "-json", "-no-color", path)
	cmd.Dir = dir
	stderr := &limitedBuffer{max: 8 << 10}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s show: %w", tool, err)
	}
	return &showReader{ReadCloser: out, cmd: cmd, stderr: stderr}, nil
}

type showReader struct {
	io.ReadCloser
	cmd    *exec.Cmd
	stderr *limitedBuffer
}

func (s *showReader) Close() error {
	_, _ = io.Copy(io.Discard, s.ReadCloser)
	if err := s.cmd.Wait(); err != nil {
		msg := strings.TrimSpace(s.stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s show -json failed (run stepgate where `init` was run for this plan): %s", s.cmd.Path, msg)
	}
	return nil
}

type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
