// Package plan reads infrastructure-as-code plans and normalizes them into
// changes: one record per resource that a plan would touch.
//
// It owns the knowledge of plan formats: Terraform and OpenTofu `show -json`
// output (format_version 0.x and 1.x), the redacted plan JSON that HCP
// Terraform hands to run tasks, and Pulumi `preview --json` output. Documents
// are streamed: sections the policy does not need (prior_state,
// configuration, planned_values, relevant_attributes...) are skipped without
// being built in memory, and no-op changes are counted but not passed on.
// Sensitive values are masked before a change leaves this package.
package plan
