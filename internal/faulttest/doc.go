// Package faulttest owns the faults that tests inject into stepgate's
// dependencies: a TCP proxy that can drop the network silently, and a
// throwaway PostgreSQL cluster that can be restarted. It is for tests only.
package faulttest
