// Package storetest owns the conformance suite of store.Store: the
// behaviour every backend must have (errors, transactions, locking, the
// audit chain, notifications, how values round-trip), run against each
// backend by its own tests with storetest.Run.
package storetest
