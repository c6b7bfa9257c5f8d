//go:build !unix

package broker

// openFileLimit: systems without RLIMIT_NOFILE get a cap for 10,000
// descriptors.
func openFileLimit() uint64 { return 10000 }
