// Package maintenance computes the inputs of maintenance planning from
// telemetry: operating hours and start/stop cycles (RunCounter), when the
// next service falls due (ServiceInterval), when a wear measure will reach
// its limit (Trend), and how unusual a reading is (EWMA).
//
// Everything here is pure arithmetic on the values and times passed in: no
// I/O, no clock, no global state, no randomness other than a fixed,
// seeded sample of pairs in Trend. The same inputs always give the same
// results, and the stateful types export their state as JSON-encodable
// values so that others can persist them.
package maintenance
