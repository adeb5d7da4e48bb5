package planfile

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// Size caps applied when Options leaves them zero.
const (
	// DefaultMaxFileBytes caps the saved plan (the zip), which is held in
	// memory while it is read.
	DefaultMaxFileBytes = 256 << 20
	// DefaultMaxEntryBytes caps the tfplan entry once decompressed; it is
	// streamed, one top-level field at a time.
	DefaultMaxEntryBytes = 1 << 30
	// DefaultMaxFieldBytes caps one top-level field of tfplan, such as one
	// resource change with its values.
	DefaultMaxFieldBytes = 64 << 20
	// maxZipEntries caps the entries of the zip (a plan has a handful, plus
	// the configuration's files).
	maxZipEntries = 50_000
)

// Options tune Read.
type Options struct {
	MaxFileBytes  int64
	MaxEntryBytes int64
	MaxFieldBytes int64
}

func (o *Options) defaults() {
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.MaxEntryBytes <= 0 {
		o.MaxEntryBytes = DefaultMaxEntryBytes
	}
	if o.MaxFieldBytes <= 0 {
		o.MaxFieldBytes = DefaultMaxFieldBytes
	}
}

// Plan is what a saved plan says, reduced to what is compared.
type Plan struct {
	// FormatVersion is the tfplan format version (FormatVersion).
	FormatVersion uint64
	// ToolVersion is the version of Terraform or OpenTofu that wrote it.
	ToolVersion string
	// Changes are the resource changes, in the order of the file.
	Changes []Change
	// ActionInvocations counts Terraform 1.14 action invocations.
	ActionInvocations int
	// SHA256 is the hex digest of the bytes read, the saved plan as it is.
	SHA256 string
	Size   int64
}

// toolVersionRE is what Terraform and OpenTofu 1.x write as their version.
var toolVersionRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.+-]+)?$`)

// Read reads a saved plan from r: the whole of it is read (at most
// MaxFileBytes) and hashed, then its tfplan entry is decoded. Nothing of it
// is kept but the digests in Plan.
func Read(r io.Reader, opts Options) (*Plan, error) {
	opts.defaults()
	h := sha256.New()
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.TeeReader(io.LimitReader(r, opts.MaxFileBytes+1), h))
	if err != nil {
		return nil, fmt.Errorf("reading saved plan: %w", err)
	}
	if n > opts.MaxFileBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, opts.MaxFileBytes)
	}
	p, err := readZip(buf.Bytes(), opts)
	clear(buf.Bytes()) // it holds state and maybe secrets
	if err != nil {
		return nil, err
	}
	p.SHA256 = hex.EncodeToString(h.Sum(nil))
	p.Size = n
	return p, nil
}

func readZip(b []byte, opts Options) (*Plan, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: the saved plan is empty", ErrInvalid)
	}
	if !bytes.HasPrefix(b, []byte("PK\x03\x04")) {
		return nil, fmt.Errorf("%w: not a zip archive such as `terraform plan -out` writes", ErrInvalid)
	}
	if err := checkEntryCount(b); err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the zip: %w", ErrInvalid, err)
	}
	var entry *zip.File
	for _, f := range zr.File {
		if f.Name != "tfplan" {
			continue // state and configuration: never read
		}
		if entry != nil {
			return nil, fmt.Errorf("%w: the zip has two tfplan entries", ErrInvalid)
		}
		entry = f
	}
	if entry == nil {
		return nil, fmt.Errorf("%w: the zip has no tfplan entry", ErrInvalid)
	}
	if entry.UncompressedSize64 > uint64(opts.MaxEntryBytes) {
		return nil, fmt.Errorf("%w: tfplan is %d bytes decompressed, more than %d", ErrTooLarge, entry.UncompressedSize64, opts.MaxEntryBytes)
	}
	rc, err := entry.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: opening tfplan: %w", ErrInvalid, err)
	}
	defer rc.Close()
	// The announced size is checked by archive/zip as it reads; the cap
	// also holds for a lying header.
	lr := &cappedReader{r: rc, left: opts.MaxEntryBytes}
	p, err := readTFPlan(bufio.NewReaderSize(lr, 64<<10), opts)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// checkEntryCount reads the zip's end of central directory record and
// refuses an archive that claims more entries than a plan has, before
// archive/zip allocates a record for each.
func checkEntryCount(b []byte) error {
	const eocdLen = 22
	start := max(0, len(b)-(eocdLen+65535))
	i := bytes.LastIndex(b[start:], []byte("PK\x05\x06"))
	if i < 0 || len(b)-(start+i) < eocdLen {
		return fmt.Errorf("%w: not a zip archive (no end of central directory)", ErrInvalid)
	}
	rec := b[start+i:]
	if n := binary.LittleEndian.Uint16(rec[10:]); n == 0xffff {
		// zip64: the real count is elsewhere; a plan never needs it.
		return fmt.Errorf("%w: a zip64 archive, which a saved plan is not", ErrUnsupported)
	} else if int(n) > maxZipEntries {
		return fmt.Errorf("%w: the zip has %d entries", ErrTooLarge, n)
	}
	return nil
}

type cappedReader struct {
	r    io.Reader
	left int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One more byte tells a reader at the cap from one past it.
		var one [1]byte
		if n, _ := c.r.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("%w: tfplan is larger than the cap once decompressed", ErrTooLarge)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// readTFPlan streams the Plan message: each top-level field is read whole
// (at most MaxFieldBytes), the resource changes are decoded, everything
// else is skipped.
func readTFPlan(r *bufio.Reader, opts Options) (*Plan, error) {
	p := &Plan{}
	var unsupported, changeErr error
	var buf []byte
	hasVersion := false
	for {
		tag, err := readUvarint(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, unexpected(err)
		}
		num, typ := protowire.DecodeTag(tag)
		if num < protowire.MinValidNumber || num > protowire.MaxValidNumber {
			return nil, fmt.Errorf("%w: tfplan: field number %d", ErrInvalid, num)
		}
		if !planFields[num] && unsupported == nil {
			unsupported = fmt.Errorf("field %d", num)
		}
		switch typ {
		case protowire.VarintType:
			v, err := readUvarint(r)
			if err != nil {
				return nil, unexpected(err)
			}
			if num == 1 {
				p.FormatVersion, hasVersion = v, true
			}
			continue
		case protowire.Fixed32Type, protowire.Fixed64Type:
			size := 4
			if typ == protowire.Fixed64Type {
				size = 8
			}
			if _, err := r.Discard(size); err != nil {
				return nil, unexpected(err)
			}
			continue
		case protowire.BytesType:
		default:
			return nil, fmt.Errorf("%w: tfplan: field %d has wire type %d, which the format does not use", ErrInvalid, num, typ)
		}
		n, err := readUvarint(r)
		if err != nil {
			return nil, unexpected(err)
		}
		if num != 3 && num != 14 && num != 30 {
			if _, err := io.CopyN(io.Discard, r, int64(min(n, 1<<62))); err != nil {
				return nil, unexpected(err)
			}
			continue
		}
		if n > uint64(opts.MaxFieldBytes) {
			return nil, fmt.Errorf("%w: tfplan: field %d is %d bytes, more than %d", ErrTooLarge, num, n, opts.MaxFieldBytes)
		}
		buf = growTo(buf, int(n))
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, unexpected(err)
		}
		switch num {
		case 3:
			if changeErr != nil {
				continue
			}
			c, err := readResourceChange(buf)
			switch {
			case errors.Is(err, ErrUnsupported):
				// Reported once the tool version (a later field) is known.
				changeErr = err
			case err != nil:
				return nil, err
			}
			p.Changes = append(p.Changes, c)
		case 14:
			p.ToolVersion = string(buf)
		case 30:
			p.ActionInvocations++
		}
	}
	if err := checkVersions(p, hasVersion, unsupported); err != nil {
		return nil, err
	}
	if changeErr != nil {
		return nil, fmt.Errorf("%w (written by version %q)", changeErr, p.ToolVersion)
	}
	return p, nil
}

// checkVersions fails closed on a saved plan whose format is not known,
// naming the tool version that wrote it.
func checkVersions(p *Plan, hasVersion bool, unsupported error) error {
	by := "a tool that did not say its version"
	if p.ToolVersion != "" {
		by = "version " + strconv.Quote(p.ToolVersion)
	}
	switch {
	case !hasVersion:
		return fmt.Errorf("%w: tfplan has no format version (written by %s)", ErrUnsupported, by)
	case p.FormatVersion != FormatVersion:
		return fmt.Errorf("%w: tfplan format version %d, written by %s; this stepgate reads version %d (Terraform and OpenTofu 1.x)", ErrUnsupported, p.FormatVersion, by, FormatVersion)
	}
	m := toolVersionRE.FindStringSubmatch(p.ToolVersion)
	if m == nil {
		return fmt.Errorf("%w: written by %s, which is not a Terraform or OpenTofu 1.x version", ErrUnsupported, by)
	}
	if m[1] != "1" {
		return fmt.Errorf("%w: written by %s; this stepgate reads saved plans of Terraform and OpenTofu 1.x", ErrUnsupported, by)
	}
	if unsupported != nil {
		return fmt.Errorf("%w: tfplan has %w, unknown to this stepgate (written by %s)", ErrUnsupported, unsupported, by)
	}
	return nil
}

func growTo(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

func unexpected(err error) error {
	if errors.Is(err, ErrTooLarge) {
		return err
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: tfplan ends in the middle of a field (truncated?)", ErrInvalid)
	}
	return fmt.Errorf("%w: reading tfplan: %w", ErrInvalid, err)
}

// readUvarint reads a protobuf varint; io.EOF only before its first byte.
func readUvarint(r *bufio.Reader) (uint64, error) {
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: tfplan: a varint overflows 64 bits", ErrInvalid)
}
