#!/usr/bin/env bash
# Checks what the Dockerfile builds without a Docker engine (CI machines
# have none): builds the binary with the Dockerfile's exact command, checks
# that it is static, lays out the runtime image's file system the way the
# Dockerfile's last stages do, and runs `stepgate serve` in it with chroot
# as the image's user (65532), with nothing else in the file system: no
# libc, no shell. Needs root (chroot) and curl.
set -euo pipefail
cd "$(dirname "$0")/../.."

root="$(mktemp -d)"
chmod 0755 "$root" # mktemp makes it 0700: the image's / is 0755
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; [ -f "$root.log" ] && cat "$root.log"; rm -rf "$root" "$root.log"; }
trap cleanup EXIT

# The Dockerfile's build command.
CGO_ENABLED=0 GOOS=linux go build -trimpath \
	-ldflags "-s -w -X github.com/stepgate/stepgate/internal/cli.buildVersion=v0.0.0-rootfs-check" \
	-o "$root/usr/local/bin/stepgate" ./cmd/stepgate

bin="$root/usr/local/bin/stepgate"
if command -v file >/dev/null; then
	# (not `tee /dev/stderr`: reopening stderr truncates a log file it is)
	kind=$(file "$bin")
	echo "$kind" >&2
	grep -q "statically linked" <<<"$kind" || { echo "not a static binary"; exit 1; }
fi
if ldd "$bin" >/dev/null 2>&1; then
	echo "ldd finds dynamic dependencies:"; ldd "$bin"; exit 1
fi
go version -m "$bin" | grep -q "CGO_ENABLED=0" || { echo "built with cgo"; exit 1; }

# The runtime image's file system, as the Dockerfile makes it.
mkdir -p "$root/etc/ssl/certs" "$root/var/lib/stepgate" "$root/tmp"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
echo 'stepgate:x:65532:65532:stepgate:/var/lib/stepgate:/sbin/nologin' > "$root/etc/passwd"
echo 'stepgate:x:65532:' > "$root/etc/group"
chown 65532:65532 "$root/var/lib/stepgate"; chmod 0700 "$root/var/lib/stepgate"; chmod 1777 "$root/tmp"
# Nothing but these files is in the image.
find "$root" -mindepth 1 | sed "s|^$root||" | sort

chroot="$(command -v chroot)"
port=$((20000 + RANDOM % 20000))
# The image's ENV and ENTRYPOINT, as its USER.
env -i STEPGATE_LISTEN=127.0.0.1:$port \
	STEPGATE_DATABASE_URL=sqlite:///var/lib/stepgate/stepgate.db \
	STEPGATE_MASTER_KEY_FILE=/var/lib/stepgate/master.key \
	"$chroot" --userspec=65532:65532 "$root" /usr/local/bin/stepgate serve --dev --log-format text \
	>"$root.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
	curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/readyz"; echo
chroot --userspec=65532:65532 "$root" /usr/local/bin/stepgate version
for f in stepgate.db stepgate.db-wal master.key; do
	mode="$(stat -c '%a %u' "$root/var/lib/stepgate/$f")"
	echo "$f: $mode"
	[ "$mode" = "600 65532" ] || { echo "$f: want mode 600, owner 65532"; exit 1; }
done
kill -TERM "$pid"
wait "$pid" && code=0 || code=$?
pid=""
[ "$code" = 0 ] || { echo "serve exited $code after SIGTERM, want 0"; exit 1; }
echo "rootfs check: ok"
