package sqlstore

import (
	"context"
	"fmt"

	"github.com/stepgate/stepgate/internal/store"
)

// GitHub App deliveries.

const deliveryColumns = `id, installation_id, repository, run_id, sha, environment, callback_url,
	state, answer, attempts, last_error, created_at, updated_at`

func scanDelivery(r Rows) (*store.GitHubDelivery, error) {
	var d store.GitHubDelivery
	err := r.Scan(&d.ID, &d.InstallationID, &d.Repository, &d.RunID, &d.SHA, &d.Environment, &d.CallbackURL,
		&d.State, &d.Answer, &d.Attempts, &d.LastError, timeDest{&d.CreatedAt}, timeDest{&d.UpdatedAt})
	return &d, err
}

// AddGitHubDelivery records d; store.ErrConflict when its id exists.
func (x *Tx) AddGitHubDelivery(ctx context.Context, d *store.GitHubDelivery) error {
	_, err := x.q.Exec(ctx, `INSERT INTO github_deliveries (`+deliveryColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		d.ID, d.InstallationID, d.Repository, d.RunID, d.SHA, d.Environment, d.CallbackURL,
		d.State, d.Answer, d.Attempts, d.LastError, x.d.timeArg(d.CreatedAt), x.d.timeArg(d.UpdatedAt))
	if err != nil {
		return fmt.Errorf("adding GitHub delivery %q: %w", d.ID, x.insertErr(err))
	}
	return nil
}

// GetGitHubDelivery returns one delivery.
func (x *Tx) GetGitHubDelivery(ctx context.Context, id string) (*store.GitHubDelivery, error) {
	var d *store.GitHubDelivery
	err := x.queryFound(ctx, func(r Rows) (err error) {
		d, err = scanDelivery(r)
		return err
	}, `SELECT `+deliveryColumns+` FROM github_deliveries WHERE id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("getting GitHub delivery %q: %w", id, err)
	}
	return d, nil
}

// UpdateGitHubDelivery saves d but its id and creation time.
func (x *Tx) UpdateGitHubDelivery(ctx context.Context, d *store.GitHubDelivery) error {
	n, err := x.q.Exec(ctx, `UPDATE github_deliveries SET installation_id = $2, repository = $3, run_id = $4,
		sha = $5, environment = $6, callback_url = $7, state = $8, answer = $9, attempts = $10,
		last_error = $11, updated_at = $12
		WHERE id = $1`,
		d.ID, d.InstallationID, d.Repository, d.RunID, d.SHA, d.Environment, d.CallbackURL,
		d.State, d.Answer, d.Attempts, d.LastError, x.d.timeArg(d.UpdatedAt))
	if err := x.updateErr(n, err); err != nil {
		return fmt.Errorf("updating GitHub delivery %q: %w", d.ID, err)
	}
	return nil
}

// OpenGitHubDeliveries lists the deliveries not answered yet, oldest
// first (a zero CreatedAt first, then by id).
func (x *Tx) OpenGitHubDeliveries(ctx context.Context, limit int) ([]*store.GitHubDelivery, error) {
	var out []*store.GitHubDelivery
	err := positive(limit)
	if err == nil {
		err = x.queryAll(ctx, appendTo(&out, scanDelivery), `SELECT `+deliveryColumns+` FROM github_deliveries
			WHERE state <> 'answered'
			ORDER BY created_at NULLS FIRST, id
			LIMIT $1`, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("listing open GitHub deliveries: %w", err)
	}
	return out, nil
}

// ChecksOfRun lists the checks whose verified pipeline names the system,
// repository and run id, oldest first. Only checks.pipeline is read: it
// holds a CI token's verified claims, never what a request said
// (checks.pipeline_unverified). The run id is compared with the
// expression of the index checks_pipeline_run_id, written the same in both
// dialects (SQLite's and PostgreSQL's ->> operator).
func (x *Tx) ChecksOfRun(ctx context.Context, system, repository, runID string, limit int) ([]*store.Check, error) {
	var out []*store.Check
	err := positive(limit)
	if err == nil {
		err = x.queryAll(ctx, appendTo(&out, scanCheck), `SELECT `+checkColumns+` FROM checks
			WHERE pipeline IS NOT NULL AND pipeline ->> 'run_id' = $1
				AND pipeline ->> 'repository' = $2 AND pipeline ->> 'system' = $3
			ORDER BY created_at NULLS FIRST, id
			LIMIT $4`, runID, repository, system, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("listing the checks of run %q of %q: %w", runID, repository, err)
	}
	return out, nil
}
