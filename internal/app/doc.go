// Package app wires stepgate's parts together for the commands: NewServer
// builds the whole server (store, keys, policy, gate, API, pages,
// background loops) for serve, the benchmark and the tests, and Serve runs
// it with a graceful shutdown. It holds no logic of its own.
package app
