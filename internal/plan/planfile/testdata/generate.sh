#!/usr/bin/env bash
# Writes the saved plans (NAME.tfplan) and their JSON (NAME.json) in this
# folder with the real Terraform on PATH. Only the built-in terraform_data
# resource is used, so nothing is downloaded. Run it again after a Terraform
# upgrade and commit what changed; the tests need no Terraform.
#
#   bash internal/plan/planfile/testdata/generate.sh
#
# The opentofu-1.10.6/ pair is not made here: it was written by OpenTofu
# 1.10.6 (see opentofu-1.10.6/README.md).
set -euo pipefail
out="$(cd "$(dirname "$0")" && pwd)"
tf="${TERRAFORM:-terraform}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export HOME="$work/home" TF_CLI_CONFIG_FILE="$work/empty.tfrc" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
mkdir -p "$HOME" && : >"$TF_CLI_CONFIG_FILE"

# plan NAME [plan args...]: plan the configuration in $work/cfg into NAME.
plan() {
	local name="$1"
	shift
	(cd "$work/cfg" && "$tf" plan -input=false -no-color -lock=false -out "$out/$name.tfplan" "$@" >/dev/null &&
		"$tf" show -json "$out/$name.tfplan" >"$out/$name.json")
	echo "wrote $name.tfplan and $name.json"
}

config() {
	mkdir -p "$work/cfg"
	cat >"$work/cfg/main.tf"
	(cd "$work/cfg" && "$tf" init -input=false -no-color >/dev/null)
}

apply() { (cd "$work/cfg" && "$tf" apply -input=false -no-color -auto-approve -lock=false >/dev/null); }

# Creates: one attribute differs between x_a and x_b.
config <<'EOF'
resource "terraform_data" "x" {
  input = "a"
}
EOF
plan create_x_a
sed -i 's/"a"/"b"/' "$work/cfg/main.tf"
plan create_x_b

# An extra resource.
cat >"$work/cfg/main.tf" <<'EOF'
resource "terraform_data" "x" {
  input = "a"
}
resource "terraform_data" "y" {
  input = "extra"
}
EOF
plan create_x_a_y

# Unknown values: b's input is a's id, known only after apply; and a
# sensitive value, in clear in the JSON, marked in after_sensitive.
cat >"$work/cfg/main.tf" <<'EOF'
variable "secret" {
  type      = string
  sensitive = true
  default   = "hunter2"
}
resource "terraform_data" "a" {
  input = { name = "a", token = var.secret, ports = [80, 443], ratio = 0.5, big = 12345678901234567890 }
}
resource "terraform_data" "b" {
  input = terraform_data.a.id
}
EOF
rm -f "$work/cfg/terraform.tfstate"
plan unknown_sensitive
plan unknown_sensitive_other -var secret=letmein

# With state: an update, a replace, a delete, a no-op.
rm -rf "$work/cfg"
config <<'EOF'
resource "terraform_data" "x" {
  input            = "a"
  triggers_replace = "1"
}
resource "terraform_data" "keep" {
  input = "same"
}
EOF
apply
sed -i 's/input            = "a"/input            = "b"/' "$work/cfg/main.tf"
plan update_x
sed -i 's/input            = "b"/input            = "a"/; s/"1"/"2"/' "$work/cfg/main.tf"
plan replace_x
plan destroy -destroy
