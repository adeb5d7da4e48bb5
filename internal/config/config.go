package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/dustin/go-humanize"
	"go.yaml.in/yaml/v3"

	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/policy"
)

// EnvFile names the environment variable that points at stepgate.yaml when
// --config is not given.
const EnvFile = "STEPGATE_CONFIG"

// ErrInvalid says the configuration file is wrong; the message names what.
var ErrInvalid = errors.New("invalid configuration")

// Config is stepgate.yaml.
type Config struct {
	Policy policy.Overrides `yaml:"policy"`
	Plan   PlanSettings     `yaml:"plan"`
}

// PlanSettings tune plan reading.
type PlanSettings struct {
	// MaxSize caps the size of a plan document ("512MiB", "2GB", or bytes).
	MaxSize ByteSize `yaml:"max_size"`
}

// ByteSize is a size written with units, as "512MiB".
type ByteSize int64

// UnmarshalYAML reads "512MiB", "1.5 GB" or a plain number of bytes.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// ParseSize reads a size such as "512MiB" or "100000000".
func ParseSize(s string) (int64, error) {
	v, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("size %q: want a number of bytes or a size such as 512MiB", s)
	}
	if v == 0 || v > 1<<40 {
		return 0, fmt.Errorf("size %q: must be between 1 byte and 1 TiB", s)
	}
	return int64(v), nil
}

// Default returns the configuration used when there is no file.
func Default() *Config {
	return &Config{Plan: PlanSettings{MaxSize: plan.DefaultMaxBytes}}
}

// Load reads a configuration file. An empty path returns the defaults.
func Load(path string) (*Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	if err := c.decode(b); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, path, err)
	}
	return c, nil
}

func (c *Config) decode(b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return err
	}
	if _, err := c.PolicyConfig(); err != nil {
		return err
	}
	return nil
}

// PolicyConfig returns the policy tuning: the defaults with this file's
// policy section applied, validated.
func (c *Config) PolicyConfig() (policy.Config, error) {
	pc := c.Policy.Apply(policy.DefaultConfig())
	if err := pc.Validate(); err != nil {
		return policy.Config{}, err
	}
	return pc, nil
}
