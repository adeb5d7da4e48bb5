package checkpoint

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
)

// Kinds of finding.
const (
	// ChainBroken: an event was edited, removed or reordered without
	// re-sealing the events after it (audit.BreakError).
	ChainBroken = "chain_broken"
	// Truncated: a checkpoint names a sequence past the end of the log:
	// the events after the end were removed.
	Truncated = "truncated"
	// Rechained: the event at a checkpoint's sequence is not the one it
	// signed: events up to it were removed or edited and the chain sealed
	// again (audit.Seal).
	Rechained = "rechained"
	// EventMissing: the event a checkpoint signed is gone from inside the
	// log.
	EventMissing = "event_missing"
	// BadSignature: a checkpoint's signature does not verify with its key.
	BadSignature = "bad_signature"
	// UnknownKey: a checkpoint names a key that is not a checkpoint key of
	// this server (none in the database opens under the master key).
	UnknownKey = "unknown_key"
	// CheckpointMissing: a checkpoint that was written is gone: a grant
	// issued after the newest checkpoint in the database (every grant is
	// checkpointed in its own transaction), or one in the sink that the
	// database lacks.
	CheckpointMissing = "checkpoint_missing"
	// NoCheckpoint: the log has events and no valid checkpoint at all.
	NoCheckpoint = "no_checkpoint"
	// SinkUnreadable: a line of the checkpoint file does not parse.
	SinkUnreadable = "sink_unreadable"
)

// Finding is one thing Verify found wrong.
type Finding struct {
	Kind    string `json:"kind"`
	Seq     int64  `json:"seq,omitempty"`
	Source  string `json:"source,omitempty"` // "database" or "file", for a checkpoint
	Message string `json:"message"`
}

// Range is a run of sequence numbers.
type Range struct {
	Count int64 `json:"count"`
	From  int64 `json:"from,omitempty"`
	To    int64 `json:"to,omitempty"`
	// Oldest is the time of the first event of the range.
	Oldest *time.Time `json:"oldest,omitempty"`
}

// Report is what Verify found.
type Report struct {
	Events   int64  `json:"events"`
	HeadSeq  int64  `json:"head_seq"`
	HeadHash string `json:"head_hash,omitempty"`
	// Checkpoints are those of the database; FileCheckpoints those of the
	// sink file, when one was given.
	Checkpoints     int `json:"checkpoints"`
	FileCheckpoints int `json:"file_checkpoints,omitempty"`
	// LastCheckpoint is the newest valid checkpoint (database or file)
	// that matches the log.
	LastCheckpoint *audit.Checkpoint `json:"last_checkpoint,omitempty"`
	// Unsealed are the events after LastCheckpoint: nothing signed vouches
	// for them yet.
	Unsealed Range     `json:"unsealed"`
	Findings []Finding `json:"findings"`
	// Omitted counts findings left out after the first maxFindings.
	Omitted int `json:"omitted_findings,omitempty"`
}

// OK reports whether nothing was found.
func (r *Report) OK() bool { return len(r.Findings) == 0 }

// maxFindings bounds the findings a report lists.
const maxFindings = 100

func (r *Report) add(f Finding) {
	if len(r.Findings) >= maxFindings {
		r.Omitted++
		return
	}
	r.Findings = append(r.Findings, f)
}

// Source is what Verify reads: the log and its checkpoints (store.Store
// satisfies it).
type Source interface {
	ListAudit(ctx context.Context, afterSeq int64, limit int) ([]*audit.Event, error)
	ListAuditCheckpoints(ctx context.Context, afterSeq int64, limit int) ([]*audit.Checkpoint, error)
}

// Keys are the checkpoint keys Verify trusts (those that open under the
// master key, keys.CheckpointKeys.Trusted), and the reasons it distrusts
// others found in the database.
type Keys struct {
	Trusted   map[string]ed25519.PublicKey
	Untrusted map[string]error
}

// Options are what Verify checks besides the database.
type Options struct {
	// File holds the checkpoints of the sink file, when one is compared;
	// FileProblems the lines of it that did not parse.
	File         []*audit.Checkpoint
	FileProblems []error
	// HaveFile says a file was given (it may be empty).
	HaveFile bool
	// Visit, when set, is called with every event, oldest first, as the
	// log is read (so that a caller needing the events reads the log once).
	Visit func(*audit.Event)
}

// page is how many rows Verify reads at a time.
const page = 1000

type located struct {
	cp     *audit.Checkpoint
	source string
}

// Verify reads the whole log, oldest first, and checks the chain, every
// checkpoint of the database (and of the file, when given) against its
// key and against the log, and that no checkpoint that was written is
// gone. It returns an error only when it cannot read; what it finds is in
// the report.
func Verify(ctx context.Context, src Source, k Keys, o Options) (*Report, error) {
	r := &Report{Findings: []Finding{}}
	// The checkpoints, by sequence: the valid ones are checked against
	// the log as it is read.
	valid := map[int64][]located{}
	lastDB := int64(0) // the newest valid checkpoint of the database
	check := func(cp *audit.Checkpoint, source string) bool {
		pub, ok := k.Trusted[cp.KeyID]
		if !ok {
			why := "it is not in the database"
			if err := k.Untrusted[cp.KeyID]; err != nil {
				why = "it does not open under the master key (" + err.Error() + ")"
			}
			r.add(Finding{Kind: UnknownKey, Seq: cp.Seq, Source: source, Message: fmt.Sprintf("checkpoint at sequence %d is signed with key %s, which is not a checkpoint key of this server: %s (forged)", cp.Seq, cp.KeyID, why)})
			return false
		}
		if err := audit.VerifyCheckpoint(cp, pub); err != nil {
			r.add(Finding{Kind: BadSignature, Seq: cp.Seq, Source: source, Message: fmt.Sprintf("checkpoint at sequence %d: %v (forged or edited)", cp.Seq, err)})
			return false
		}
		valid[cp.Seq] = append(valid[cp.Seq], located{cp, source})
		return true
	}
	inDB := map[int64]*audit.Checkpoint{}
	for after := int64(0); ; {
		cps, err := src.ListAuditCheckpoints(ctx, after, page)
		if err != nil {
			return nil, fmt.Errorf("reading audit checkpoints: %w", err)
		}
		for _, cp := range cps {
			r.Checkpoints++
			inDB[cp.Seq] = cp
			if check(cp, "database") {
				lastDB = max(lastDB, cp.Seq)
			}
			after = cp.Seq
		}
		if len(cps) < page {
			break
		}
	}
	for _, p := range o.FileProblems {
		r.add(Finding{Kind: SinkUnreadable, Source: "file", Message: p.Error()})
	}
	for _, cp := range o.File {
		r.FileCheckpoints++
		if !check(cp, "file") {
			continue
		}
		if db, ok := inDB[cp.Seq]; !ok || !db.Equal(cp) {
			r.add(Finding{Kind: CheckpointMissing, Seq: cp.Seq, Source: "file", Message: fmt.Sprintf("the checkpoint file has a checkpoint at sequence %d (%s) that the database lacks: it was deleted from the database", cp.Seq, cp.Time.Format(time.RFC3339))})
		}
	}

	// The log.
	var v audit.Verifier
	broken := false
	var head *audit.Event
	matched := map[int64]bool{}
	lastGood := int64(0) // the newest valid checkpoint that matches the log
	var lastGoodCP *audit.Checkpoint
	grantsAfter := []int64{}
	for after := int64(0); ; {
		events, err := src.ListAudit(ctx, after, page)
		if err != nil {
			return nil, fmt.Errorf("reading audit log: %w", err)
		}
		for _, e := range events {
			r.Events++
			head = e
			if o.Visit != nil {
				o.Visit(e)
			}
			if !broken {
				if err := v.Next(e); err != nil {
					broken = true
					var be *audit.BreakError
					seq := e.Seq
					if errors.As(err, &be) {
						seq = be.Seq
					}
					r.add(Finding{Kind: ChainBroken, Seq: seq, Message: err.Error()})
				}
			}
			for _, l := range valid[e.Seq] {
				matched[e.Seq] = true
				if l.cp.Hash != e.Hash {
					r.add(Finding{Kind: Rechained, Seq: e.Seq, Source: l.source, Message: fmt.Sprintf("the event at sequence %d is not the one the checkpoint of %s signed: events up to %d were removed or edited and the chain sealed again", e.Seq, l.cp.Time.Format(time.RFC3339), e.Seq)})
					continue
				}
				if !broken && e.Seq > lastGood {
					lastGood, lastGoodCP = e.Seq, l.cp
				}
			}
			if e.Type == audit.GrantIssued && e.Seq > lastDB {
				grantsAfter = append(grantsAfter, e.Seq)
			}
			after = e.Seq
		}
		if len(events) < page {
			break
		}
	}
	if head != nil {
		r.HeadSeq, r.HeadHash = head.Seq, head.Hash
	}

	// Checkpoints whose event was not found.
	seqs := make([]int64, 0, len(valid))
	for seq := range valid {
		if !matched[seq] {
			seqs = append(seqs, seq)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for _, seq := range seqs {
		for _, l := range valid[seq] {
			if seq > r.HeadSeq {
				r.add(Finding{Kind: Truncated, Seq: seq, Source: l.source, Message: fmt.Sprintf("a checkpoint of %s signed sequence %d, but the log ends at %d: events %d to %d (at least) were removed", l.cp.Time.Format(time.RFC3339), seq, r.HeadSeq, r.HeadSeq+1, seq)})
			} else {
				r.add(Finding{Kind: EventMissing, Seq: seq, Source: l.source, Message: fmt.Sprintf("the event at sequence %d, which a checkpoint signed, is gone", seq)})
			}
		}
	}
	for _, seq := range grantsAfter {
		r.add(Finding{Kind: CheckpointMissing, Seq: seq, Source: "database", Message: fmt.Sprintf("the grant issued at sequence %d has no checkpoint (every grant is checkpointed when it is issued): checkpoints were deleted from the database", seq)})
	}
	if r.Events > 0 && lastGoodCP == nil && len(valid) == 0 {
		r.add(Finding{Kind: NoCheckpoint, Message: fmt.Sprintf("the log has %d events and no valid checkpoint: nothing signed vouches for it (deleted, or no server of this version has run on this database)", r.Events)})
	}
	r.LastCheckpoint = lastGoodCP
	if head != nil && head.Seq > lastGood {
		r.Unsealed = Range{Count: head.Seq - lastGood, From: lastGood + 1, To: head.Seq}
		first, err := src.ListAudit(ctx, lastGood, 1)
		if err != nil {
			return nil, fmt.Errorf("reading audit log: %w", err)
		}
		if len(first) == 1 {
			t := first[0].Time
			r.Unsealed.Oldest = &t
		}
	}
	return r, nil
}
