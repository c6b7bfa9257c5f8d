//go:build race

package e2e

// raceEnabled: the race detector slows everything several times, so
// tests of latency bounds skip under it.
const raceEnabled = true
