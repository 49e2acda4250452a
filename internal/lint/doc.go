// Package lint holds no code, only tests that enforce the house rules of
// ../shared/design/ARCHITECTURE.md on the whole module: the rank of every
// package and the direction of imports, the purity of the protocol cores, and
// that fs/* never reaches into the cluster stack. A new package must be added
// to the rank table in lint_test.go, which is where its place is decided.
package lint
