// Command checkconfig reads the manifests `helm template` renders from
// standard input and checks that the stepgate.yaml of each ConfigMap is a
// configuration stepgate accepts (unknown keys, bad values), as `stepgate
// serve` would read it. Used by deploy/helm/check.sh.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/stepgate/stepgate/internal/config"
)

func main() {
	if err := run(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "checkconfig:", err)
		os.Exit(1)
	}
}

func run(in io.Reader) error {
	dec := yaml.NewDecoder(in)
	found := 0
	for {
		var doc struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading manifests: %w", err)
		}
		body, ok := doc.Data["stepgate.yaml"]
		if doc.Kind != "ConfigMap" || !ok {
			continue
		}
		found++
		dir, err := os.MkdirTemp("", "checkconfig-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		p := filepath.Join(dir, "stepgate.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			return err
		}
		cfg, err := config.Load(p)
		if err != nil {
			return err
		}
		// The chart sets the database through the environment.
		cfg.Server.Database = "sqlite:///var/lib/stepgate/stepgate.db"
		if err := cfg.Server.Validate(); err != nil {
			return fmt.Errorf("stepgate.yaml:\n%s\n%w", bytes.TrimSpace([]byte(body)), err)
		}
	}
	if found == 0 {
		return errors.New("no ConfigMap with stepgate.yaml")
	}
	return nil
}
