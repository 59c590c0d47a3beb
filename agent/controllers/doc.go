// Package controllers runs the leader's control loops: it watches the
// store, marks the keys each event concerns, reconciles each dirty key once
// per batch with a pure decision from placement, and proposes the plans
// through a one-method Proposer (the Raft node).
//
// It must not decide anything itself: every decision is a placement
// function of a read-only View and now.
package controllers
