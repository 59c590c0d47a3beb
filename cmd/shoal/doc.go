// Command shoal is the one binary of Shoal: it parses flags and runs a
// subcommand. `shoal agent` runs on every host; `shoal recover` works on a
// stopped voter's data directory; the other subcommands (apply, get,
// describe, delete, scale, rollout, logs, exec, members, status, ...) talk
// to any agent's HTTP API. `shoal help` lists them all.
//
// It must not hold logic: a subcommand parses its flags, calls what other
// packages decide or do (agent, the API client in package api, placement for
// a rollback's template) and prints the result.
package main
