// Package app wires stepgate's parts together for the commands: it opens
// the configured store and keys, builds the gate, and runs the server with
// a graceful shutdown. It holds no logic of its own.
package app
