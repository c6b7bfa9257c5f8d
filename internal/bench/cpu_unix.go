//go:build unix

package bench

import (
	"math"
	"syscall"
)

// processCPU is the CPU time this process has used, user and system, in
// seconds; NaN if unknown.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
