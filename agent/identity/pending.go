package identity

// The cluster record a bootstrap made waits in the data dir until the
// leader has stored it: it holds the only copy of the sealed CA key, so an
// agent that stops (or crashes) between its bootstrap and that write must
// find it again when it starts.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/shoal-dev/shoal/api"
)

// PendingRecordFile holds, as the record Secret's JSON (0600), a record
// made by Bootstrap that the store does not hold yet.
const PendingRecordFile = "tls/record.pending.json"

// SavePendingRecord keeps rec in the data dir until RemovePendingRecord.
func SavePendingRecord(dataDir string, rec Record) error {
	b, err := json.Marshal(EncodeRecord(rec))
	if err != nil {
		return fmt.Errorf("cluster record: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dataDir, TLSDir), 0o700); err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	return writeAtomic(filepath.Join(dataDir, PendingRecordFile), b, 0o600)
}

// LoadPendingRecord returns the record waiting in the data dir, nil if
// there is none.
func LoadPendingRecord(dataDir string) (*Record, error) {
	b, err := readFile(dataDir, PendingRecordFile, true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s api.Secret
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dataDir, PendingRecordFile), err)
	}
	rec, err := DecodeRecord(&s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dataDir, PendingRecordFile), err)
	}
	return &rec, nil
}

// RemovePendingRecord forgets the waiting record once the store holds it.
func RemovePendingRecord(dataDir string) error {
	err := os.Remove(filepath.Join(dataDir, PendingRecordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
