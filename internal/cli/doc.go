// Package cli owns the stepgate command line: its commands, flags,
// environment variables and exit codes. main only calls Run.
package cli
