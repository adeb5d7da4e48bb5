package faulttest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a PostgreSQL cluster of the test's own, in a temporary
// directory, on a free port: the test may restart or stop it (never the
// shared server other tests use).
type Cluster struct {
	t    testing.TB
	bin  string // directory of initdb, pg_ctl
	dir  string
	port int
	cred *syscall.Credential // the postgres user's, when running as root
}

// NewCluster creates and starts a cluster, stopped and removed when the
// test ends. It skips the test when PostgreSQL's server programs are not
// installed, unless $CI is set (then it fails).
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := findBin()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("initdb and pg_ctl not found: install postgresql")
		}
		t.Skip("initdb and pg_ctl not found: throwaway PostgreSQL cluster tests skipped")
	}
	dir, err := os.MkdirTemp("", "stepgate-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, bin: bin, dir: dir, port: freePort(t)}
	if os.Geteuid() == 0 { // initdb refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			t.Skip("running as root without a postgres user: throwaway cluster tests skipped")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = c.pgCtl("stop", "-m", "immediate")
		os.RemoveAll(dir)
	})
	if err := c.run(filepath.Join(bin, "initdb"), "-D", c.data(), "-A", "trust", "-U", "postgres", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v", err)
	}
	c.Start()
	return c
}

func findBin() string {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p)
		}
	}
	ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(ms) == 0 {
		return ""
	}
	return filepath.Dir(ms[len(ms)-1])
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// Addr is the cluster's host:port.
func (c *Cluster) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)) }

// DSN is the URL of database postgres on addr (the cluster's own address,
// or a proxy's in front of it).
func (c *Cluster) DSN(addr string) string {
	return "postgres://postgres@" + addr + "/postgres?sslmode=disable"
}

func (c *Cluster) run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %w\n%s", name, args, err, out)
	}
	return nil
}

func (c *Cluster) pgCtl(args ...string) error {
	return c.run(filepath.Join(c.bin, "pg_ctl"), append([]string{"-D", c.data(), "-w", "-t", "60"}, args...)...)
}

func (c *Cluster) opts() string {
	return fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", c.port, c.dir)
}

// Start starts the cluster and waits until it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	if err := c.pgCtl("start", "-l", filepath.Join(c.dir, "log"), "-o", c.opts()); err != nil {
		c.t.Fatal(err)
	}
	c.waitReady()
}

// Restart restarts the cluster the way operators do (pg_ctl restart -m
// fast: every session is terminated) and waits until it accepts
// connections again.
func (c *Cluster) Restart() {
	c.t.Helper()
	if err := c.pgCtl("restart", "-m", "fast", "-l", filepath.Join(c.dir, "log"), "-o", c.opts()); err != nil {
		c.t.Fatal(err)
	}
	c.waitReady()
}

// Stop stops the cluster (fast).
func (c *Cluster) Stop() {
	c.t.Helper()
	if err := c.pgCtl("stop", "-m", "fast"); err != nil {
		c.t.Fatal(err)
	}
}

func (c *Cluster) waitReady() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, c.DSN(c.Addr()))
		if err == nil {
			_ = conn.Close(ctx)
			cancel()
			return
		}
		cancel()
		if time.Now().After(deadline) {
			c.t.Fatalf("PostgreSQL on %s not ready after 30s: %v", c.Addr(), err)
		}
		time.Sleep(50 * time.Millisecond) // polling a server's start
	}
}
