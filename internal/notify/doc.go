// Package notify owns the webhooks that tell people about checks: when one
// becomes pending, approved, rejected or expired, each configured URL gets a
// JSON event, a Slack message (Block Kit) or a Microsoft Teams Adaptive Card,
// with the review link; a decided check gets a follow-up message. Delivery
// is queued and retried with back-off; it never blocks or fails a check.
package notify
