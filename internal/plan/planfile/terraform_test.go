package planfile

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stepgate/stepgate/internal/testenv"
)

// TestRealTerraform writes saved plans with the Terraform on PATH, now,
// and compares them with their JSON: the committed fixtures could lag
// behind the Terraform that pipelines run. In CI Terraform must be there.
func TestRealTerraform(t *testing.T) {
	tf := testenv.Tool(t, "terraform", "the committed fixtures (testdata/generate.sh) stand in for it")
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(dir, "empty.tfrc")
	if err := os.WriteFile(rc, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cfg")
	if err := os.MkdirAll(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "main.tf"), []byte(`variable "v" {
  type    = string
  default = "a"
}
variable "secret" {
  type      = string
  sensitive = true
  default   = "s3cret"
}
resource "terraform_data" "x" {
  input = { value = var.v, secret = var.secret, list = [1, 2.5, "three"] }
}
resource "terraform_data" "y" {
  input = terraform_data.x.id
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tfrun := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(tf, args...)
		cmd.Dir = cfg
		cmd.Env = append(os.Environ(), "HOME="+home, "TF_CLI_CONFIG_FILE="+rc, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("terraform %v: %v\n%s", args, err, errOut.Bytes())
		}
		return out.Bytes()
	}
	tfrun("init", "-input=false", "-no-color")
	tfrun("plan", "-input=false", "-no-color", "-lock=false", "-out", "a.tfplan")
	tfrun("plan", "-input=false", "-no-color", "-lock=false", "-out", "b.tfplan", "-var", "v=b")
	aJSON := tfrun("show", "-json", "a.tfplan")
	read := func(name string) *Plan {
		b, err := os.ReadFile(filepath.Join(cfg, name))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Read(bytes.NewReader(b), Options{})
		if err != nil {
			t.Fatalf("Read(%s, written by %s) = %v", name, tf, err)
		}
		return p
	}
	if err := Compare(decodeJSON(t, bytes.NewReader(aJSON)), read("a.tfplan")); err != nil {
		t.Errorf("Compare(a.json, a.tfplan) = %v, want nil", err)
	}
	err := Compare(decodeJSON(t, bytes.NewReader(aJSON)), read("b.tfplan"))
	var me *MismatchError
	if !errors.As(err, &me) || me.Address != "terraform_data.x" || me.What != "after.input differs" {
		t.Errorf("Compare(a.json, b.tfplan) = %v, want terraform_data.x: after.input differs", err)
	}
}
