// Command shoal is the one binary of Shoal: it parses flags and runs a
// subcommand. `shoal agent` runs on every host; `shoal recover` works on a
// stopped voter's data directory; the other subcommands (apply, get,
// describe, delete, scale, rollout, logs, exec, members, status, token,
// ...) talk to any agent's HTTP API. `shoal help` lists them all.
//
// Credentials (creds.go): every API subcommand finds the server, the bearer
// token and the cluster CA in flags, else the environment, else the config
// file `shoal login` writes (login.go, mode 0600), else the local agent's
// data dir. An https agent is verified against the cluster CA only (no
// host-name check); an http:// agent (run with --insecure) gets no token.
//
// It must not hold logic: a subcommand parses its flags, calls what other
// packages decide or do (agent, the API client in package api, placement for
// a rollback's template) and prints the result.
package main
