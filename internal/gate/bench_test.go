package gate

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkCreateCheck measures a new check of a small plan end to end in
// the gate (SQLite, the default policy): assessing, reading the history
// the policy sees, recording. Each plan differs, so nothing resumes.
func BenchmarkCreateCheck(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		f.clock.Add(time.Second) // within the token's rate limit
		body := fmt.Sprintf(`{"format_version":"1.2","terraform_version":"1.9.5","resource_changes":[
			{"address":"aws_instance.w","mode":"managed","type":"aws_instance","name":"w","provider_name":"registry.terraform.io/hashicorp/aws",
			 "change":{"actions":["update"],"before":{"tags":{"n":"%d"}},"after":{"tags":{"n":"%d"}}}}]}`, i, i+1)
		if _, _, err := f.svc.CreateCheck(ctx, f.caller, &CreateRequest{Kind: "terraform.apply", Workspace: "billing-dev", Plan: strings.NewReader(body)}); err != nil {
			b.Fatal(err)
		}
	}
}
