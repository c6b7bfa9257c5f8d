//go:build !unix

package bench

import "math"

// processCPU is unknown on this system.
func processCPU() float64 { return math.NaN() }
