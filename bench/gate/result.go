package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// Result is everything measured; -json prints it.
type Result struct {
	Backend string     `json:"backend"`
	Machine Machine    `json:"machine"`
	Store   string     `json:"store"`
	Plan    PlanInfo   `json:"plan"`
	Policy  PolicyInfo `json:"policy"`
	// Fsync is writing 4 KiB and fsyncing it where the SQLite database
	// lives ($TMPDIR for PostgreSQL runs): what a commit waits for.
	Fsync            Latency       `json:"fsync"`
	Create           CreateResult  `json:"create"`
	Breakdown        []Part        `json:"breakdown,omitempty"`
	Wakeup           WakeResult    `json:"wakeup"`
	WakeupTwoServers *WakeResult   `json:"wakeup_two_servers,omitempty"`
	ResumeLookup     []LookupPoint `json:"resume_lookup,omitempty"`
	Audit            AuditResult   `json:"audit"`
	Goals            []Goal        `json:"goals"`
	// Problems make the measurement invalid (exit 1).
	Problems []string `json:"problems"`
}

type Machine struct {
	CPU        string  `json:"cpu"`
	Cores      int     `json:"cores"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	MemoryGiB  float64 `json:"memory_gib"`
	LoadAvg    string  `json:"loadavg"`     // /proc/loadavg when the run started
	LoadAvgEnd string  `json:"loadavg_end"` // and when it ended
	Go         string  `json:"go"`
	OS         string  `json:"os"`
}

type PlanInfo struct {
	Changes     int    `json:"changes"`
	Types       int    `json:"types"` // distinct resource types
	Bytes       int    `json:"bytes"`
	Workspace   string `json:"workspace"`
	Environment string `json:"environment"`
	Decision    string `json:"decision"`
}

// PolicyInfo counts the type patterns of the default policy
// (sensitive_types and stateful_types) the plan's types are matched against.
type PolicyInfo struct {
	PlanTypes    int `json:"plan_types"`
	TypePatterns int `json:"type_patterns"`
	GlobPatterns int `json:"glob_patterns"` // with *, ? or [
}

// Latency is in milliseconds.
type Latency struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

type CreateResult struct {
	Concurrency   int      `json:"concurrency"`
	WarmupSeconds float64  `json:"warmup_seconds"`
	Seconds       float64  `json:"seconds"`
	Checks        int      `json:"checks"`
	WarmupChecks  int      `json:"warmup_checks"`
	Errors        int64    `json:"errors"`
	ErrorSamples  []string `json:"error_samples,omitempty"`
	ChecksPerSec  float64  `json:"checks_per_sec"`
	Latency       Latency  `json:"latency"`
	// Transaction is the store transaction of each check under this load:
	// from BEGIN (waiting for the write lock on SQLite) to COMMIT.
	Transaction        Latency `json:"transaction"`
	CPUPerCheckMS      float64 `json:"cpu_per_check_ms"` // this process: server and clients
	CPUCoresBusy       float64 `json:"cpu_cores_busy"`
	GrantsVerified     int     `json:"grants_verified"`
	AuditEventsWritten int64   `json:"audit_events_written"`
	AuditChainEvents   int64   `json:"audit_chain_events"`
	AuditChainIntact   bool    `json:"audit_chain_intact"`

	problems []string
}

// Part is one piece of a check, timed alone.
type Part struct {
	Name string  `json:"name"`
	Note string  `json:"note"`
	P50  float64 `json:"p50_ms"`
	Mean float64 `json:"mean_ms"`
}

type WakeResult struct {
	N            int     `json:"n"`
	WaitServer   string  `json:"wait_server"`
	RecordServer string  `json:"record_server"`
	Requirements string  `json:"requirements"`
	Latency      Latency `json:"latency"`  // Record called -> waiting client has the approved check
	Record       Latency `json:"record"`   // Record called -> Record returned
	Notified     Latency `json:"notified"` // Record called -> the waiting server's hub heard of it
	// NotifiedCount wake-ups where the waiting server's hub heard of the
	// change; ViaNotification of them before the client had its answer.
	NotifiedCount   int `json:"notified_count"`
	ViaNotification int `json:"via_notification"`
}

// LookupPoint is the time of FindResumableCheck (not found) with this many
// allowed checks in the store.
type LookupPoint struct {
	Checks int     `json:"checks"`
	P50    float64 `json:"p50_ms"`
	Max    float64 `json:"max_ms"`
}

type AuditResult struct {
	Events int64  `json:"events"`
	Intact bool   `json:"intact"`
	Error  string `json:"error,omitempty"`
}

type Goal struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Pass     bool   `json:"pass"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round(x float64) float64 { return math.Round(x*1000) / 1000 }

// latencies summarizes durations: nearest-rank percentiles.
func latencies(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return round(ms(s[max(i, 0)]))
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Latency{N: len(s), P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: round(ms(s[len(s)-1])), Mean: round(ms(sum) / float64(len(s)))}
}

// Goals of issue 3 (2-core machine): at least 500 checks/s on SQLite with
// p99 under 50 ms; wake-up under 50 ms on one server and under 250 ms
// across two PostgreSQL servers. Latency goals are judged on the p99.
func goals(r *Result) []Goal {
	var gs []Goal
	backend := map[string]string{"sqlite": "SQLite", "postgres": "PostgreSQL"}[r.Backend]
	add := func(name, target, measured string, pass bool) {
		gs = append(gs, Goal{Name: backend + ": " + name, Target: target, Measured: measured, Pass: pass})
	}
	if r.Backend == "sqlite" {
		add("checks per second", ">= 500/s", fmt.Sprintf("%.0f/s", r.Create.ChecksPerSec), r.Create.ChecksPerSec >= 500)
		add("check latency p99", "< 50 ms", fmt.Sprintf("%.1f ms", r.Create.Latency.P99), r.Create.Latency.P99 < 50)
	}
	add("wake-up p99, one server", "< 50 ms", fmt.Sprintf("%.1f ms", r.Wakeup.Latency.P99), r.Wakeup.Latency.P99 < 50)
	if w := r.WakeupTwoServers; w != nil {
		add("wake-up p99, two servers (LISTEN/NOTIFY)", "< 250 ms", fmt.Sprintf("%.1f ms", w.Latency.P99), w.Latency.P99 < 250)
	}
	return gs
}

func (r *Result) allGoalsMet() bool {
	for _, g := range r.Goals {
		if !g.Pass {
			return false
		}
	}
	return true
}

func (r *Result) print(w io.Writer) {
	c := r.Create
	fmt.Fprintf(w, "\nbackend: %s\nstore:   %s\nmachine: %s, %d cores, %s, load average at start %s\n", r.Backend, r.Store, r.Machine.CPU, r.Machine.Cores, r.Machine.Go, r.Machine.LoadAvg)
	fmt.Fprintf(w, "plan:    %d changes, %d bytes, workspace %s, environment %s: %s\n", r.Plan.Changes, r.Plan.Bytes, r.Plan.Workspace, r.Plan.Environment, r.Plan.Decision)
	fmt.Fprintf(w, "fsync:   p50 %.2f  p99 %.2f  max %.2f ms (4 KiB, next to the database)\n\n", r.Fsync.P50, r.Fsync.P99, r.Fsync.Max)
	fmt.Fprintf(w, "creating checks (%d pipelines, %.1f s after %.0f s warm-up)\n", c.Concurrency, c.Seconds, c.WarmupSeconds)
	fmt.Fprintf(w, "  checks      %d (%.0f/s), errors %d\n", c.Checks, c.ChecksPerSec, c.Errors)
	fmt.Fprintf(w, "  latency     p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms\n", c.Latency.P50, c.Latency.P90, c.Latency.P99, c.Latency.Max)
	fmt.Fprintf(w, "  transaction p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms (BEGIN to COMMIT, under this load)\n", c.Transaction.P50, c.Transaction.P90, c.Transaction.P99, c.Transaction.Max)
	fmt.Fprintf(w, "  CPU         %.2f ms per check, %.2f cores busy (this process)\n", c.CPUPerCheckMS, c.CPUCoresBusy)
	fmt.Fprintf(w, "  grants      %d verified\n", c.GrantsVerified)
	fmt.Fprintf(w, "  audit       %d events written; chain of %d events intact: %t\n", c.AuditEventsWritten, c.AuditChainEvents, c.AuditChainIntact)
	if len(r.Breakdown) > 0 {
		fmt.Fprintf(w, "\none check, part by part (alone, %s)\n", "median of 200")
		for _, p := range r.Breakdown {
			fmt.Fprintf(w, "  %-40s %8.3f ms   %s\n", p.Name, p.P50, p.Note)
		}
	}
	for _, x := range []*WakeResult{&r.Wakeup, r.WakeupTwoServers} {
		if x == nil {
			continue
		}
		fmt.Fprintf(w, "\nwake-up: wait on %s, approval through %s (%d times; %s)\n", x.WaitServer, x.RecordServer, x.N, x.Requirements)
		fmt.Fprintf(w, "  client has the approved check  p50 %.2f  p99 %.2f  max %.2f ms\n", x.Latency.P50, x.Latency.P99, x.Latency.Max)
		fmt.Fprintf(w, "  Record returned                p50 %.2f  p99 %.2f  max %.2f ms\n", x.Record.P50, x.Record.P99, x.Record.Max)
		fmt.Fprintf(w, "  waiting server notified        p50 %.2f  p99 %.2f  max %.2f ms (%d of %d, %d before the answer)\n", x.Notified.P50, x.Notified.P99, x.Notified.Max, x.NotifiedCount, x.N, x.ViaNotification)
	}
	if len(r.ResumeLookup) > 0 {
		fmt.Fprintf(w, "\nlooking for a check to resume (not found), as the store grows\n")
		for _, p := range r.ResumeLookup {
			fmt.Fprintf(w, "  %7d allowed checks  p50 %8.3f ms  max %8.3f ms\n", p.Checks, p.P50, p.Max)
		}
	}
	fmt.Fprintf(w, "\naudit chain at the end: %d events, intact: %t %s\n\ngoals\n", r.Audit.Events, r.Audit.Intact, r.Audit.Error)
	for _, g := range r.Goals {
		v := "PASS"
		if !g.Pass {
			v = "FAIL"
		}
		fmt.Fprintf(w, "  %-4s %s: %s (goal %s)\n", v, g.Name, g.Measured, g.Target)
	}
}
