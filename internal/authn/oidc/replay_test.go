package oidc

import (
	"testing"
	"time"
)

func TestNonceUsedOnce(t *testing.T) {
	rp := &RP{now: time.Now, used: map[string]time.Time{}}
	exp := time.Now().Add(5 * time.Minute)
	if !rp.useNonce("n1", exp) || rp.useNonce("n1", exp) {
		t.Fatal("a nonce must be accepted once, then refused")
	}
	if !rp.useNonce("n2", exp) {
		t.Fatal("another nonce refused")
	}
}
