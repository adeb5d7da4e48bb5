// Package hcpterraform makes stepgate a run task of HCP Terraform and
// Terraform Enterprise: it receives the signed run task requests
// (POST /v1/integrations/hcp-terraform), reads the run's plan JSON from
// HCP Terraform, creates a check through the gate, and answers through the
// task result callback (JSON:API task-results), with a heartbeat while
// people decide. Pending run tasks are kept in the store, sealed, and
// resumed when a server starts.
//
// The contract followed is HashiCorp's "Run tasks integration" API
// documentation and the request and callback types of hashicorp/go-tfe
// (RunTaskRequest, TaskResultCallbackRequestOptions, TaskResultOutcome).
package hcpterraform
