package lb

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"
)

// Errors returned by the applier.
var (
	// ErrInvalidService: Sync or Resync was given a service that cannot be
	// programmed (Service.Validate says why); nothing was changed.
	ErrInvalidService = errors.New("lb: invalid service")
	// ErrClosed: the applier has been closed.
	ErrClosed = errors.New("lb: applier closed")
)

// Applier keeps the table of one network namespace equal to the services it
// is given. It holds the services and what each put in the table, so a
// Sync sends only what the changed services change, in one netlink batch.
//
// The first call rebuilds the table from scratch, and so does the call
// after any failed batch: a batch is atomic, so a failure leaves the kernel
// as it was, and the next call repairs whatever made it fail (for
// instance a table edited or deleted by hand).
//
// Methods are safe for concurrent use; calls are serialised.
type Applier struct {
	mu     sync.Mutex
	plan   *plan
	nsPath string
	ns     netns.NsHandle // -1: the process's own namespace
	closed bool
	// services holds, by key, what was asked for last (want) and, when
	// synced, what the kernel holds (have: the service it was built from;
	// a service's fragment is computed again when it changes, rather than
	// kept). One map of both rather than two maps: they share their keys
	// and almost always their services.
	services map[ServiceKey]wantHave
	synced   bool
	reg      *registry // what the installed services claim, when synced
}

// wantHave is a key's desired and installed service; nil is none.
type wantHave struct{ want, have *held }

// setWant records k's desired service (nil: none), dropping keys with
// neither.
func (a *Applier) setWant(k ServiceKey, h *held) {
	wh := a.services[k]
	wh.want = h
	a.put(k, wh)
}

// installedAsWanted records that the kernel holds k's desired service.
func (a *Applier) installedAsWanted(k ServiceKey) {
	wh := a.services[k]
	wh.have = wh.want
	a.put(k, wh)
}

func (a *Applier) put(k ServiceKey, wh wantHave) {
	if wh.want == nil && wh.have == nil {
		delete(a.services, k)
	} else {
		a.services[k] = wh
	}
}

// NewApplier returns an applier for cfg in the network namespace at
// netnsPath ("" = the process's own namespace, as in production). It does
// not touch the kernel: the first Sync or Resync builds the table.
func NewApplier(cfg Config, netnsPath string) (*Applier, error) {
	p, err := newPlan(cfg)
	if err != nil {
		return nil, err
	}
	a := &Applier{plan: p, nsPath: netnsPath, ns: -1, services: map[ServiceKey]wantHave{}}
	if netnsPath != "" {
		ns, err := netns.GetFromPath(netnsPath)
		if err != nil {
			return nil, fmt.Errorf("lb: open netns %s: %w", netnsPath, err)
		}
		a.ns = ns
	}
	return a, nil
}

// Sync applies changed services (added or updated; headless ones mean no
// rules) and deletes services by key; a key in both is deleted. Only what
// those services change is sent, in one batch, unless the table must be
// rebuilt (first call, or after a failure). An invalid service fails the
// whole call before anything is sent (ErrInvalidService). Any other error
// means the batch was refused and nothing changed in the kernel; the
// services are remembered all the same, and the next call (Sync(nil, nil)
// if nothing else) rebuilds the table with them.
func (a *Applier) Sync(changed []Service, deleted []ServiceKey) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	var errs []error
	for _, s := range changed {
		errs = append(errs, s.Validate())
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	keys := map[ServiceKey]bool{}
	for _, s := range changed {
		a.setWant(s.Key(), hold(s))
		keys[s.Key()] = true
	}
	for _, k := range deleted {
		a.setWant(k, nil)
		keys[k] = true
	}
	if !a.synced {
		return a.rebuild()
	}
	return a.incremental(slices.SortedFunc(maps.Keys(keys), compareKeys))
}

// Resync replaces every service by all and rebuilds the table from scratch
// in one batch. An invalid service fails the call before anything is sent
// (ErrInvalidService).
func (a *Applier) Resync(all []Service) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	var errs []error
	for _, s := range all {
		errs = append(errs, s.Validate())
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for k := range a.services {
		a.setWant(k, nil)
	}
	for _, s := range all {
		a.setWant(s.Key(), hold(s))
	}
	return a.rebuild()
}

// Close releases the namespace. The table stays: Cleanup removes it.
func (a *Applier) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	if a.ns >= 0 {
		return a.ns.Close()
	}
	return nil
}

// rebuild replaces the table with the one for every desired service.
func (a *Applier) rebuild() error {
	a.synced = false
	services := make([]*held, 0, len(a.services))
	for _, wh := range a.services {
		if wh.want != nil {
			services = append(services, wh.want)
		}
	}
	slices.SortFunc(services, func(x, y *held) int { return compareKeys(x.Key(), y.Key()) })
	r, reg := a.plan.full(services)
	conn, err := a.conn()
	if err != nil {
		return err
	}
	b := newBatch(conn, a.plan.table)
	b.full(r)
	if err := b.flush(); err != nil {
		return fmt.Errorf("lb: rebuild table %s%s (%d services): %w", a.plan.table, a.where(), len(services), err)
	}
	for k := range a.services {
		a.installedAsWanted(k)
	}
	a.reg, a.synced = reg, true
	return nil
}

// incremental moves the given services from what the table holds to what
// is desired. On failure the applier is left unsynced: the registry has
// already moved, and the next call rebuilds.
func (a *Applier) incremental(keys []ServiceKey) error {
	a.synced = false
	c := newChanges(a.reg)
	for _, k := range keys {
		var old, new *fragment
		if wh := a.services[k]; wh.have != nil {
			old = a.plan.fragment(wh.have)
		}
		if wh := a.services[k]; wh.want != nil {
			new = a.plan.fragment(wh.want)
		}
		c.service(k, old, new)
	}
	conn, err := a.conn()
	if err != nil {
		return err
	}
	b := newBatch(conn, a.plan.table)
	b.incremental(a.plan, c)
	if err := b.flush(); err != nil {
		return fmt.Errorf("lb: sync %d services in table %s%s: %w", len(keys), a.plan.table, a.where(), err)
	}
	for _, k := range keys {
		a.installedAsWanted(k)
	}
	a.synced = true
	return nil
}

func (a *Applier) where() string {
	if a.nsPath == "" {
		return ""
	}
	return " of " + a.nsPath
}

func (a *Applier) conn() (*nftables.Conn, error) {
	return newConn(int(a.ns))
}

// newConn opens a netfilter netlink connection in the namespace fd (-1:
// the process's own) with buffers large enough for a full sync.
func newConn(fd int) (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(raiseBuffers)}
	if fd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(fd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("lb: netlink: %w", err)
	}
	return c, nil
}

// Cleanup deletes the table from the namespace at netnsPath ("" = the
// process's own); a missing table is not an error. It is what `shoal agent
// --cleanup` runs: no Applier is needed, and no other table is touched.
func Cleanup(netnsPath, table string) error {
	if !tableName.MatchString(table) {
		return fmt.Errorf("lb: cleanup: %q is not a valid table name", table)
	}
	fd := -1
	if netnsPath != "" {
		ns, err := netns.GetFromPath(netnsPath)
		if err != nil {
			return fmt.Errorf("lb: open netns %s: %w", netnsPath, err)
		}
		defer ns.Close()
		fd = int(ns)
	}
	conn, err := newConn(fd)
	if err != nil {
		return err
	}
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}
	conn.AddTable(t)
	conn.DelTable(t)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("lb: delete table %s: %w", table, err)
	}
	return nil
}
