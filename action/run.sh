#!/usr/bin/env bash
# The steps of the stepgate GitHub Action (action.yml), kept in one file so
# that they can be run and tested outside GitHub. Inputs come as INPUT_*
# variables; outputs go to $GITHUB_OUTPUT, the summary to
# $GITHUB_STEP_SUMMARY. The job's OIDC token is asked of GitHub by stepgate
# itself (ACTIONS_ID_TOKEN_REQUEST_URL, &audience=INPUT_AUDIENCE); no token
# or grant is ever printed.
set -euo pipefail

die() { echo "::error title=stepgate::$*" >&2; exit 2; }
out() { [[ -n "${GITHUB_OUTPUT:-}" ]] && printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"; return 0; }

# install puts the requested release of stepgate on PATH, its archive
# verified against the release's checksums file (names from .goreleaser.yaml).
install() {
  local version="${INPUT_VERSION:-}" os arch dir base repo="${STEPGATE_RELEASE_REPO:-stepgate/stepgate}"
  [[ -n "$version" && "$version" != "latest" ]] || die "no stepgate on PATH: set the input version (e.g. 1.4.0) to install a release"
  version="${version#v}"
  [[ "$version" =~ ^[0-9A-Za-z.+-]+$ ]] || die "version: $version is not a release version"
  case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) die "no stepgate release for $(uname -s)" ;; esac
  case "$(uname -m)" in x86_64 | amd64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; *) die "no stepgate release for $(uname -m)" ;; esac
  base="${STEPGATE_RELEASE_URL:-https://github.com/$repo/releases/download}/v$version"
  dir="$(mktemp -d)"
  curl -fsSL --proto '=https' -o "$dir/stepgate_${version}_${os}_${arch}.tar.gz" "$base/stepgate_${version}_${os}_${arch}.tar.gz"
  curl -fsSL --proto '=https' -o "$dir/checksums.txt" "$base/stepgate_${version}_checksums.txt"
  local sha256=(sha256sum)
  command -v sha256sum >/dev/null 2>&1 || sha256=(shasum -a 256) # macOS
  (cd "$dir" && grep -E "  stepgate_${version}_${os}_${arch}\.tar\.gz\$" checksums.txt | "${sha256[@]}" -c -) >/dev/null ||
    die "the stepgate archive does not match the release's checksums"
  tar -xzf "$dir/stepgate_${version}_${os}_${arch}.tar.gz" -C "$dir" stepgate
  mkdir -p "$dir/bin" && mv "$dir/stepgate" "$dir/bin/stepgate"
  [[ -n "${GITHUB_PATH:-}" ]] && echo "$dir/bin" >>"$GITHUB_PATH"
  PATH="$dir/bin:$PATH"
}

command -v stepgate >/dev/null 2>&1 || install

mode="${INPUT_MODE:-check}"
workspace="${INPUT_WORKSPACE:-}"
args=()
[[ -n "${INPUT_PLAN:-}" ]] && args+=(--plan "$INPUT_PLAN")
[[ -n "${INPUT_PLAN_FILE:-}" ]] && args+=(--plan-file "$INPUT_PLAN_FILE")
[[ -n "$workspace" ]] && args+=(--workspace "$workspace")
export STEPGATE_SERVER="${INPUT_SERVER:-${STEPGATE_SERVER:-}}"
grant="${INPUT_GRANT_FILE:-${RUNNER_TEMP:-.}/stepgate.grant}"

case "$mode" in
eval)
  [[ -n "${INPUT_ENVIRONMENT:-}" ]] && args+=(--environment "$INPUT_ENVIRONMENT")
  set +e
  summary="$(stepgate eval ${args[@]+"${args[@]}"} --output markdown)"
  code=$?
  set -e
  case $code in 0) decision=allow ;; 3) decision=step_up ;; 4) decision=deny ;; *) echo "$summary"; exit "$code" ;; esac
  [[ -n "${GITHUB_STEP_SUMMARY:-}" ]] && printf '**stepgate eval**\n\n%s\n' "$summary" >>"$GITHUB_STEP_SUMMARY"
  echo "$summary"
  out decision "$decision"
  [[ $code -eq 4 ]] && exit 4
  exit 0
  ;;
check)
  [[ -n "${INPUT_ENVIRONMENT:-}" ]] && args+=(--environment "$INPUT_ENVIRONMENT")
  set +e
  # stepgate check writes check_id, state, review_url and grant_path to
  # $GITHUB_OUTPUT and its summary to $GITHUB_STEP_SUMMARY.
  stepgate check ${args[@]+"${args[@]}"} --wait "${INPUT_WAIT:-30m}" --grant-out "$grant" --id-token-audience "${INPUT_AUDIENCE:-stepgate}"
  code=$?
  set -e
  case $code in 0) decision=allow ;; 3) decision=pending ;; 4) decision=deny ;; *) decision=error ;; esac
  out decision "$decision"
  [[ $code -eq 0 ]] && out grant-file "$grant"
  exit "$code"
  ;;
apply)
  [[ -n "${INPUT_COMMAND:-}" ]] || die "mode apply needs the input command (e.g. terraform apply tfplan)"
  # The command is split on white space, never evaluated by a shell.
  read -r -a cmd <<<"$INPUT_COMMAND"
  if [[ ! -f "$grant" ]]; then
    # No grant from an earlier step of this job: ask for it now (a grant
    # never travels between jobs: it is a bearer credential). The server
    # resumes the check another job of this run asked for the same plan
    # (found by the run's verified OIDC claims, not this job's subject), so
    # people are asked once per run; it waits up to INPUT_WAIT if pending.
    env_args=()
    [[ -n "${INPUT_ENVIRONMENT:-}" ]] && env_args+=(--environment "$INPUT_ENVIRONMENT")
    set +e
    stepgate check ${args[@]+"${args[@]}"} ${env_args[@]+"${env_args[@]}"} --wait "${INPUT_WAIT:-30m}" --grant-out "$grant" --id-token-audience "${INPUT_AUDIENCE:-stepgate}"
    code=$?
    set -e
    if [[ $code -ne 0 ]]; then
      case $code in 3) out decision pending ;; 4) out decision deny ;; *) out decision error ;; esac
      exit "$code"
    fi
  fi
  set +e
  stepgate apply --grant "$grant" ${args[@]+"${args[@]}"} --id-token-audience "${INPUT_AUDIENCE:-stepgate}" -- "${cmd[@]}"
  code=$?
  set -e
  out decision applied
  [[ -n "${GITHUB_STEP_SUMMARY:-}" ]] && printf '**stepgate apply**: `%s` ran with its grant (exit %d)\n' "${cmd[0]}" "$code" >>"$GITHUB_STEP_SUMMARY"
  exit "$code"
  ;;
*) die "mode: $mode is none of eval, check, apply" ;;
esac
