package kubelet

import (
	"context"
	"fmt"
	"net"
	goruntime "runtime"

	"github.com/vishvananda/netns"
)

// NetNSDialer returns a dial function whose connections are made from the
// network namespace at path: the socket is created on an OS thread switched
// into that namespace and belongs to it for its whole life, wherever it is
// used afterwards. The thread is switched back before it is released; if
// that fails it is never reused (the goroutine exits still locked, and Go
// then ends the thread).
func NetNSDialer(path string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			goruntime.LockOSThread()
			orig, err := netns.Get()
			if err != nil {
				ch <- result{err: fmt.Errorf("netns: current namespace: %w", err)}
				return
			}
			defer orig.Close()
			target, err := netns.GetFromPath(path)
			if err != nil {
				goruntime.UnlockOSThread()
				ch <- result{err: fmt.Errorf("netns %s: %w", path, err)}
				return
			}
			defer target.Close()
			if err := netns.Set(target); err != nil {
				goruntime.UnlockOSThread()
				ch <- result{err: fmt.Errorf("netns %s: enter: %w", path, err)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if netns.Set(orig) == nil {
				goruntime.UnlockOSThread()
			}
			ch <- result{c, err}
		}()
		select {
		case r := <-ch:
			return r.c, r.err
		case <-ctx.Done():
			go func() {
				if r := <-ch; r.c != nil {
					r.c.Close()
				}
			}()
			return nil, ctx.Err()
		}
	}
}
