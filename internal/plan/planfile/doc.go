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
