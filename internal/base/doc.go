// Package base owns the vocabulary every other o2go package shares: node
// identities (NodeID), ordered node sets (NodeMap), the seeded random source
// that makes simulations reproducible (Rand), and invariant checks.
//
// base is rank R0: it imports nothing from o2go. It must stay small; a type
// belongs here only when two unrelated layers would otherwise each invent it.
//
// Invariants come in two costs. Cheap ones (Assert) always run. Costly ones are
// guarded by Enabled, which is true only when built with `-tags invariants`
// (`make test` runs the simulator suites that way).
package base
