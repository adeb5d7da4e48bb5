// Package testenv is how tests find what they need outside the process
// (PostgreSQL, Chromium, Terraform): present, they use it; absent, they
// skip and say what would run them, except in CI (CI set), where a test
// that cannot run fails: CI never passes by skipping.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI.
func InCI() bool { return os.Getenv("CI") != "" && os.Getenv("CI") != "false" }

// Missing ends a test that cannot run without something: it fails in CI
// and skips elsewhere, saying what is missing and how to provide it.
func Missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s (CI never skips: .ci/run provides it)", what)
		return // Fatalf has ended the test
	}
	t.Skip(what)
}

// PostgresDSN returns $STEPGATE_TEST_POSTGRES_DSN, the PostgreSQL the
// tests may use, or ends the test when it is not set.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("STEPGATE_TEST_POSTGRES_DSN")
	if dsn == "" {
		Missing(t, "STEPGATE_TEST_POSTGRES_DSN not set: PostgreSQL tests skipped (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	return dsn
}

// Tool returns the path of a program on PATH, or ends the test when there
// is none.
func Tool(t testing.TB, name, why string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not on PATH: "+why)
	}
	return p
}
