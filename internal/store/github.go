package store

import (
	"context"
	"time"
)

// States of a GitHub deployment protection rule delivery.
const (
	// DeliveryReceived: recorded, not answered yet.
	DeliveryReceived = "received"
	// DeliveryReported: a status report (the review link) was sent; the
	// final answer waits for people.
	DeliveryReported = "reported"
	// DeliveryAnswered: the final answer (approved or rejected) was sent,
	// or could never be (Answer says which, LastError why).
	DeliveryAnswered = "answered"
)

// GitHubDelivery is one deployment_protection_rule event GitHub delivered
// (X-GitHub-Delivery), kept until it is answered, so that an answer owed
// survives a restart and a redelivery is not answered twice.
type GitHubDelivery struct {
	ID             string // X-GitHub-Delivery
	InstallationID int64
	Repository     string // owner/name
	RunID          string
	SHA            string
	Environment    string
	CallbackURL    string
	State          string // one of the Delivery* constants
	// Answer is approved or rejected once answered; empty before.
	Answer string
	// Attempts counts the calls to GitHub that failed; LastError is the
	// newest failure, for operators.
	Attempts  int
	LastError string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// GitHubTx keeps the deliveries of the GitHub App and finds the checks of
// a workflow run.
type GitHubTx interface {
	// AddGitHubDelivery records a delivery; ErrConflict when its id is
	// already recorded (a redelivery).
	AddGitHubDelivery(ctx context.Context, d *GitHubDelivery) error
	// GetGitHubDelivery returns one delivery; ErrNotFound if unknown.
	GetGitHubDelivery(ctx context.Context, id string) (*GitHubDelivery, error)
	// UpdateGitHubDelivery saves every field but ID and CreatedAt;
	// ErrNotFound if unknown.
	UpdateGitHubDelivery(ctx context.Context, d *GitHubDelivery) error
	// OpenGitHubDeliveries lists at most limit deliveries not answered
	// yet, oldest first.
	OpenGitHubDeliveries(ctx context.Context, limit int) ([]*GitHubDelivery, error)
	// ChecksOfRun lists at most limit checks whose VERIFIED pipeline
	// (Check.Pipeline, from a CI token's claims; never PipelineUnverified)
	// names this system, repository and run id, oldest first.
	ChecksOfRun(ctx context.Context, system, repository, runID string, limit int) ([]*Check, error)
}
