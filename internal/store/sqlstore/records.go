package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// Tx implements store.Tx with one set of queries for both backends. Over a
// transaction it is what InTx hands to its function; over a pool, each
// method is a single statement, so it runs in its own (implicit)
// transaction.
type Tx struct {
	q Querier
	d *Dialect
}

var _ store.Tx = (*Tx)(nil)

// NewTx runs the store's queries on q with d's dialect.
func NewTx(q Querier, d *Dialect) *Tx { return &Tx{q: q, d: d} }

// errNoRows says a query that reads one row found none.
var errNoRows = errors.New("no rows")

// queryOne runs query and scans its first row with scan; errNoRows if none.
func (x *Tx) queryOne(ctx context.Context, scan func(Rows) error, query string, args ...any) error {
	rows, err := x.q.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return errNoRows
	}
	if err := scan(rows); err != nil {
		return err
	}
	return rows.Err()
}

// queryFound is queryOne reporting no row as store.ErrNotFound.
func (x *Tx) queryFound(ctx context.Context, scan func(Rows) error, query string, args ...any) error {
	err := x.queryOne(ctx, scan, query, args...)
	if errors.Is(err, errNoRows) {
		return store.ErrNotFound
	}
	return err
}

// queryAll runs query and scans every row with scan.
func (x *Tx) queryAll(ctx context.Context, scan func(Rows) error, query string, args ...any) error {
	rows, err := x.q.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// appendTo is a scan for queryAll that appends each row, scanned with
// scan, to *out.
func appendTo[T any](out *[]*T, scan func(Rows) (*T, error)) func(Rows) error {
	return func(r Rows) error {
		v, err := scan(r)
		*out = append(*out, v)
		return err
	}
}

// insertErr maps a failed insert: a unique violation is store.ErrConflict.
func (x *Tx) insertErr(err error) error {
	if x.d.Classify(err) == UniqueViolation {
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	}
	return err
}

// updateErr maps a finished update or delete: no row changed is
// store.ErrNotFound, a unique violation store.ErrConflict.
func (x *Tx) updateErr(n int64, err error) error {
	if err != nil {
		return x.insertErr(err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func positive(limit int) error {
	if limit <= 0 {
		return fmt.Errorf("limit %d is not positive", limit)
	}
	return nil
}

// Checks.

const checkColumns = `id, state, kind, workspace, environment, plan_sha256, plan_file_sha256,
	requester, token_id, pipeline, assessment, resume_key, created_at, updated_at, expires_at,
	grant_id, grant_issued_at, grant_expires_at, consumed_at,
	outcome_exit_code, outcome_duration_ms, outcome_at, pipeline_unverified`

// checkArgs are c's columns in checkColumns order.
func (x *Tx) checkArgs(c *store.Check) ([]any, error) {
	pipeline, err := jsonArg(c.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("encoding pipeline: %w", err)
	}
	unverified, err := jsonArg(c.PipelineUnverified)
	if err != nil {
		return nil, fmt.Errorf("encoding unverified pipeline: %w", err)
	}
	t := x.d.timeArg
	return []any{
		c.ID, string(c.State), c.Kind, c.Workspace, c.Environment, c.PlanSHA256, c.PlanFileSHA256,
		c.Requester, c.TokenID, pipeline, rawArg(c.Assessment), c.ResumeKey, t(c.CreatedAt), t(c.UpdatedAt), t(c.ExpiresAt),
		c.GrantID, t(c.GrantIssuedAt), t(c.GrantExpiresAt), t(c.ConsumedAt),
		intPtrArg(c.OutcomeExitCode), c.OutcomeDurationMS, t(c.OutcomeAt), unverified,
	}, nil
}

func scanCheck(r Rows) (*store.Check, error) {
	var c store.Check
	var state string
	err := r.Scan(
		&c.ID, &state, &c.Kind, &c.Workspace, &c.Environment, &c.PlanSHA256, &c.PlanFileSHA256,
		&c.Requester, &c.TokenID, jsonDest{&c.Pipeline}, rawDest{&c.Assessment}, &c.ResumeKey,
		timeDest{&c.CreatedAt}, timeDest{&c.UpdatedAt}, timeDest{&c.ExpiresAt},
		&c.GrantID, timeDest{&c.GrantIssuedAt}, timeDest{&c.GrantExpiresAt}, timeDest{&c.ConsumedAt},
		intPtrDest{&c.OutcomeExitCode}, &c.OutcomeDurationMS, timeDest{&c.OutcomeAt}, jsonDest{&c.PipelineUnverified},
	)
	c.State = store.CheckState(state)
	return &c, err
}

func (x *Tx) CreateCheck(ctx context.Context, c *store.Check) error {
	args, err := x.checkArgs(c)
	if err == nil {
		_, err = x.q.Exec(ctx, `INSERT INTO checks (`+checkColumns+`) VALUES
			($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`,
			args...)
	}
	if err != nil {
		return fmt.Errorf("creating check %q: %w", c.ID, x.insertErr(err))
	}
	return nil
}

func (x *Tx) getCheck(ctx context.Context, id, suffix string) (*store.Check, error) {
	var c *store.Check
	err := x.queryFound(ctx, func(r Rows) (err error) {
		c, err = scanCheck(r)
		return err
	}, `SELECT `+checkColumns+` FROM checks WHERE id = $1`+suffix, id)
	if err != nil {
		return nil, fmt.Errorf("getting check %q: %w", id, err)
	}
	return c, nil
}

func (x *Tx) GetCheck(ctx context.Context, id string) (*store.Check, error) {
	return x.getCheck(ctx, id, "")
}

// GetCheckForUpdate reads a check and locks it until the transaction ends.
// Outside a transaction the lock ends with the statement.
func (x *Tx) GetCheckForUpdate(ctx context.Context, id string) (*store.Check, error) {
	return x.getCheck(ctx, id, x.d.ForUpdate)
}

// UpdateCheck replaces every column of the check with c's ID.
func (x *Tx) UpdateCheck(ctx context.Context, c *store.Check) error {
	args, err := x.checkArgs(c)
	var n int64
	if err == nil {
		n, err = x.q.Exec(ctx, `UPDATE checks SET
			state = $2, kind = $3, workspace = $4, environment = $5, plan_sha256 = $6, plan_file_sha256 = $7,
			requester = $8, token_id = $9, pipeline = $10, assessment = $11, resume_key = $12,
			created_at = $13, updated_at = $14, expires_at = $15,
			grant_id = $16, grant_issued_at = $17, grant_expires_at = $18, consumed_at = $19,
			outcome_exit_code = $20, outcome_duration_ms = $21, outcome_at = $22, pipeline_unverified = $23
			WHERE id = $1`, args...)
	}
	if err := x.updateErr(n, err); err != nil {
		return fmt.Errorf("updating check %q: %w", c.ID, err)
	}
	return nil
}

// FindPendingCheck returns the pending check with this resume key created
// last (ties broken by the greater id).
func (x *Tx) FindPendingCheck(ctx context.Context, resumeKey string) (*store.Check, error) {
	return x.newestByResumeKey(ctx, resumeKey, "state = 'pending'", "pending")
}

// FindResumableCheck returns the newest check with this resume key that is
// pending, allowed or approved (ties broken by the greater id).
func (x *Tx) FindResumableCheck(ctx context.Context, resumeKey string) (*store.Check, error) {
	return x.newestByResumeKey(ctx, resumeKey, "state IN ('pending', 'allowed', 'approved')", "resumable")
}

// newestByResumeKey finds the newest check with a resume key whose state
// matches a fixed condition. The states are written as literals, not
// parameters, so that SQLite can use the partial indexes on them.
func (x *Tx) newestByResumeKey(ctx context.Context, resumeKey, stateCond, what string) (*store.Check, error) {
	var c *store.Check
	err := x.queryFound(ctx, func(r Rows) (err error) {
		c, err = scanCheck(r)
		return err
	}, `SELECT `+checkColumns+` FROM checks
		WHERE resume_key = $1 AND `+stateCond+`
		ORDER BY created_at DESC NULLS LAST, id DESC
		LIMIT 1`, resumeKey)
	if err != nil {
		return nil, fmt.Errorf("finding %s check with resume key %q: %w", what, resumeKey, err)
	}
	return c, nil
}

// ExpiredChecks lists at most limit pending checks whose ExpiresAt is
// before t, the one expiring first first. A pending check with a zero
// ExpiresAt never expires.
func (x *Tx) ExpiredChecks(ctx context.Context, t time.Time, limit int) ([]*store.Check, error) {
	var out []*store.Check
	err := positive(limit)
	if err == nil {
		err = x.queryAll(ctx, appendTo(&out, scanCheck), `SELECT `+checkColumns+` FROM checks
			WHERE state = 'pending' AND expires_at < $1
			ORDER BY expires_at, id
			LIMIT $2`, x.d.timeArg(t), limit)
	}
	if err != nil {
		return nil, fmt.Errorf("listing checks expired at %s: %w", t.UTC().Format(time.RFC3339Nano), err)
	}
	return out, nil
}

// CheckHistoryQuery is CheckHistory's statement, exported so that the
// backends' tests can check that it reads indexes only: $1 workspace, $2
// requester, $3 since, $4 plan digest, $5 now.
const CheckHistoryQuery = `SELECT
		(SELECT consumed_at FROM checks WHERE state = 'consumed' AND workspace = $1 AND consumed_at IS NOT NULL
			ORDER BY consumed_at DESC, id DESC LIMIT 1),
		(SELECT requester FROM checks WHERE state = 'consumed' AND workspace = $1 AND consumed_at IS NOT NULL
			ORDER BY consumed_at DESC, id DESC LIMIT 1),
		CASE WHEN EXISTS (SELECT 1 FROM checks WHERE state = 'consumed' AND workspace = $1 AND requester = $2) THEN 1 ELSE 0 END,
		(SELECT count(*) FROM checks WHERE requester = $2 AND created_at >= $3),
		CASE WHEN $4 <> '' AND EXISTS (SELECT 1 FROM checks WHERE state = 'approved' AND plan_sha256 = $4
			AND workspace = $1 AND grant_expires_at < $5) THEN 1 ELSE 0 END`

// CheckHistory reads input.history in one statement: each subquery has an
// index of its own (migration 0012).
func (x *Tx) CheckHistory(ctx context.Context, q store.HistoryQuery) (*store.History, error) {
	var h store.History
	var applied, expired int
	err := x.queryOne(ctx, func(r Rows) error {
		return r.Scan(timeDest{&h.LastAppliedAt}, optDest{&h.LastAppliedBy}, &applied, &h.RequesterChecks, &expired)
	}, CheckHistoryQuery,
		q.Workspace, q.Requester, x.d.timeArg(q.Since), q.PlanSHA256, x.d.timeArg(q.Now))
	if err != nil {
		return nil, fmt.Errorf("reading the history of workspace %q and requester %q: %w", q.Workspace, q.Requester, err)
	}
	h.RequesterApplied, h.PlanApprovedThenExpired = applied == 1, expired == 1
	return &h, nil
}

// ListChecks returns at most limit checks in state, the one created last
// first (ties broken by the greater id; a zero CreatedAt last).
func (x *Tx) ListChecks(ctx context.Context, state store.CheckState, limit int) ([]*store.Check, error) {
	var out []*store.Check
	err := positive(limit)
	if err == nil {
		err = x.queryAll(ctx, appendTo(&out, scanCheck), `SELECT `+checkColumns+` FROM checks
			WHERE state = $1
			ORDER BY created_at DESC NULLS LAST, id DESC
			LIMIT $2`, string(state), limit)
	}
	if err != nil {
		return nil, fmt.Errorf("listing %q checks: %w", state, err)
	}
	return out, nil
}

// ListChecksPage returns the checks in state in ListChecks' order,
// skipping the first offset of them, at most limit.
func (x *Tx) ListChecksPage(ctx context.Context, state store.CheckState, offset, limit int) ([]*store.Check, error) {
	var out []*store.Check
	err := positive(limit)
	if err == nil && offset < 0 {
		err = fmt.Errorf("offset %d is negative", offset)
	}
	if err == nil {
		err = x.queryAll(ctx, appendTo(&out, scanCheck), `SELECT `+checkColumns+` FROM checks
			WHERE state = $1
			ORDER BY created_at DESC NULLS LAST, id DESC
			LIMIT $2 OFFSET $3`, string(state), limit, offset)
	}
	if err != nil {
		return nil, fmt.Errorf("listing %q checks from %d: %w", state, offset, err)
	}
	return out, nil
}

// PendingStats counts the pending checks, and those of them whose expiry
// is before now (overdue: the expiry loop has not caught up).
func (x *Tx) PendingStats(ctx context.Context, now time.Time) (pending, overdue int, err error) {
	err = x.queryOne(ctx, func(r Rows) error { return r.Scan(&pending, &overdue) },
		`SELECT count(*), coalesce(sum(CASE WHEN expires_at < $1 THEN 1 ELSE 0 END), 0) FROM checks WHERE state = 'pending'`, x.d.timeArg(now))
	if err != nil {
		return 0, 0, fmt.Errorf("counting pending checks: %w", err)
	}
	return pending, overdue, nil
}

// CountPendingChecks counts the pending checks created with a token.
func (x *Tx) CountPendingChecks(ctx context.Context, tokenID string) (int, error) {
	var n int
	err := x.queryOne(ctx, func(r Rows) error { return r.Scan(&n) },
		`SELECT count(*) FROM checks WHERE token_id = $1 AND state = 'pending'`, tokenID)
	if err != nil {
		return 0, fmt.Errorf("counting the pending checks of token %q: %w", tokenID, err)
	}
	return n, nil
}

// PutCheckChanges stores the changes of a check, verbatim, replacing those
// stored before; store.ErrNotFound if the check does not exist. Empty or
// all-space changes are stored as NULL and read back nil.
func (x *Tx) PutCheckChanges(ctx context.Context, checkID string, changes json.RawMessage) error {
	_, err := x.q.Exec(ctx, `INSERT INTO check_changes (check_id, changes) VALUES ($1, $2)
		ON CONFLICT (check_id) DO UPDATE SET changes = excluded.changes`, checkID, rawArg(changes))
	if x.d.Classify(err) == ForeignKeyViolation {
		return fmt.Errorf("putting changes of check %q: %w", checkID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("putting changes of check %q: %w", checkID, err)
	}
	return nil
}

// GetCheckChanges returns the changes PutCheckChanges stored for a check;
// store.ErrNotFound if it stored none (or the check does not exist).
func (x *Tx) GetCheckChanges(ctx context.Context, checkID string) (json.RawMessage, error) {
	var changes json.RawMessage
	err := x.queryFound(ctx, func(r Rows) error {
		return r.Scan(rawDest{&changes})
	}, `SELECT changes FROM check_changes WHERE check_id = $1`, checkID)
	if err != nil {
		return nil, fmt.Errorf("getting changes of check %q: %w", checkID, err)
	}
	return changes, nil
}

// Approvals.

const approvalColumns = `id, check_id, subject, approved, reason, amr, aal, auth_time, evidence, created_at`

func scanApproval(r Rows) (*store.Approval, error) {
	var a store.Approval
	err := r.Scan(&a.ID, &a.CheckID, &a.Subject, &a.Approved, &a.Reason, jsonDest{&a.AMR}, &a.AAL,
		timeDest{&a.AuthTime}, rawDest{&a.Evidence}, timeDest{&a.CreatedAt})
	return &a, err
}

// AddApproval stores a; store.ErrNotFound if its check does not exist.
func (x *Tx) AddApproval(ctx context.Context, a *store.Approval) error {
	amr, err := jsonArg(a.AMR)
	if err == nil {
		_, err = x.q.Exec(ctx, `INSERT INTO approvals (`+approvalColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			a.ID, a.CheckID, a.Subject, a.Approved, a.Reason, amr, a.AAL,
			x.d.timeArg(a.AuthTime), rawArg(a.Evidence), x.d.timeArg(a.CreatedAt))
	}
	if x.d.Classify(err) == ForeignKeyViolation {
		return fmt.Errorf("adding approval %q: check %q: %w", a.ID, a.CheckID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("adding approval %q: %w", a.ID, x.insertErr(err))
	}
	return nil
}

// ListApprovals returns the approvals of a check, oldest first.
func (x *Tx) ListApprovals(ctx context.Context, checkID string) ([]*store.Approval, error) {
	var out []*store.Approval
	err := x.queryAll(ctx, appendTo(&out, scanApproval), `SELECT `+approvalColumns+` FROM approvals WHERE check_id = $1
		ORDER BY created_at NULLS FIRST, id`, checkID)
	if err != nil {
		return nil, fmt.Errorf("listing approvals of check %q: %w", checkID, err)
	}
	return out, nil
}

// Tokens.

const tokenColumns = `id, name, hash, workspaces, created_at, revoked_at, last_used_at, owner_id`

func scanToken(r Rows) (*store.Token, error) {
	var t store.Token
	err := r.Scan(&t.ID, &t.Name, bytesDest{&t.Hash}, jsonDest{&t.Workspaces},
		timeDest{&t.CreatedAt}, timeDest{&t.RevokedAt}, timeDest{&t.LastUsedAt}, optDest{&t.OwnerID})
	return &t, err
}

func (x *Tx) tokenArgs(t *store.Token) ([]any, error) {
	ws, err := jsonArg(t.Workspaces)
	if err != nil {
		return nil, fmt.Errorf("encoding workspaces: %w", err)
	}
	return []any{t.ID, t.Name, bytesArg(t.Hash), ws,
		x.d.timeArg(t.CreatedAt), x.d.timeArg(t.RevokedAt), x.d.timeArg(t.LastUsedAt), optArg(t.OwnerID)}, nil
}

// CreateToken stores t; store.ErrConflict if its ID or its hash is taken.
func (x *Tx) CreateToken(ctx context.Context, t *store.Token) error {
	args, err := x.tokenArgs(t)
	if err == nil {
		_, err = x.q.Exec(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, args...)
	}
	if err != nil {
		return fmt.Errorf("creating token %q: %w", t.ID, x.insertErr(err))
	}
	return nil
}

func (x *Tx) GetToken(ctx context.Context, id string) (*store.Token, error) {
	var t *store.Token
	err := x.queryFound(ctx, func(r Rows) (err error) {
		t, err = scanToken(r)
		return err
	}, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("getting token %q: %w", id, err)
	}
	return t, nil
}

// ListTokens returns every token, oldest first.
func (x *Tx) ListTokens(ctx context.Context) ([]*store.Token, error) {
	var out []*store.Token
	err := x.queryAll(ctx, appendTo(&out, scanToken), `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at NULLS FIRST, id`)
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", err)
	}
	return out, nil
}

// UpdateToken replaces every column of the token with t's ID.
func (x *Tx) UpdateToken(ctx context.Context, t *store.Token) error {
	args, err := x.tokenArgs(t)
	var n int64
	if err == nil {
		n, err = x.q.Exec(ctx, `UPDATE tokens SET name = $2, hash = $3, workspaces = $4,
			created_at = $5, revoked_at = $6, last_used_at = $7, owner_id = $8 WHERE id = $1`, args...)
	}
	if err := x.updateErr(n, err); err != nil {
		return fmt.Errorf("updating token %q: %w", t.ID, err)
	}
	return nil
}

// Signing keys.

const keyColumns = `id, algorithm, public_key, sealed_key, created_at, retired_at, publish_end`

func (x *Tx) keyArgs(k *store.SigningKey) []any {
	return []any{k.ID, k.Algorithm, bytesArg(k.PublicKey), bytesArg(k.SealedKey),
		x.d.timeArg(k.CreatedAt), x.d.timeArg(k.RetiredAt), x.d.timeArg(k.PublishEnd)}
}

func (x *Tx) AddSigningKey(ctx context.Context, k *store.SigningKey) error {
	_, err := x.q.Exec(ctx, `INSERT INTO signing_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		x.keyArgs(k)...)
	if err != nil {
		return fmt.Errorf("adding signing key %q: %w", k.ID, x.insertErr(err))
	}
	return nil
}

func scanKey(r Rows) (*store.SigningKey, error) {
	var k store.SigningKey
	err := r.Scan(&k.ID, &k.Algorithm, bytesDest{&k.PublicKey}, bytesDest{&k.SealedKey},
		timeDest{&k.CreatedAt}, timeDest{&k.RetiredAt}, timeDest{&k.PublishEnd})
	return &k, err
}

// ListSigningKeys returns every signing key, oldest first.
func (x *Tx) ListSigningKeys(ctx context.Context) ([]*store.SigningKey, error) {
	var out []*store.SigningKey
	err := x.queryAll(ctx, appendTo(&out, scanKey), `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at NULLS FIRST, id`)
	if err != nil {
		return nil, fmt.Errorf("listing signing keys: %w", err)
	}
	return out, nil
}

// UpdateSigningKey replaces every column of the key with k's ID.
func (x *Tx) UpdateSigningKey(ctx context.Context, k *store.SigningKey) error {
	n, err := x.q.Exec(ctx, `UPDATE signing_keys SET algorithm = $2, public_key = $3, sealed_key = $4,
		created_at = $5, retired_at = $6, publish_end = $7 WHERE id = $1`, x.keyArgs(k)...)
	if err := x.updateErr(n, err); err != nil {
		return fmt.Errorf("updating signing key %q: %w", k.ID, err)
	}
	return nil
}
