package store

// Stats is a point-in-time count of the store's contents, for metrics.
type Stats struct {
	Revision int64
	// Watchers is the number of open watches.
	Watchers int
	// Objects counts the stored objects by kind.
	Objects map[string]int
}

// Stats counts the store's objects by kind and its watchers. It takes the
// read lock for a walk over the namespaces (not the objects) of each kind.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := Stats{Revision: s.rev, Watchers: len(s.watchers), Objects: make(map[string]int, len(s.tables))}
	for kind, t := range s.tables {
		n := 0
		for _, objs := range t.byNS {
			n += len(objs)
		}
		st.Objects[kind] = n
	}
	return st
}
