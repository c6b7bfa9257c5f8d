// Package alarm holds alarm rules and evaluates them over streaming
// telemetry.
//
// A Rule is what a tenant writes (JSON, validated by Rule.Validate). An
// Evaluator compiles rules once and is fed, in the ingest path, each
// device's messages (Observe), its connections (Connected, Disconnected)
// and the passing of time (Tick); it answers with Transitions, which others
// persist and notify. The package does no I/O and reads no clock, so the
// same inputs always give the same transitions, and tests drive it with a
// simulated clock. State and Restore carry its state across a restart.
//
// # Alarm lifecycle
//
// There is at most one alarm per rule and device. It goes
//
//	idle ──condition holds──▶ pending ──for MinDuration──▶ active ──clear level──▶ idle
//	  └──────────── condition holds, no MinDuration ────────▶ active
//
// Raised opens the alarm; Cleared closes it; a later raise is a new alarm
// (a new Raised). While active, the alarm may be Retriggered: its raise
// condition stopped holding but the value did not reach the clear level,
// then the condition held again. For a threshold "above 90, hysteresis 2",
// 95 raises; 89 (not above 90, not at or below 88) leaves it active; 91
// retriggers (count 1); 88 clears. A retrigger is reported at once, without
// waiting MinDuration again, since the alarm is still active. Conditions
// without a hysteresis band (expressions, and rates or thresholds whose
// hysteresis is 0) clear where they stop holding, so they never retrigger.
// Stale and offline alarms raise when their time runs out and clear with
// the next value or sign of life.
//
// # Scale
//
// Rules are grouped by tenant and scope and indexed by metric, so a message
// evaluates only the rules of its device that read one of its metrics;
// Tick looks at each device once and at its rules only when one of their
// deadlines is due. A threshold evaluation costs on the order of 100 ns,
// several million a second on one core, without allocating (see
// BenchmarkObserveThreshold; BenchmarkObserve mixes every kind of rule).
//
// # Storage
//
// What the alarm runtime keeps is declared here too, still without I/O: a
// rule as stored (StoredRule, its Rule as JSON), the alarms it raised
// (Record, changed by Change), maintenance plans, and Store, the interface
// over them and the evaluators' saved state. Package alarmsql implements
// Store on SQLite and PostgreSQL.
package alarm
