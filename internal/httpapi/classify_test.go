package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/gate"
)

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		status int
		code   string
		msg    string
	}{
		{"fail/forbidden-says-it-once", fmt.Errorf("%w: token %q may not ask for workspace %q", gate.ErrForbidden, "web-ci", "billing-dev"), http.StatusForbidden, api.CodeForbidden, `token "web-ci" may not ask for workspace "billing-dev"`},
		{"fail/self-approval-is-forbidden", fmt.Errorf("recording: %w", gate.ErrSelfApproval), http.StatusForbidden, api.CodeForbidden, "recording: the requester cannot approve their own check"},
		{"fail/not-eligible-is-forbidden", gate.ErrNotEligible, http.StatusForbidden, api.CodeForbidden, "not an eligible approver"},
		{"fail/bad-request", fmt.Errorf("%w: plan: invalid", gate.ErrBadRequest), http.StatusBadRequest, api.CodeBadRequest, "plan: invalid"},
		{"fail/conflict", fmt.Errorf("%w: grant already used", gate.ErrConflict), http.StatusConflict, api.CodeConflict, "grant already used"},
		{"fail/internal-says-nothing", errors.New("disk on fire at /var/lib/x"), http.StatusInternalServerError, api.CodeInternal, "internal error; nothing is allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, code, msg := classify(tt.err)
			if status != tt.status || code != tt.code || msg != tt.msg {
				t.Errorf("classify(%v) = %d, %s, %q; want %d, %s, %q", tt.err, status, code, msg, tt.status, tt.code, tt.msg)
			}
		})
	}
}
