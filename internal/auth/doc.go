// Package auth decides who may use the API: roles, users with argon2id password hashes,
// API tokens and login sessions (tdm_… secrets kept only as their SHA-256), the failed
// login limiter, the bootstrap admin token, and the cluster secret nodes sign their calls
// with.
//
// Invariants: every request is judged before its handler runs, against the role its
// route declares; a route that declares none is refused (default deny). A secret is
// shown once, when it is made, and never stored or logged.
package auth
