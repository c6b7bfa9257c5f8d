//go:build race

package e2e

// raceEnabled: the race detector slows everything several times, so
// latency bounds are not checked under it.
const raceEnabled = true
