// Package follow keeps an in-memory mirror of one kind of object by
// listing and watching the control plane through any voter's API, and
// switches to another voter when the one it watches dies, without losing or
// repeating an event.
//
// Non-voting agents use it for what they must see (their pods, nodes,
// services); it must not write to the control plane or depend on anything
// of Shoal's but api.
package follow
