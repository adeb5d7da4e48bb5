// Command gate measures the stepgate server over real HTTP on 127.0.0.1, in
// one process, with the real store, keyring, policy engine, gate service,
// hub and HTTP API (the wiring of internal/app):
//
//  1. creating checks: N concurrent pipelines (internal/client, one HTTP
//     connection pool each) POST a 20-change Terraform plan of a dev
//     workspace for -duration. Each check reads the plan, evaluates the
//     default policy, writes the check and its three audit events in one
//     transaction and signs a grant. Every answer must be an allowed check
//     with a grant; afterwards every grant is verified (signature, issuer,
//     audience, workspace, check id, plan digest) and the audit chain is
//     verified whole.
//
//  2. wake-up: a pipeline waits (GET /v1/checks/{id}/wait) on a pending
//     production IAM check; the last approval is recorded through
//     gate.Service.Record; the time from just before Record to the waiting
//     client holding the approved check. On PostgreSQL also across two
//     servers sharing the schema: the client waits on server A, the approval
//     goes through server B, and the wake-up has to come through
//     LISTEN/NOTIFY.
//
//  3. a breakdown: the parts of one check (policy, transaction, signing...)
//     timed one at a time, to show where the time goes.
//
//  4. the lookup every check starts with (FindResumableCheck) as the store
//     grows to -lookup-scale allowed checks.
//
// -cpuprofile and -mutexprofile profile the check creation (1).
//
//	go run ./bench/gate -db sqlite [-duration 10s] [-concurrency 8] [-json]
//	go run ./bench/gate -db postgres -postgres-dsn postgres://...
//
// It exits 1 when the measurement is not valid (an error answer, a check
// that was not allowed, a grant that does not verify, a broken audit chain,
// a wake-up that did not come), whatever the numbers. Goals that are not met
// are reported as FAIL; -strict also exits 1 then.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

const defaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

type options struct {
	db          string
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	wakeups     int
	jsonOut     bool
	strict      bool
	dir         string
	pgDSN       string
	iamPlan     string
	cpuProfile  string
	mutexProf   string
	breakdown   bool
	lookups     string
	checkpoints bool
}

func main() {
	var o options
	flag.StringVar(&o.db, "db", "", "backend: sqlite or postgres (required)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to create checks")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "creating checks before the measurement, not counted")
	flag.IntVar(&o.concurrency, "concurrency", 8, "concurrent pipelines creating checks")
	flag.IntVar(&o.wakeups, "wakeups", 30, "wake-ups measured (per case)")
	flag.BoolVar(&o.jsonOut, "json", false, "print the results as JSON on stdout (progress goes to stderr)")
	flag.BoolVar(&o.strict, "strict", false, "exit 1 when a goal is not met")
	flag.StringVar(&o.dir, "dir", "", "directory of the SQLite database (default: a new directory under $TMPDIR, removed at the end)")
	pgDefault := defaultPostgresDSN
	if v := os.Getenv("STEPGATE_BENCH_POSTGRES_DSN"); v != "" {
		pgDefault = v
	}
	flag.StringVar(&o.pgDSN, "postgres-dsn", pgDefault, "PostgreSQL database (URL form); a new schema is created in it and dropped at the end ($STEPGATE_BENCH_POSTGRES_DSN)")
	flag.StringVar(&o.iamPlan, "iam-plan", "examples/prod-iam.plan.json", "the plan of the pending checks of the wake-up measurement")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the check-creation phase to this file")
	flag.StringVar(&o.mutexProf, "mutexprofile", "", "write a mutex contention profile of the check-creation phase to this file")
	flag.BoolVar(&o.checkpoints, "checkpoints", true, "checkpoint the audit log at every grant, as the server does")
	flag.BoolVar(&o.breakdown, "breakdown", true, "time the parts of one check one at a time")
	flag.StringVar(&o.lookups, "lookup-scale", "10000,50000", "time the resume lookup with this many allowed checks in the store (comma-separated; empty: skip)")
	flag.Parse()
	if flag.NArg() > 0 || (o.db != "sqlite" && o.db != "postgres") || o.concurrency < 1 || o.duration <= 0 || o.wakeups < 1 {
		fmt.Fprintln(os.Stderr, "usage: gate -db sqlite|postgres [-duration 10s] [-concurrency 8] [-json] (see -h)")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var progress io.Writer = os.Stdout
	if o.jsonOut {
		progress = os.Stderr
	}
	r, err := run(ctx, &o, progress)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gate:", err)
		os.Exit(1)
	}
	if o.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, "gate:", err)
			os.Exit(1)
		}
	} else {
		r.print(os.Stdout)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintln(os.Stderr, "gate: THE MEASUREMENT IS NOT VALID:")
		for _, p := range r.Problems {
			fmt.Fprintln(os.Stderr, "  -", p)
		}
		os.Exit(1)
	}
	if o.strict && !r.allGoalsMet() {
		os.Exit(1)
	}
}

// backend opens stores of one database: the second open of postgres is the
// second server of the two-server case.
type backend struct {
	describe string
	dir      string // where files go: the SQLite database, or $TMPDIR
	open     func(ctx context.Context) (store.Store, error)
	cleanup  func()
}

func newBackend(ctx context.Context, o *options, say func(string, ...any)) (*backend, error) {
	switch o.db {
	case "sqlite":
		dir := o.dir
		keep := dir != ""
		if !keep {
			var err error
			if dir, err = os.MkdirTemp("", "stepgate-bench-gate-"); err != nil {
				return nil, err
			}
		} else if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		path := filepath.Join(dir, "bench-"+randomHex(4)+".db")
		say("SQLite database %s", path)
		where := dir
		if !keep {
			where = "a new directory under " + os.TempDir()
		}
		return &backend{
			dir:      dir,
			describe: "SQLite (modernc.org/sqlite, WAL), a new database file in " + where + " (" + fsType(dir) + ")",
			open:     func(ctx context.Context) (store.Store, error) { return sqlite.Open(ctx, path) },
			cleanup: func() {
				if keep {
					for _, suffix := range []string{"", "-wal", "-shm"} {
						_ = os.Remove(path + suffix)
					}
				} else {
					_ = os.RemoveAll(dir)
				}
			},
		}, nil
	default:
		u, err := url.Parse(o.pgDSN)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, fmt.Errorf("-postgres-dsn: want a postgres:// URL")
		}
		schema := "bench_gate_" + randomHex(6)
		conn, err := pgx.Connect(ctx, o.pgDSN)
		if err != nil {
			return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
		}
		var version string
		if err := conn.QueryRow(ctx, `SHOW server_version`).Scan(&version); err != nil {
			conn.Close(ctx)
			return nil, err
		}
		var syncCommit string
		_ = conn.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&syncCommit)
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
			conn.Close(ctx)
			return nil, fmt.Errorf("creating schema %s: %w", schema, err)
		}
		say("PostgreSQL %s, schema %s", version, schema)
		q := u.Query()
		poolSize := fmt.Sprintf("%d connections per server (the default)", max(4, runtime.NumCPU()))
		if v := q.Get("pool_max_conns"); v != "" {
			poolSize = v + " connections per server (pool_max_conns)"
		}
		// Set search_path, leaving the other parameters as they were written
		// (re-encoding them would turn %20 into +, which pgx keeps as is).
		var params []string
		for _, p := range strings.Split(u.RawQuery, "&") {
			if p != "" && !strings.HasPrefix(p, "search_path=") {
				params = append(params, p)
			}
		}
		u.RawQuery = strings.Join(append(params, "search_path="+schema), "&")
		dsn := u.String()
		return &backend{
			dir: os.TempDir(),
			describe: fmt.Sprintf("PostgreSQL %s on %s (synchronous_commit=%s), a new schema, a pool of %s",
				version, u.Host, syncCommit, poolSize),
			open: func(ctx context.Context) (store.Store, error) { return postgres.Open(ctx, dsn) },
			cleanup: func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
					fmt.Fprintf(os.Stderr, "gate: dropping schema %s: %v\n", schema, err)
				}
				conn.Close(ctx)
			},
		}, nil
	}
}

func run(ctx context.Context, o *options, progress io.Writer) (*Result, error) {
	say := func(format string, args ...any) { fmt.Fprintf(progress, "==> "+format+"\n", args...) }
	r := &Result{Backend: o.db, Machine: machine()}

	bp, err := newBenchPlan()
	if err != nil {
		return nil, err
	}
	iam, err := os.ReadFile(o.iamPlan)
	if err != nil {
		return nil, fmt.Errorf("reading the wake-up plan: %w (run from the repository root, or set -iam-plan)", err)
	}

	be, err := newBackend(ctx, o, say)
	if err != nil {
		return nil, err
	}
	defer be.cleanup()
	r.Store = be.describe

	stA, err := be.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	defer stA.Close()
	masterKey := make([]byte, 32)
	_, _ = rand.Read(masterKey)
	master, err := keys.NewMaster(masterKey)
	if err != nil {
		return nil, err
	}
	a, err := newStack(ctx, "server A", &timedStore{Store: stA}, master, "", o.checkpoints)
	if err != nil {
		return nil, err
	}
	defer a.close()
	token, _, err := gate.CreateToken(ctx, stA, gate.TokenSpec{Name: "ci-bench"}, "bench", time.Now())
	if err != nil {
		return nil, err
	}

	// The plan must be what the measurement says it is: allowed.
	if r.Plan, err = checkPlan(ctx, a, bp); err != nil {
		return nil, err
	}
	r.Policy = describePolicy(r.Plan.Types)
	if r.Fsync, err = measureFsync(be.dir, 200); err != nil {
		return nil, fmt.Errorf("timing fsync: %w", err)
	}

	// 1. Creating checks.
	say("creating checks: %d pipelines, %v warm-up, then %v", o.concurrency, o.warmup, o.duration)
	if r.Create, err = measureCreate(ctx, o, a, token, bp, say); err != nil {
		return nil, err
	}
	r.Problems = append(r.Problems, r.Create.problems...)
	say("%.0f checks/s, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d errors",
		r.Create.ChecksPerSec, r.Create.Latency.P50, r.Create.Latency.P99, r.Create.Latency.Max, r.Create.Errors)

	// 2. Where the time of one check goes.
	if o.breakdown {
		say("timing the parts of one check, one at a time")
		if r.Breakdown, err = measureBreakdown(ctx, a, token, bp, r.Policy); err != nil {
			return nil, err
		}
	}

	// 3. Wake-ups.
	say("wake-up, one server: %d times", o.wakeups)
	w, err := measureWakeups(ctx, a, a, token, iam, o.wakeups)
	if err != nil {
		return nil, fmt.Errorf("wake-up on one server: %w", err)
	}
	r.Wakeup = w
	say("wake-up p50 %.1f ms, p99 %.1f ms, max %.1f ms", w.Latency.P50, w.Latency.P99, w.Latency.Max)

	if o.db == "postgres" {
		say("wake-up across two servers (LISTEN/NOTIFY): %d times", o.wakeups)
		stB, err := be.open(ctx)
		if err != nil {
			return nil, fmt.Errorf("opening the second server's store: %w", err)
		}
		defer stB.Close()
		// Servers behind one name share the public URL (the issuer).
		b, err := newStack(ctx, "server B", stB, master, a.url, o.checkpoints)
		if err != nil {
			return nil, err
		}
		defer b.close()
		w2, err := measureWakeups(ctx, a, b, token, iam, o.wakeups)
		if err != nil {
			return nil, fmt.Errorf("wake-up across two servers: %w", err)
		}
		r.WakeupTwoServers = &w2
		say("wake-up across servers p50 %.1f ms, p99 %.1f ms, max %.1f ms", w2.Latency.P50, w2.Latency.P99, w2.Latency.Max)
	}

	// 4. The resume lookup of every check, as the store grows.
	if totals, err := parseCounts(o.lookups); err != nil {
		return nil, err
	} else if len(totals) > 0 {
		say("the resume lookup with %v allowed checks in the store", totals)
		have := r.Create.WarmupChecks + r.Create.Checks
		if o.breakdown {
			have += 400 // the whole requests and the transactions timed alone
		}
		if r.ResumeLookup, err = measureLookupScale(ctx, stA, have, totals); err != nil {
			return nil, err
		}
	}

	// 5. The whole audit chain, after everything.
	n, err := verifyAudit(ctx, stA)
	r.Audit.Events = n
	r.Audit.Intact = err == nil
	if err != nil {
		r.Audit.Error = err.Error()
		r.Problems = append(r.Problems, "audit chain: "+err.Error())
	}
	say("audit chain: %d events, intact: %v", n, r.Audit.Intact)

	r.Goals = goals(r)
	r.Machine.LoadAvgEnd = loadAvg()
	return r, nil
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-lookup-scale: %q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fsType names the file system of dir (tmpfs would make commits free).
func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "file system unknown"
	}
	switch st.Type {
	case 0xef53:
		return "ext4"
	case 0x01021994:
		return "tmpfs"
	case 0x9123683e:
		return "btrfs"
	case 0x58465342:
		return "xfs"
	case 0x794c7630:
		return "overlayfs"
	}
	return fmt.Sprintf("file system 0x%x", st.Type)
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	m.LoadAvg = loadAvg()
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb); err == nil {
			m.MemoryGiB = float64(kb) / (1 << 20)
		}
	}
	return m
}

// startProfiles starts the CPU and mutex profiles that were asked for and
// returns the function that writes them.
// loadAvg is /proc/loadavg's 1, 5 and 15 minute averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

func startProfiles(o *options) (func() error, error) {
	var cpu *os.File
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		cpu = f
	}
	if o.mutexProf != "" {
		runtime.SetMutexProfileFraction(5)
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpu.Close())
		}
		if o.mutexProf != "" {
			f, err := os.Create(o.mutexProf)
			if err == nil {
				err = pprof.Lookup("mutex").WriteTo(f, 0)
				errs = append(errs, f.Close())
			}
			runtime.SetMutexProfileFraction(0)
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}, nil
}

var errTimeout = errors.New("timed out")
