// Package notify owns the webhooks that tell people about checks: when one
// becomes pending, approved, rejected or expired, each configured URL gets a
// JSON event (or a Slack-compatible message) with the review link. Delivery
// is queued and retried with back-off; it never blocks or fails a check.
package notify
