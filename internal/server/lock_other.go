//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package server

import "os"

// lockSupported: this system has no advisory file lock Warden uses; the
// lock file only names the server.
const lockSupported = false

func tryLock(*os.File) error { return nil }

func unlock(*os.File) error { return nil }
