// Package config owns stepgate.yaml: reading it strictly, applying its
// settings over the defaults, and validating the result with every problem
// named at once.
package config
