package cli

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/stepgate/stepgate/internal/plan"
)

// openPlanBody opens the plan JSON to stream as the request body. A saved
// binary plan is refused here with a hint rather than by the server: the
// server assesses JSON, and apply checks the digest of what was sent.
func openPlanBody(env Env, name string) (io.Reader, func(), error) {
	var r io.Reader = env.Stdin
	closeFn := func() {}
	if name != "-" {
		f, err := os.Open(resolve(env, name))
		if err != nil {
			return nil, nil, exit(ExitUsage, fmt.Errorf("reading plan: %w", err))
		}
		if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
			f.Close()
			return nil, nil, exit(ExitUsage, fmt.Errorf("reading plan: %s is not a regular file", name))
		}
		r, closeFn = f, func() { f.Close() }
	}
	br := bufio.NewReaderSize(r, 64<<10)
	if head, _ := br.Peek(4); plan.IsSaved(head) {
		closeFn()
		return nil, nil, exit(ExitUsage, fmt.Errorf("--plan %s is a saved binary plan: give its JSON (terraform show -json %s > plan.json) as --plan and the saved plan as --plan-file", name, name))
	}
	return br, closeFn, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return "", err
	} else if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// prepareGrantOut makes sure the grant can be written before the server is
// asked (people should not approve a grant that is then lost), and removes
// an older grant, so that a check that ends without one leaves none.
func prepareGrantOut(path string) error {
	if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".stepgate-grant-*")
	if err != nil {
		return fmt.Errorf("cannot write the grant next to %s: %w", path, err)
	}
	f.Close()
	os.Remove(f.Name())
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the older grant: %w", err)
	}
	return nil
}

// writePrivate writes a secret (a grant, a sign-in) to path with mode 0600,
// atomically: a reader sees no file or the whole of it, never a part, and
// never a wider mode.
func writePrivate(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".stepgate-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename there is nothing left to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
