// Package github makes stepgate a GitHub App that answers custom deployment
// protection rules: GitHub asks (the deployment_protection_rule webhook)
// whether a workflow run may deploy to an environment, and stepgate answers
// from the checks that run's CI tokens created, through the run's callback
// (POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule)
// with an installation token.
//
// It owns: verifying deliveries (X-Hub-Signature-256), recording them
// (idempotent by X-GitHub-Delivery, kept until answered so that a restart
// does not lose an answer owed), deciding from the checks whose VERIFIED
// pipeline names the run, and calling GitHub with bounded, cancellable
// retries. It fails closed: no check, a store error or an unknown run is
// never an approval.
package github
