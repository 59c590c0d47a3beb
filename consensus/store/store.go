package store

// STUB: replaced by the store implementation. Signatures are final.

import (
	"io"

	"github.com/shoal-dev/shoal/api"
)

// Store is the in-memory, indexed object store. Safe for concurrent use.
type Store struct{}

// New returns an empty store at revision 0.
func New(cfg Config) *Store { panic("store: not implemented") }

func (s *Store) Get(key Key) (api.Object, error) { panic("not implemented") }
func (s *Store) List(kind, namespace string, sel Selector) ([]api.Object, int64, error) {
	panic("not implemented")
}
func (s *Store) Apply(ops []Op) []Result { panic("not implemented") }
func (s *Store) Watch(kind, namespace string, fromRevision int64, sel Selector) (*Watcher, error) {
	panic("not implemented")
}
func (s *Store) Revision() int64            { panic("not implemented") }
func (s *Store) Snapshot(w io.Writer) error { panic("not implemented") }
func (s *Store) Restore(r io.Reader) error  { panic("not implemented") }

// Watcher delivers events in revision order until stopped or closed.
type Watcher struct{}

// Events is closed when the watcher stops; Err then says why (nil after Stop).
func (w *Watcher) Events() <-chan Event { panic("not implemented") }
func (w *Watcher) Err() error           { panic("not implemented") }
func (w *Watcher) Stop()                { panic("not implemented") }
