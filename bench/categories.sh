# Sourced by bench/run-gate.sh and bench/run-real.sh (from the repository
# root).
#
# categories PROFILE: the share of the CPU samples in each part of the work,
# each sample counted once, in the first category, in this order, that one
# of its frames matches.
categories() { # profile
	go tool pprof -traces "$1" 2>/dev/null | awk '
	function flush(   i, c) {
		if (val == "") return
		c = "other"
		for (i = 1; i <= n; i++) if (stack ~ re[i]) { c = name[i]; break }
		sum[c] += val; total += val
		val = ""; stack = ""
	}
	function secs(s) {
		if (s ~ /ms$/) return substr(s, 1, length(s) - 2) / 1000
		if (s ~ /s$/ && s !~ /[uµn]s$/) return substr(s, 1, length(s) - 1) + 0
		return 0
	}
	BEGIN {
		n = split("garbage collection|compiling glob patterns (OPA glob cache misses)|glob.match, the rest|reading the plan into the policy input|Rego evaluation, the rest|SQLite (modernc.org/sqlite, database/sql)|PostgreSQL client (pgx)|keys and signing|HTTP, JSON and the client", name, "|")
		re[1] = "runtime\\.(gcBgMarkWorker|gcAssistAlloc|bgsweep|bgscavenge|gcDrain|markroot)"
		re[2] = "gobwas/glob\\.Compile|gobwas/glob/syntax"
		re[3] = "topdown\\.(builtinGlobMatch|globCompileAndMatch)|gobwas/glob"
		re[4] = "stepgate/internal/policy\\.\\(\\*(Input|termBuilder|jsonParser)\\)|stepgate/internal/policy\\.(valueTerm|newTermBuilder|topLevelSpans)|stepgate/internal/plan\\.|go-json-experiment"
		re[5] = "open-policy-agent/opa"
		re[6] = "modernc\\.org/|database/sql"
		re[7] = "jackc/pgx|jackc/pgconn|stepgate/internal/store/postgres"
		re[8] = "go-jose|crypto/ed25519|internal/grant\\.|internal/keys\\.|crypto/aes|crypto/cipher"
		re[9] = "net/http|encoding/json|internal/client\\.|internal/httpapi|internal/api|net\\.|internal/poll|syscall"
	}
	/^-+\+-+$/ { flush(); next }
	/^ +[0-9.]+(ms|s|us|µs|ns) +/ { flush(); val = secs($1); stack = $0; next }
	val != "" { stack = stack "\n" $0 }
	END {
		flush()
		if (total == 0) exit
		for (c in sum) printf "%.1f\t%s\n", 100 * sum[c] / total, c
	}' | sort -t "$(printf '\t')" -k1,1nr
}
