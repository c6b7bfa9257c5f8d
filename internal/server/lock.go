package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// lockFileName is the file in the data directory a running server holds
// an exclusive lock on; it names the holder.
const lockFileName = "warden.lock"

// errLocked is what tryLock returns when another process holds the lock.
var errLocked = errors.New("locked")

// lockInfo is what the lock file says about its holder.
type lockInfo struct {
	PID    int               `json:"pid"`
	Host   string            `json:"host"`
	Since  time.Time         `json:"since"`
	Listen map[string]string `json:"listen,omitempty"` // "https", "mqtts", "mqtt", "debug"
}

// dirLock is the data directory's lock, held from New until Shutdown.
type dirLock struct {
	dir  string
	f    *os.File
	info lockInfo
}

// lockDataDir takes the data directory's lock, or says who holds it.
func lockDataDir(dir string, now time.Time) (*dirLock, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("data directory %s is in use by %s; stop it first, or give this server its own --data-dir", dir, holder(path, now))
		}
		return nil, fmt.Errorf("lock the data directory: %s: %w", path, err)
	}
	host, _ := os.Hostname()
	l := &dirLock{dir: dir, f: f, info: lockInfo{PID: os.Getpid(), Host: host, Since: now.UTC().Truncate(time.Second)}}
	if err := l.write(); err != nil {
		l.release()
		return nil, err
	}
	return l, nil
}

// setListen records the bound listen addresses in the lock file.
func (l *dirLock) setListen(listen map[string]string) error {
	l.info.Listen = listen
	return l.write()
}

func (l *dirLock) write() error {
	b, err := json.MarshalIndent(l.info, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("write the data directory lock: %w", err)
	}
	if _, err := l.f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("write the data directory lock: %w", err)
	}
	return nil
}

// release empties the lock file (its holder is gone) and lets go of the
// lock. The file stays: removing it would let two servers lock two
// different files of the same name.
func (l *dirLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Truncate(0)
	err = errors.Join(err, unlock(l.f), l.f.Close())
	l.f = nil
	if err != nil {
		return fmt.Errorf("release the data directory lock: %w", err)
	}
	return nil
}

// holder describes the process holding the lock file at path, as far as
// the file says.
func holder(path string, now time.Time) string {
	b, err := os.ReadFile(path)
	var info lockInfo
	if err != nil || json.Unmarshal(b, &info) != nil || info.PID == 0 {
		return "another warden (" + path + " is locked)"
	}
	s := fmt.Sprintf("warden pid %d", info.PID)
	if info.Host != "" {
		s += " on host " + info.Host
	}
	if !info.Since.IsZero() {
		since, layout := info.Since.Local(), "2006-01-02 15:04:05"
		if sy, sm, sd := since.Date(); sy == now.Local().Year() && sm == now.Local().Month() && sd == now.Local().Day() {
			layout = "15:04:05"
		}
		s += " since " + since.Format(layout)
	}
	var addrs []string
	for _, k := range []string{"https", "mqtts", "mqtt", "debug"} {
		if a := info.Listen[k]; a != "" {
			addrs = append(addrs, k+" "+a)
		}
	}
	if len(addrs) > 0 {
		s += " (" + strings.Join(addrs, ", ") + ")"
	}
	return s
}
