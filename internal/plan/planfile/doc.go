// Package planfile reads Terraform's and OpenTofu's saved plans (the zip
// that `terraform plan -out FILE` writes) without running either tool, and
// checks that a saved plan and a plan JSON (`terraform show -json FILE`)
// describe the same changes.
//
// It owns the knowledge of the saved plan format: the zip's tfplan entry,
// protocol buffers of Terraform's internal/plans/planproto/planfile.proto
// (format version 3, written by Terraform 1.x and OpenTofu 1.x), and the
// values inside it, cty values encoded as msgpack (unknown values are
// msgpack extensions; a dynamically typed value is a [type JSON, value]
// pair). The zip's state and configuration entries are never read.
//
// Values are not kept: each side's values are reduced to digests of a
// canonical form (one per top-level attribute), so a comparison holds no
// secrets once the input is read, and the saved plan itself is dropped by
// the caller after Read. Every size, count and nesting depth is bounded,
// for saved plans sent by whoever holds a pipeline token.
package planfile

// How a saved plan is bound to its plan JSON: the values of
// plan.saved_plan_binding in stepgate.yaml.
const (
	// BindingVerify: a saved plan named by a check must be sent, read and
	// found to describe the same changes as the JSON; anything else is
	// refused. The default.
	BindingVerify = "verify"
	// BindingJSONOnly also accepts a saved plan that could not be verified
	// (named by its sha256 only, or of a format this stepgate does not
	// know), with the finding plan.unverified. A saved plan that is read
	// and differs from the JSON is still refused.
	BindingJSONOnly = "json-only"
)

// Bindings lists the values of plan.saved_plan_binding.
var Bindings = []string{BindingVerify, BindingJSONOnly}
