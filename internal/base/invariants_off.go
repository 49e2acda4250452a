//go:build !invariants

package base

// Enabled is true in builds with `-tags invariants`: costly checks run.
const Enabled = false
