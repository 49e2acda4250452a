package base

import "math/rand/v2"

// Rand is the only source of randomness the pure cores and the simulator may
// use: a PCG generator seeded explicitly, so that one seed replays one run.
type Rand struct{ r *rand.Rand }

// NewRand returns a generator whose whole output is determined by seed.
func NewRand(seed uint64) *Rand {
	return &Rand{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Uint64 returns a pseudo-random 64-bit value.
func (r *Rand) Uint64() uint64 { return r.r.Uint64() }

// Intn returns a value in [0, n). n must be > 0.
func (r *Rand) Intn(n int) int { return r.r.IntN(n) }

// Float64 returns a value in [0, 1).
func (r *Rand) Float64() float64 { return r.r.Float64() }

// Chance reports true with probability p.
func (r *Rand) Chance(p float64) bool { return r.r.Float64() < p }

// Perm returns a random permutation of [0, n).
func (r *Rand) Perm(n int) []int { return r.r.Perm(n) }

// Fork derives an independent generator, so that adding draws in one
// component does not shift the sequence another component sees.
func (r *Rand) Fork() *Rand { return NewRand(r.r.Uint64()) }
