package store

import (
	"context"
	"time"
)

// RunTaskState is where a run task of HCP Terraform (or Terraform
// Enterprise) is in stepgate's hands.
type RunTaskState string

const (
	// RunTaskReceived: accepted; no check yet.
	RunTaskReceived RunTaskState = "received"
	// RunTaskWaiting: its check waits for people; heartbeats are sent.
	RunTaskWaiting RunTaskState = "waiting"
	// RunTaskReporting: its result is decided (Result) and not yet
	// accepted by HCP Terraform.
	RunTaskReporting RunTaskState = "reporting"
	// RunTaskDone: the result was accepted, or can no longer be sent.
	RunTaskDone RunTaskState = "done"
)

// Open reports whether a server still has work to do on a run task in s:
// one it finds open when it starts is resumed.
func (s RunTaskState) Open() bool { return s != RunTaskDone }

// RunTask is one run task request received from HCP Terraform, kept until
// its result is reported so that a restart resumes it.
type RunTask struct {
	// ID is HCP Terraform's task_result_id: one per task and stage of a run.
	ID    string
	RunID string
	// Stage is post_plan or pre_apply.
	Stage string
	State RunTaskState
	// Result is passed or failed once decided; Message says why.
	Result  string
	Message string
	// CheckID is the check created for it, if any.
	CheckID string
	// PlanSHA256 is the digest of the plan JSON it was about, once read.
	PlanSHA256 string
	// SealedRequest is the signed request as received, sealed under the
	// master key: it holds the access token the callbacks need.
	SealedRequest []byte
	// Owner is the server process working on it, until LeaseUntil: the
	// other servers leave it alone until then, and take it over after.
	Owner      string
	LeaseUntil time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// Deadline is when HCP Terraform gives up on the task: nothing is sent
	// after it.
	Deadline time.Time
}

// RunTaskTx keeps run tasks.
type RunTaskTx interface {
	// CreateRunTask stores t; ErrConflict when its ID is already stored.
	CreateRunTask(ctx context.Context, t *RunTask) error
	// GetRunTask reads a run task by ID.
	GetRunTask(ctx context.Context, id string) (*RunTask, error)
	// UpdateRunTask writes t's state, result, message, check, digest and
	// update time; ErrNotFound when it is not stored.
	UpdateRunTask(ctx context.Context, t *RunTask) error
	// FindRunTask returns the newest run task of a run at a stage.
	FindRunTask(ctx context.Context, runID, stage string) (*RunTask, error)
	// ClaimRunTask makes owner the one working on run task id until
	// `until`, unless another owner's lease runs past now; true if it did.
	// An owner renews its lease, or gives it up with an until before now.
	ClaimRunTask(ctx context.Context, id, owner string, until, now time.Time) (bool, error)
	// OpenRunTasks lists run tasks not done, oldest first, at most limit.
	OpenRunTasks(ctx context.Context, limit int) ([]*RunTask, error)
}
